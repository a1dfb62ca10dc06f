"""Exact Euclidean nearest neighbours, e.g. of generated samples in the training set."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import to_numpy as _to_numpy

__all__ = ["nearest_neighbours"]


def _points(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(_to_numpy(x), dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, n_dims); got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} is empty; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def nearest_neighbours(queries, reference, n_neighbors: int = 3, batch_size: int = 1024):
    """Exact k nearest neighbours of each query among reference points.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
        Points to look up (e.g. model samples, flattened pixels).
    reference : array-like of shape (n_reference, d)
        Points to search (e.g. the training set).
    n_neighbors : int, default=3
        Number of neighbours ``k``; ``1 <= k <= n_reference``.
    batch_size : int, default=1024
        Number of queries processed at once.  Peak memory is about
        ``8 * batch_size * n_reference`` bytes (one float64 distance block),
        e.g. 0.5 GB for 60 000 reference points; lower it if needed.

    Returns
    -------
    indices : ndarray of shape (n_queries, k), dtype int64
        Row indices into ``reference``, nearest first.
    distances : ndarray of shape (n_queries, k), dtype float64
        Euclidean distances, ascending along each row.

    Raises
    ------
    ValueError
        If an input is not a non-empty finite 2-D array, the dimensions
        differ, ``n_neighbors`` is not in ``[1, n_reference]``, or
        ``batch_size`` is not a positive integer.

    Notes
    -----
    Candidates are ranked with the expansion
    ``||q - r||^2 = ||q||^2 - 2 q.r + ||r||^2`` (one matrix product per
    batch, in float64, negative rounding residues clipped to 0).  Both sets
    are first centred on the reference mean: distances are translation
    invariant, and centring shrinks the norms whose cancellation causes the
    rounding error.  The reported distances of the ``k`` selected
    candidates are then recomputed directly as ``||q - r||``, so an exact
    duplicate has distance exactly 0 instead of ``sqrt(rounding error)``.
    Ties are ordered by reference index.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    >>> idx, dist = nearest_neighbours(np.array([[0.9, 0.0]]), ref, n_neighbors=2)
    >>> idx.tolist(), np.round(dist, 6).tolist()
    ([[1, 0]], [[0.1, 0.9]])
    """
    q = _points(queries, "queries")
    r = _points(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"queries have {q.shape[1]} dimensions but reference has {r.shape[1]}"
        )
    k = _positive_int(n_neighbors, "n_neighbors")
    if k > r.shape[0]:
        raise ValueError(
            f"n_neighbors={k} exceeds the number of reference points ({r.shape[0]})"
        )
    batch_size = _positive_int(batch_size, "batch_size")

    centre = r.mean(axis=0)
    q_c = q - centre
    r_c = r - centre
    r_sq = np.einsum("ij,ij->i", r_c, r_c)

    n_q = q.shape[0]
    indices = np.empty((n_q, k), dtype=np.int64)
    distances = np.empty((n_q, k), dtype=np.float64)
    for start in range(0, n_q, batch_size):
        stop = min(start + batch_size, n_q)
        qb = q_c[start:stop]
        d2 = np.einsum("ij,ij->i", qb, qb)[:, None] - 2.0 * (qb @ r_c.T) + r_sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        if k < r.shape[0]:
            cand = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            cand = np.broadcast_to(np.arange(k), (stop - start, k))
        # Exact distances for the selected candidates (see Notes), one
        # neighbour rank at a time so memory stays O(batch_size * d) for any k.
        exact = np.empty(cand.shape, dtype=np.float64)
        for j in range(k):
            exact[:, j] = np.linalg.norm(q[start:stop] - r[cand[:, j]], axis=1)
        # Sort by distance, then by index so ties are deterministic.
        order = np.lexsort((cand, exact), axis=1)
        indices[start:stop] = np.take_along_axis(cand, order, axis=1)
        distances[start:stop] = np.take_along_axis(exact, order, axis=1)
    return indices, distances
