"""Does the latent layer carry information about x, and can it move x? How many units' posteriors
vary with x, and how far a redraw of the latent moves the x-conditional."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..nn.base import sampling_mode
from ..nn.nnefh import NNEFHEnergy
from ..training.loop import latent_batch_usage, participation_ratio
from ._rows import working_tensor

__all__ = ["LatentUsage", "RedrawShift", "latent_usage", "redraw_shift"]


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
    logit_dimension : float
        How many independent directions the posterior's logits eta(x) span over the rows: the
        participation ratio ``(sum_i l_i)^2 / sum_i l_i^2`` of the eigenvalues ``l_i`` of their
        covariance (1 when every unit reads the same direction of U(x), up to K when the units'
        logits vary independently and equally; 0 when they do not vary). Units that all vary
        yet along one direction make a code a linear probe reads as one feature.
    """

    n_units: int
    varying: float
    always_on: float
    posterior_std: float
    entropy: float
    n_rows: int
    varying_std: float = float("nan")
    always_off: float = float("nan")
    logit_dimension: float = float("nan")

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
    view.features = "eta"
    logits = np.asarray(view.transform(X), dtype=np.float64)
    view.features = "mean"
    probabilities = np.asarray(view.transform(X), dtype=np.float64)
    on = probabilities > 0.5
    varying = float(np.mean(on.any(axis=0) & ~on.all(axis=0)))
    always_on = float(np.mean(on.all(axis=0)))
    p = np.clip(probabilities, 1e-12, 1 - 1e-12)
    entropy = float(np.mean(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))))
    varying_std, _, always_off = (float(v) for v in latent_batch_usage(torch.from_numpy(probabilities)))
    return LatentUsage(int(probabilities.shape[1]), varying, always_on, float(probabilities.std(axis=0).mean()),
                       entropy, int(probabilities.shape[0]), varying_std, always_off, _participation_ratio(logits))


def _participation_ratio(rows) -> float:
    """:func:`skefh.training.loop.participation_ratio` of a NumPy array, as a float."""
    return float(participation_ratio(torch.from_numpy(np.asarray(rows, dtype=np.float64))))


@dataclass(frozen=True)
class RedrawShift:
    """How far a Gibbs redraw of z moves the NN-EFH's x-conditional, against that conditional's
    width and the distance between rows (all in the model's working units).

    Attributes
    ----------
    mean_shift : float
        Mean over the rows of ``||grad_x (z - z') . eta(x)|| / 2``, z and z' two independent draws
        from p(z | x) at the sampler's latent temperature: to first order, how far the mode of
        p(x | z) moves when z is redrawn, if the quadratic term ``||x - mu||^2`` (Hessian 2 I in
        energy units) dominates the curvature. Zero when every unit is crisp (z' = z) or when
        the units that can flip have logits that do not change with x.
    median_shift : float
        Its median over the rows (0 where most rows keep every unit's state).
    conditional_spread : float
        ``sqrt(D T / (2 s))``: the root mean squared distance of a draw of the quadratic term's
        Gaussian at the sampler's visible temperature T and energy scale s from its mean.
    row_distance : float
        Mean distance between two different rows of ``X`` (the first half paired with the
        second).
    n_rows : int
    temperature : float
        The sampler's visible temperature over its energy scale, ``T / s``: the temperature of
        the density whose conditional ``conditional_spread`` measures.
    """

    mean_shift: float
    median_shift: float
    conditional_spread: float
    row_distance: float
    n_rows: int
    temperature: float

    @property
    def moving_temperature(self) -> float:
        """The temperature at which a redraw would move the mode by ``row_distance``.

        In one density ``exp(-E / T)`` with the same posteriors (logits ``eta / T`` held), the
        logits in energy units, and with them the shift, grow in proportion to ``T``. ``inf``
        when no redraw moves the mode.
        """
        if self.mean_shift <= 0.0:
            return math.inf
        return self.temperature * self.row_distance / self.mean_shift

    @property
    def spread_at_moving_temperature(self) -> float:
        """``conditional_spread`` at :attr:`moving_temperature` (it grows as ``sqrt(T)``).

        When this is as large as ``row_distance``, the temperature at which a redraw moves a
        chain from one row to another also lets Langevin alone spread a chain that far, so
        Gibbs-Langevin travels no further than Langevin at any temperature of one density.
        """
        if self.mean_shift <= 0.0:
            return math.inf
        return self.conditional_spread * math.sqrt(self.row_distance / self.mean_shift)

    def to_dict(self) -> dict:
        return {**asdict(self), "moving_temperature": self.moving_temperature,
                "spread_at_moving_temperature": self.spread_at_moving_temperature}


def redraw_shift(estimator, X, random_state=None) -> RedrawShift:
    """How far a redraw of the latent moves a fitted NNEFH's x-conditional at the rows ``X``.

    For ``E(z, x) = V(x) - z . eta(x)`` (every coupling: ``V`` is ``||x - mu||^2`` plus the
    read-out, ``eta`` the posterior's logits in energy units), the mode of p(x | z) satisfies
    ``grad V = grad (z . eta)``, so replacing z by z' moves it by about
    ``H^-1 grad_x (z' - z) . eta`` with H the Hessian of V. With the quadratic term's ``H = 2 I``
    this is ``||grad_x (z - z') . eta|| / 2``, whatever the temperature; the conditional's own
    width grows with the square root of the temperature. A Gibbs round moves a chain between
    modes only if the first is comparable to the distance between rows; Gibbs-Langevin then
    travels further than Langevin alone (the paper's Fig. 2, :func:`chain_distance`).

    Parameters
    ----------
    estimator : fitted NNEFH
    X : array-like of shape (n_samples, n_features)
        At least two rows (e.g. held-out data), in the units of the training data.
    random_state : int, RandomState instance or None, default=None
        Seeds the two latent draws.

    Returns
    -------
    RedrawShift
    """
    check_is_fitted(estimator, "module_")
    model = estimator.module_
    if not isinstance(model, NNEFHEnergy):
        raise ValueError(f"redraw_shift needs a fitted NNEFH, got {type(estimator).__name__}")
    x = working_tensor(estimator, X)
    if len(x) < 2:
        raise ValueError(f"redraw_shift needs at least two rows of X, got {len(x)}")
    settings = estimator.sampling_settings()
    visible_temperature, latent_temperature = settings.temperatures(model)
    seed = int(check_random_state(random_state).randint(2**31 - 1))
    device = estimator.device_
    generator = torch.Generator(device=device).manual_seed(seed)
    with sampling_mode(model), torch.enable_grad():
        x = x.requires_grad_(True)
        eta = model.posterior_logits(x)  # (B, K), energy units
        probabilities = torch.sigmoid(eta.detach() / latent_temperature)
        difference = (torch.bernoulli(probabilities, generator=generator)
                      - torch.bernoulli(probabilities, generator=generator))
        (grad,) = torch.autograd.grad((difference * eta).sum(), x)
    shift = 0.5 * grad.flatten(1).norm(dim=1)
    flat = x.detach().flatten(1)
    half = len(x) // 2
    row_distance = (flat[:half] - flat[half : 2 * half]).norm(dim=1).mean()
    spread = math.sqrt(flat.shape[1] * visible_temperature / (2.0 * settings.energy_scale))
    return RedrawShift(float(shift.mean()), float(shift.median()), spread, float(row_distance), len(x),
                       visible_temperature / settings.energy_scale)
