"""Log-likelihood summaries: bits per dimension for image data."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bits_per_dim"]


def bits_per_dim(estimator, X, *, n_levels: int = 256, data_range=None) -> float:
    """Mean negative log-likelihood of ``X`` in bits per dimension, for discretised images.

    The estimator's ``score_samples`` is a density in the units of ``X`` (it already includes
    the Jacobian of the map to working units). An image with ``n_levels`` intensity levels
    spanning the training data's range ``[lo, hi]`` puts each pixel in a bin of width
    ``delta = (hi - lo) / (n_levels - 1)``; the probability of that bin is about
    ``p(x) * delta`` per dimension (the usual dequantisation argument), so

        bits/dim = -(log p(x) + D log delta) / (D log 2),

    averaged over the rows. For 8-bit images this is the figure generative-model papers report.

    Parameters
    ----------
    estimator : fitted NNEFH, EBM or GRBM
        Its density must be normalised: a stored ``log_partition_``, or ``log_partition`` not
        None (``score_samples`` then estimates log Z on demand).
    X : array-like of shape (n_samples, n_features)
    n_levels : int, default=256
    data_range : (float, float), optional
        The intensities ``(lo, hi)`` that the ``n_levels`` levels span, e.g. ``(0, 255)``.
        Default: the training data's range, which is right when the training images reach both
        extremes (as MNIST and CIFAR-10 do).

    Returns
    -------
    float
    """
    if n_levels < 2:
        raise ValueError(f"n_levels must be at least 2, got {n_levels}")
    if estimator.range_map_.kind != "image":
        raise ValueError("bits per dimension are defined here for image data (image_shape_ set)")
    if estimator.log_partition is None and getattr(estimator, "log_partition_", None) is None:
        raise ValueError(
            "bits per dimension need a normalised density: set log_partition='auto' "
            "(or call estimate_log_partition())"
        )
    # Normalised: by the stored log Z, or by one score_samples estimates on demand.
    log_density = np.asarray(estimator.score_samples(X), dtype=np.float64)
    n_dims = estimator.n_features_in_
    if data_range is None:
        width = 2.0 / float(estimator.range_map_.scale[0])  # the [lo, hi] sent to [-1, 1]
    else:
        lo, hi = (float(v) for v in data_range)
        if not hi > lo:
            raise ValueError(f"data_range must be (lo, hi) with hi > lo, got {data_range!r}")
        width = hi - lo
    delta = width / (n_levels - 1)
    return float(-(log_density.mean() + n_dims * math.log(delta)) / (n_dims * math.log(2.0)))
