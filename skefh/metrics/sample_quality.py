"""How much generated samples look like the data, as judged by a classifier trained on the data.

Three numbers per set of samples (:func:`sample_quality`):

- the Fréchet distance between the judge's penultimate-layer features of the samples and of
  held-out real images (an "FID" whose feature extractor is the judge, not Inception; lower is
  better, the real-data floor is what a second set of real images gets);
- the confidence, the mean over samples of the judge's largest class probability (a sample the
  judge cannot place in any class gets a low value);
- the class coverage, ``exp(entropy)`` of the histogram of the judge's predicted labels: 1 when
  every sample gets the same label, the number of classes when the labels are spread evenly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._arrays import to_numpy
from .frechet import frechet_distance

__all__ = ["SampleQuality", "class_coverage", "mean_confidence", "sample_quality"]


@dataclass(frozen=True)
class SampleQuality:
    """Outcome of :func:`sample_quality`.

    Attributes
    ----------
    frechet_distance : float
        Squared Fréchet distance between Gaussian fits of the judge's features of the samples
        and of the reference images.
    confidence : float
        Mean largest class probability over the samples, in ``[1 / n_classes, 1]``.
    coverage : float
        ``exp(entropy)`` of the predicted-label histogram, in ``[1, n_classes]``.
    class_counts : list of int
        How many samples the judge assigns to each class.
    n_samples, n_reference : int
    """

    frechet_distance: float
    confidence: float
    coverage: float
    class_counts: list
    n_samples: int
    n_reference: int

    def to_dict(self) -> dict:
        return asdict(self)


def _probabilities(probabilities) -> np.ndarray:
    p = np.asarray(to_numpy(probabilities), dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"probabilities must have shape (n_samples, n_classes >= 2), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and non-negative")
    if not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("each row of probabilities must sum to 1")
    return p


def mean_confidence(probabilities) -> float:
    """Mean over rows of the largest class probability.

    Parameters
    ----------
    probabilities : array-like of shape (n_samples, n_classes)
        Rows sum to 1.

    Returns
    -------
    float

    Examples
    --------
    >>> mean_confidence([[0.9, 0.1], [0.5, 0.5]])
    0.7
    """
    return float(np.round(_probabilities(probabilities).max(1).mean(), 12))


def class_coverage(probabilities) -> float:
    """``exp(entropy)`` of the histogram of predicted labels (argmax of each row).

    Parameters
    ----------
    probabilities : array-like of shape (n_samples, n_classes)

    Returns
    -------
    float
        1 when every row predicts the same class; ``k`` when the predictions are spread evenly
        over ``k`` classes.

    Examples
    --------
    >>> class_coverage([[0.9, 0.1], [0.8, 0.2]])
    1.0
    >>> round(class_coverage([[0.9, 0.1], [0.2, 0.8]]), 6)
    2.0
    """
    p = _probabilities(probabilities)
    counts = np.bincount(p.argmax(1), minlength=p.shape[1])
    return _coverage_from_counts(counts)


def _coverage_from_counts(counts: np.ndarray) -> float:
    freq = counts[counts > 0] / counts.sum()
    return float(np.exp(-(freq * np.log(freq)).sum()))


def sample_quality(sample_features, sample_probabilities, reference_features) -> SampleQuality:
    """Fréchet distance, confidence and class coverage of a set of samples.

    Parameters
    ----------
    sample_features : array-like of shape (n_samples, d)
        The judge's features of the generated samples.
    sample_probabilities : array-like of shape (n_samples, n_classes)
        The judge's class probabilities for the same samples.
    reference_features : array-like of shape (n_reference, d)
        The judge's features of real held-out images.

    Returns
    -------
    SampleQuality

    Notes
    -----
    The Fréchet distance is biased upwards at small sample sizes; compare sets of equal size
    (500 or more).
    """
    p = _probabilities(sample_probabilities)
    features = np.asarray(to_numpy(sample_features), dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != p.shape[0]:
        raise ValueError(
            f"sample_features must have one row per row of sample_probabilities ({p.shape[0]}), "
            f"got shape {features.shape}"
        )
    reference = np.asarray(to_numpy(reference_features), dtype=np.float64)
    counts = np.bincount(p.argmax(1), minlength=p.shape[1])
    return SampleQuality(
        frechet_distance=frechet_distance(features, reference),
        confidence=float(p.max(1).mean()),
        coverage=_coverage_from_counts(counts),
        class_counts=[int(c) for c in counts],
        n_samples=int(p.shape[0]),
        n_reference=int(reference.shape[0]),
    )
