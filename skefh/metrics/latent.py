"""Does the latent layer carry information about x? How many units' posteriors vary with x."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..training.loop import latent_batch_usage

__all__ = ["LatentUsage", "latent_usage"]


@dataclass(frozen=True)
class LatentUsage:
    """How much the posterior p(z | x) changes across inputs.

    Attributes
    ----------
    n_units : int
        Number of latent units K.
    varying : float
        Fraction of units whose most probable state (``p(z_k = 1 | x) > 0.5``) is not the same
        for every row. 0 means the most probable latent vector is one constant for all inputs:
        a Gibbs step then draws (nearly) the same z wherever the chain is, and the model acts as
        an energy-based model with a fixed linear head on U(x).
    always_on : float
        Fraction of units on (``p(z_k = 1 | x) > 0.5``) for every row. With ``varying = 0`` these
        units are the linear head: their softplus terms in F(x) are (nearly) linear in U(x), and
        the other ``1 - always_on`` are off everywhere and contribute nothing.
    posterior_std : float
        Standard deviation of ``p(z_k = 1 | x)`` over the rows, averaged over the units.
    entropy : float
        Mean Bernoulli entropy of ``p(z_k | x)`` in bits (0: deterministic, 1: a fair coin).
    n_rows : int
    varying_std : float
        Fraction of units whose ``p(z_k = 1 | x)`` has a standard deviation of at least
        :data:`skefh.training.loop.VARYING_STD` (0.1) over the rows: the criterion that
        ``history_`` records per update (``latent_varying``) on each data batch.
    always_off : float
        Fraction of units off (``p(z_k = 1 | x) <= 0.5``) for every row.
    """

    n_units: int
    varying: float
    always_on: float
    posterior_std: float
    entropy: float
    n_rows: int
    varying_std: float = float("nan")
    always_off: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def latent_usage(estimator, X) -> LatentUsage:
    """Posterior statistics of a fitted latent-variable estimator (NNEFH or GRBM) on ``X``.

    Parameters
    ----------
    estimator : fitted NNEFH or GRBM
        Its ``transform`` with ``features="mean"`` gives the posterior means p(z = 1 | x) at
        the model's temperature; it is read through a shallow copy, so the caller's
        estimator (which another thread may be using) is never changed.
    X : array-like of shape (n_samples, n_features)
        At least two rows (e.g. held-out data).

    Returns
    -------
    LatentUsage
    """
    check_is_fitted(estimator, "module_")
    if not getattr(estimator.module_, "has_latent", False):
        raise ValueError(f"{type(estimator).__name__} has no latent layer")
    if len(X) < 2:
        raise ValueError(f"latent_usage needs at least two rows of X, got {len(X)}")
    # A view sharing the fitted state (not copy.copy, which pickles the model through the
    # estimator's __getstate__), with only ``features`` changed.
    view = object.__new__(type(estimator))
    view.__dict__.update(vars(estimator))
    view.features = "mean"
    probabilities = np.asarray(view.transform(X), dtype=np.float64)
    on = probabilities > 0.5
    varying = float(np.mean(on.any(axis=0) & ~on.all(axis=0)))
    always_on = float(np.mean(on.all(axis=0)))
    p = np.clip(probabilities, 1e-12, 1 - 1e-12)
    entropy = float(np.mean(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))))
    varying_std, _, always_off = (float(v) for v in latent_batch_usage(torch.from_numpy(probabilities)))
    return LatentUsage(int(probabilities.shape[1]), varying, always_on, float(probabilities.std(axis=0).mean()),
                       entropy, int(probabilities.shape[0]), varying_std, always_off)
