"""Log-likelihood summaries: bits per dimension for image data, and where AIS found the mass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._rows import working_tensor

__all__ = ["bits_per_dim", "AISChainEnds", "ais_chain_ends"]


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


@dataclass(frozen=True)
class AISChainEnds:
    """Where the chains of one forward AIS run ended, heaviest weight first.

    Attributes
    ----------
    states : ndarray of shape (n_chains, n_features)
        The chains' final states, in the units of the training data.
    log_weights : ndarray of shape (n_chains,)
        Their AIS log weights.
    weight_shares : ndarray of shape (n_chains,)
        Their normalised weights (summing to 1): the share of the estimate of Z each carries.
    log_density : ndarray of shape (n_chains,)
        The model's unnormalised log-density at each state, in working units (``-F / tau``:
        the quantity ``score_samples`` normalises, before the change of units).
    nearest_distance : ndarray of shape (n_chains,) or None
        Euclidean distance, in working units, from each state to its nearest row of ``X``.
    reference_log_density : ndarray of shape (n_rows,) or None
        The same log-density at the rows of ``X``, to compare with ``log_density``.
    reference_distance : float or None
        Median distance, in working units, from a row of ``X`` to its nearest other row: the
        scale on which ``nearest_distance`` says "near the data" or "away from it".
    log_z : float
        The run's estimate of log Z.
    ess : float
        The run's effective sample size.
    """

    states: np.ndarray
    log_weights: np.ndarray
    weight_shares: np.ndarray
    log_density: np.ndarray
    nearest_distance: Optional[np.ndarray]
    reference_log_density: Optional[np.ndarray]
    reference_distance: Optional[float]
    log_z: float
    ess: float


def ais_chain_ends(estimator, X=None, *, n_chains=None, n_steps=None, random_state=None) -> AISChainEnds:
    """Run the estimator's forward AIS once and report where its chains ended.

    An estimate of log Z that rests on few effective chains is usually carried by one or two
    chains that found mass the others missed. Whether that mass lies at the data (the model is
    sharp there and needs more steps) or away from it (a mode the model puts where no training
    row is, which its training chains never visited) decides what to change; this answers it.
    The run is the one :meth:`estimate_log_partition` makes with the same ``n_chains``,
    ``n_steps`` and ``random_state`` (the same path, seed and estimate; a GRBM small enough for
    the exact sum gets an AIS run here all the same), and changes no attribute of the estimator.

    Parameters
    ----------
    estimator : fitted NNEFH, EBM or GRBM
    X : array-like of shape (n_rows, n_features), optional
        Rows (e.g. the training data) to measure the chains' ends against.
    n_chains, n_steps : int, optional
        Default to the estimator's ``ais_chains`` and its resolved ``ais_steps``.
    random_state : int, RandomState instance or None, default=None
        Defaults to the estimator's ``random_state``, as ``estimate_log_partition`` does.

    Returns
    -------
    AISChainEnds
    """
    check_is_fitted(estimator, "module_")
    for name, value in (("n_chains", n_chains), ("n_steps", n_steps)):
        if value is not None and not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_chains is not None and n_chains < 2:
        raise ValueError(f"n_chains must be at least 2 for weights to compare, got {n_chains}")
    reference = None if X is None else working_tensor(estimator, X)
    result = estimator._ais(n_chains, n_steps, random_state, keep_states=True)
    order = torch.argsort(result.log_weights, descending=True)
    log_weights = result.log_weights[order]
    states = result.states[order].to(estimator.device_)
    ends = states.reshape(len(states), *estimator.module_.input_shape)
    log_density = estimator._working_log_density(ends).double().cpu().numpy()
    nearest = reference_log_density = reference_distance = None
    if reference is not None:
        flat_ends, flat_rows = ends.flatten(1).double(), reference.flatten(1).double()
        nearest = torch.cdist(flat_ends, flat_rows).min(1).values.cpu().numpy()
        reference_log_density = estimator._working_log_density(reference).double().cpu().numpy()
        if len(flat_rows) > 1:
            reference_distance = float(np.median(_nearest_other_distances(flat_rows)))
    working = states.flatten(1).double().cpu().numpy()
    return AISChainEnds(
        states=estimator.range_map_.to_data(working),
        log_weights=log_weights.numpy(),
        weight_shares=torch.softmax(log_weights, 0).numpy(),
        log_density=log_density,
        nearest_distance=nearest,
        reference_log_density=reference_log_density,
        reference_distance=reference_distance,
        log_z=float(result.log_z),
        ess=float(result.ess),
    )


def _nearest_other_distances(rows: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """Each row's distance to its nearest other row, a chunk of rows at a time (the full matrix
    of a training set's distances would not fit in memory)."""
    nearest = []
    for start in range(0, len(rows), chunk):
        block = torch.cdist(rows[start : start + chunk], rows)
        own = torch.arange(start, start + len(block), device=rows.device)
        block[torch.arange(len(block), device=rows.device), own] = math.inf
        nearest.append(block.min(1).values.cpu())
    return torch.cat(nearest).numpy()
