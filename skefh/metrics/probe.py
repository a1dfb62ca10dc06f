"""Linear-evaluation protocol: how linearly decodable are labels from features?"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import to_numpy as _to_numpy

__all__ = ["ProbeResult", "linear_probe", "probe_predictions", "probe_table"]


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes
    ----------
    accuracy : float
        Accuracy on the test features, in [0, 1].
    train_accuracy : float
        Accuracy on the training features (a large gap to ``accuracy``
        signals over-fitting of the probe, e.g. when ``C`` is too large).
    n_train, n_test : int
        Number of training and test samples.
    n_features : int
        Dimensionality of the features.
    seconds : float
        Wall-clock time for scaling, fitting and scoring.
    """

    accuracy: float
    train_accuracy: float
    n_train: int
    n_test: int
    n_features: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain ``dict`` (e.g. for JSON logs)."""
        return dataclasses.asdict(self)


def _features(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(_to_numpy(x), dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} is empty; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _labels(y: Any, name: str) -> np.ndarray:
    arr = _to_numpy(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,); got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _thread_limit(n_jobs):
    # LogisticRegression's own n_jobs has had no effect for lbfgs since
    # scikit-learn 1.8 (and warns); the work is BLAS-bound, so n_jobs caps
    # the BLAS/OpenMP thread pools instead.
    if n_jobs is None:
        return nullcontext()
    from joblib import effective_n_jobs
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=effective_n_jobs(n_jobs))


def _checked_inputs(features_train, y_train, features_test, y_test=None):
    """Validated arrays; ``y_test`` may be None (predictions only)."""
    x_train = _features(features_train, "features_train")
    x_test = _features(features_test, "features_test")
    y_tr = _labels(y_train, "y_train")
    y_te = None if y_test is None else _labels(y_test, "y_test")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"features_train has {x_train.shape[1]} columns but features_test has "
            f"{x_test.shape[1]}"
        )
    if y_tr.shape[0] != x_train.shape[0]:
        raise ValueError(
            f"y_train has {y_tr.shape[0]} labels for {x_train.shape[0]} training samples"
        )
    if y_te is not None and y_te.shape[0] != x_test.shape[0]:
        raise ValueError(f"y_test has {y_te.shape[0]} labels for {x_test.shape[0]} test samples")
    n_classes = np.unique(y_tr).shape[0]
    if n_classes < 2:
        raise ValueError(f"y_train must contain at least 2 classes; got {n_classes}")
    return x_train, y_tr, x_test, y_te


def _fit_probe(x_train, y_train, *, C, max_iter, random_state):
    """The protocol's classifier: standardisation, then L2 logistic regression (lbfgs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs", random_state=random_state)
    return make_pipeline(StandardScaler(), clf).fit(x_train, y_train)


def probe_predictions(
    features_train,
    y_train,
    features_test,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    random_state=0,
    n_jobs=None,
) -> np.ndarray:
    """Test-set predictions of the :func:`linear_probe` protocol's classifier.

    For paired comparisons of two feature sets on the same test images
    (:func:`skefh.metrics.paired_accuracy_test`); the parameters are those of
    :func:`linear_probe`, whose accuracy is the mean of ``predictions == y_test``.

    Returns
    -------
    numpy.ndarray of shape (n_test,)
        Predicted labels.
    """
    x_train, y_tr, x_test, _ = _checked_inputs(features_train, y_train, features_test)
    with _thread_limit(n_jobs):
        return _fit_probe(x_train, y_tr, C=C, max_iter=max_iter, random_state=random_state).predict(x_test)


