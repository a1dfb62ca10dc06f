"""Maximum mean discrepancy between two samples, with a permutation test.

A Gaussian kernel with the median heuristic for its bandwidth; the unbiased estimate of the
squared MMD. Used to compare a model's samples with held-out rows or with draws from its own
density (:mod:`skefh.metrics.density`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["mmd", "MMDTest", "mmd_test"]


def _as_2d(X, name) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"{name} must be a 2-D array with at least 2 rows, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _squared_distances(A, B) -> np.ndarray:
    return cdist(A, B, "sqeuclidean")  # differences first: no cancellation between near rows


def _median_bandwidth(Z, max_points=1000) -> float:
    """Median pairwise distance of (up to ``max_points`` evenly spaced) pooled rows."""
    if len(Z) > max_points:
        Z = Z[np.linspace(0, len(Z) - 1, max_points).astype(int)]
    d = np.sqrt(_squared_distances(Z, Z)[np.triu_indices(len(Z), k=1)])
    if np.median(d) > 0:
        return float(np.median(d))
    return float(d[d > 0].mean()) if np.any(d > 0) else 1.0  # mostly repeated rows


def _kernel(X, Y, bandwidth):
    Z = np.concatenate([X, Y])
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ValueError(f'bandwidth must be "median" or a positive float, got {bandwidth!r}')
        bandwidth = _median_bandwidth(Z)
    bandwidth = float(bandwidth)
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    return np.exp(-_squared_distances(Z, Z) / (2.0 * bandwidth**2)), bandwidth


def _mmd_from_kernel(K, labels) -> np.ndarray:
    """Unbiased MMD^2 for each column of ``labels`` (1 marks the first sample) from the pooled
    kernel matrix, whose diagonal is 1."""
    a = labels.astype(np.float64)
    b = 1.0 - a
    Ka = K @ a
    m = a[:, 0].sum()
    n = b[:, 0].sum()
    xx = (a * Ka).sum(0) - m
    xy = (b * Ka).sum(0)
    yy = (b * (K @ b)).sum(0) - n
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n)


def mmd(X, Y, bandwidth="median") -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel.

    ``k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2))``; with ``"median"`` the bandwidth is the
    median pairwise distance of the pooled sample. The unbiased estimate can be slightly
    negative when the two distributions are the same.

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d)
    bandwidth : "median" or float, default="median"

    Returns
    -------
    float
    """
    X, Y = _as_2d(X, "X"), _as_2d(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y need the same number of columns, got {X.shape[1]} and {Y.shape[1]}")
    K, _ = _kernel(X, Y, bandwidth)
    labels = np.zeros((len(X) + len(Y), 1))
    labels[: len(X)] = 1
    return float(_mmd_from_kernel(K, labels)[0])


@dataclass
class MMDTest:
    """Result of :func:`mmd_test`.

    Attributes
    ----------
    statistic : float
        Unbiased squared MMD.
    p_value : float
        Permutation p-value, ``(1 + #{permuted >= observed}) / (1 + n_permutations)``.
    bandwidth : float
        The kernel bandwidth used.
    n_permutations : int
    """

    statistic: float
    p_value: float
    bandwidth: float
    n_permutations: int

    def to_dict(self) -> dict:
        return asdict(self)


def mmd_test(X, Y, n_permutations: int = 200, bandwidth="median", random_state=None) -> MMDTest:
    """Two-sample permutation test with the unbiased squared MMD (:func:`mmd`).

    The kernel bandwidth is fixed from the pooled sample (the median heuristic does not
    depend on the labels), then the rows are relabelled ``n_permutations`` times.

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d)
    n_permutations : int, default=200
    bandwidth : "median" or float, default="median"
    random_state : int, numpy Generator or None

    Returns
    -------
    MMDTest
    """
    X, Y = _as_2d(X, "X"), _as_2d(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y need the same number of columns, got {X.shape[1]} and {Y.shape[1]}")
    n_permutations = int(n_permutations)
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    K, bw = _kernel(X, Y, bandwidth)
    m, total = len(X), len(X) + len(Y)
    observed = np.zeros((total, 1))
    observed[:m] = 1
    statistic = float(_mmd_from_kernel(K, observed)[0])
    rng = np.random.default_rng(random_state)
    exceed = 0
    for start in range(0, n_permutations, 50):
        k = min(50, n_permutations - start)
        labels = np.zeros((total, k))
        for j in range(k):
            labels[rng.permutation(total)[:m], j] = 1
        exceed += int(np.sum(_mmd_from_kernel(K, labels) >= statistic))
    return MMDTest(statistic, (1 + exceed) / (1 + n_permutations), bw, n_permutations)
