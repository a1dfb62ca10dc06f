"""Paired comparison of two classifiers on the same test items (McNemar's exact test).

Two probes scored on the same test images are not independent samples: their accuracies differ
only through the images that one gets right and the other wrong. Comparing the two accuracies
as if independent (each with its binomial standard error) overstates the noise; McNemar's test
looks at the discordant images alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .probe import _labels

__all__ = ["PairedAccuracy", "paired_accuracy_test"]


@dataclass(frozen=True)
class PairedAccuracy:
    """Outcome of :func:`paired_accuracy_test`.

    Attributes
    ----------
    accuracy_a, accuracy_b : float
        Accuracies of the two sets of predictions.
    only_a, only_b : int
        Items that only ``a`` (only ``b``) gets right.
    n : int
        Number of test items.
    p_value : float
        Two-sided exact McNemar p-value: the probability, if both classifiers were equally
        accurate, of a split of the ``only_a + only_b`` discordant items at least as uneven
        as the one observed.
    """

    accuracy_a: float
    accuracy_b: float
    only_a: int
    only_b: int
    n: int
    p_value: float

    @property
    def difference(self) -> float:
        """``accuracy_b - accuracy_a``."""
        return self.accuracy_b - self.accuracy_a


def paired_accuracy_test(predictions_a, predictions_b, y_true) -> PairedAccuracy:
    """Compare two classifiers' predictions on the same items.

    Parameters
    ----------
    predictions_a, predictions_b : array-like of shape (n,)
        Predicted labels, e.g. from :func:`skefh.metrics.probe_predictions` on two feature sets.
    y_true : array-like of shape (n,)

    Returns
    -------
    PairedAccuracy

    Raises
    ------
    ValueError
        If an input is not 1-D, the lengths differ, or there are no items.

    Examples
    --------
    >>> y = [0, 1, 1, 0, 1, 0, 1, 1]
    >>> r = paired_accuracy_test([0, 1, 1, 0, 1, 0, 1, 1], [0, 1, 0, 0, 0, 0, 1, 1], y)
    >>> r.only_a, r.only_b, r.p_value
    (2, 0, 0.5)
    """
    from scipy.stats import binom

    a = _labels(predictions_a, "predictions_a")
    b = _labels(predictions_b, "predictions_b")
    y = _labels(y_true, "y_true")
    if not (a.shape[0] == b.shape[0] == y.shape[0]):
        raise ValueError(
            f"predictions_a, predictions_b and y_true must have the same length, got "
            f"{a.shape[0]}, {b.shape[0]} and {y.shape[0]}"
        )
    if y.shape[0] == 0:
        raise ValueError("no test items to compare")
    right_a, right_b = a == y, b == y
    only_a = int(np.sum(right_a & ~right_b))
    only_b = int(np.sum(right_b & ~right_a))
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else min(1.0, 2.0 * float(binom.cdf(min(only_a, only_b), discordant, 0.5)))
    return PairedAccuracy(
        accuracy_a=float(np.mean(right_a)),
        accuracy_b=float(np.mean(right_b)),
        only_a=only_a,
        only_b=only_b,
        n=int(y.shape[0]),
        p_value=p_value,
    )