def linear_probe(
    features_train,
    y_train,
    features_test,
    y_test,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    random_state=0,
    n_jobs=None,
) -> ProbeResult:
    """Test accuracy of a linear classifier trained on frozen features.

    The protocol, exactly:

    1. fit :class:`~sklearn.preprocessing.StandardScaler` on ``features_train``
       only, and transform both sets with it;
    2. fit ``LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs")``
       (L2 penalty, multinomial/softmax loss for three or more classes) on
       the scaled training features;
    3. report the accuracy on the scaled test features (and on the training
       features, as a diagnostic).

    Parameters
    ----------
    features_train : array-like of shape (n_train, d)
        Training features (NumPy array or torch tensor).
    y_train : array-like of shape (n_train,)
        Training labels; at least two distinct classes.
    features_test : array-like of shape (n_test, d)
        Test features with the same number of columns.
    y_test : array-like of shape (n_test,)
        Test labels.  Labels absent from ``y_train`` count as errors.
    C : float, default=1.0
        Inverse L2 regularisation strength.
    max_iter : int, default=1000
        Maximum number of lbfgs iterations.
    random_state : int, RandomState instance or None, default=0
        Passed to ``LogisticRegression`` (lbfgs itself is deterministic).
    n_jobs : int or None, default=None
        Maximum number of BLAS/OpenMP threads used while fitting, with
        joblib's convention (``-1`` = all cores).  ``None`` leaves the
        thread pools alone.

    Returns
    -------
    ProbeResult
        Test and train accuracy, sample and feature counts, and run time.

    Raises
    ------
    ValueError
        If features are not 2-D, differ in number of columns, contain
        non-finite values, if labels are not 1-D or their lengths do not match
        the features, or if ``y_train`` has fewer than two classes.

    Notes
    -----
    Standardising first makes ``C`` mean the same thing for every feature
    set, whatever the scale of its columns.  Constant columns are harmless:
    ``StandardScaler`` leaves zero-variance columns unscaled, so they become
    all-zero and carry no weight.  With two classes scikit-learn fits the
    equivalent binary logistic model.  A ``ConvergenceWarning`` from
    scikit-learn is passed through unchanged; raise ``max_iter`` if it
    appears.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> x = rng.normal(size=(100, 2)) + 4.0 * y[:, None]
    >>> res = linear_probe(x[::2], y[::2], x[1::2], y[1::2])
    >>> res.accuracy, res.n_train, res.n_features
    (1.0, 50, 2)
    """
    x_train, y_tr, x_test, y_te = _checked_inputs(features_train, y_train, features_test, y_test)

    start = time.perf_counter()
    with _thread_limit(n_jobs):
        probe = _fit_probe(x_train, y_tr, C=C, max_iter=max_iter, random_state=random_state)
        train_accuracy = float(np.mean(probe.predict(x_train) == y_tr))
        accuracy = float(np.mean(probe.predict(x_test) == y_te))
    seconds = time.perf_counter() - start
    return ProbeResult(
        accuracy=accuracy,
        train_accuracy=train_accuracy,
        n_train=int(x_train.shape[0]),
        n_test=int(x_test.shape[0]),
        n_features=int(x_train.shape[1]),
        seconds=float(seconds),
    )


def probe_table(results: Mapping[str, ProbeResult]) -> str:
    """Render probe results as a Markdown table.

    Parameters
    ----------
    results : mapping of str to ProbeResult
        Feature-set name -> result, rendered in the mapping's order.

    Returns
    -------
    str
        A Markdown table with columns ``features``, ``accuracy (%)`` (one
        decimal) and ``n_features``; just the header for an empty mapping.
        No trailing newline.

    Raises
    ------
    TypeError
        If a value is not a :class:`ProbeResult`.

    Examples
    --------
    >>> r = ProbeResult(accuracy=0.9123, train_accuracy=0.95, n_train=10,
    ...                 n_test=10, n_features=784, seconds=0.1)
    >>> print(probe_table({"pixels": r}))
    | features | accuracy (%) | n_features |
    | --- | ---: | ---: |
    | pixels | 91.2 | 784 |
    """
    lines = ["| features | accuracy (%) | n_features |", "| --- | ---: | ---: |"]
    for name, result in results.items():
        if not isinstance(result, ProbeResult):
            raise TypeError(
                f"results[{name!r}] must be a ProbeResult; got {type(result).__name__}"
            )
        # A literal '|' would split the cell; Markdown accepts the escaped form.
        label = str(name).replace("|", "\\|")
        lines.append(f"| {label} | {100.0 * result.accuracy:.1f} | {result.n_features} |")
    return "\n".join(lines)
