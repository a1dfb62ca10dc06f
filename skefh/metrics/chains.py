"""How far samplers travel: Gibbs-Langevin against Langevin alone (the paper's Fig. 2 claim)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..nn.base import sampling_mode
from ..samplers import gibbs_langevin, langevin, step_schedule
from ..samplers.langevin import clip_to_box
from ._rows import working_tensor

__all__ = ["ChainDistance", "chain_distance"]


@dataclass(frozen=True)
class ChainDistance:
    """Mean Euclidean distance between the start and the end of the chains (working units).

    Attributes
    ----------
    gibbs_langevin : float
        After ``gibbs_steps`` rounds of ``langevin_steps`` steps with latent redraws.
    langevin : float
        After the same total number of Langevin steps on the marginal free energy F(x)
        (``target="marginal"``) or with the first latent draw held fixed
        (``target="fixed_latent"``).
    ratio : float
        ``gibbs_langevin / langevin`` (the paper reports about 10).
    n_chains, gibbs_steps, langevin_steps : int
    """

    gibbs_langevin: float
    langevin: float
    ratio: float
    n_chains: int
    gibbs_steps: int
    langevin_steps: int

    def to_dict(self) -> dict:
        return asdict(self)


def chain_distance(estimator, n_chains=64, *, gibbs_steps=None, langevin_steps=None,
                   target="marginal", temperature=None, start=None, random_state=None) -> ChainDistance:
    """Distance travelled by Gibbs-Langevin and by Langevin alone from the same start.

    Both chains start at the same x (N(0, I) in working units, or ``start``; clipped into the
    estimator's chain box where it has one, which both chains then keep) and use the
    estimator's sampler settings;
    Gibbs-Langevin runs ``gibbs_steps`` x ``langevin_steps`` steps with a latent redraw after
    each block, Langevin alone runs ``gibbs_steps * langevin_steps`` steps. The paper (5 x 60
    against 300 steps) reports the Gibbs-Langevin chains travelling about 10x
    further, "particularly during the initial training phase".

    Parameters
    ----------
    estimator : fitted NNEFH or GRBM
        A model with a latent layer.
    n_chains : int, default=64
    gibbs_steps, langevin_steps : int, optional
        Default to the estimator's sampler settings.
    target : {"marginal", "fixed_latent"}, default="marginal"
        What Langevin alone samples: the marginal exp(-F(x) / tau) (the model seen as an EBM),
        or the conditional with the initial latent draw kept fixed.
    temperature : float, optional
        Run both samplers at this temperature instead of the model's (as ``sample`` does).
    start : array-like of shape (n, n_features), optional
        Start the chains at these rows (in the units of the training data, e.g. held-out
        images) instead of noise; ``n_chains`` is then ``n``. From noise, the distance of a
        short chain is mostly the contraction of the noise towards mu under the quadratic
        term, the same with or without latent redraws; from data it measures how far each
        sampler moves away from where it starts (mixing).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ChainDistance
    """
    check_is_fitted(estimator, "module_")
    model = estimator.module_
    if not model.has_latent:
        raise ValueError(f"{type(estimator).__name__} has no latent layer: there is no Gibbs step")
    if target not in ("marginal", "fixed_latent"):
        raise ValueError(f"target must be 'marginal' or 'fixed_latent', got {target!r}")
    # Like for like: unadjusted Euler steps in both chains, as in the paper's Fig. 2 (not a
    # GRBM's exact Gaussian blocks or Metropolis-adjusted steps, which Langevin alone on the
    # marginal does not take).
    settings = estimator.sampling_settings(gibbs_steps=gibbs_steps, langevin_steps=langevin_steps,
                                           temperature=temperature).with_(exact_blocks=False, metropolis=False)
    visible_temperature, latent_temperature = settings.temperatures(model)
    seed = int(check_random_state(random_state).randint(2**31 - 1))
    device = estimator.device_
    generator = torch.Generator(device=device).manual_seed(seed)
    dtype = next(model.parameters()).dtype
    if start is None:
        x0 = torch.randn((n_chains, *model.input_shape), generator=generator, device=device, dtype=dtype)
    else:
        x0 = working_tensor(estimator, start, "start")
        n_chains = len(x0)
    if settings.bounds is not None:
        # Gibbs-Langevin starts in the model's chain box and keeps its chains there: Langevin
        # alone does too, and both distances are measured from the same start in the box.
        x0 = clip_to_box(x0.clone(), *settings.bounds)
    with sampling_mode(model), torch.no_grad():
        z0 = model.sample_latent(x0, generator, latent_temperature)
    state = generator.get_state()
    gl = gibbs_langevin(model, x0, z0, settings, generator=generator)["x"]
    # The same start and the same noise for the first block (the latent redraws of
    # Gibbs-Langevin consume random numbers, so later blocks' noise differs).
    generator.set_state(state)
    grad_fn = model.free_energy_grad if target == "marginal" else model.conditional_grad(z0)
    # Like for like: the same per-block step schedule, repeated, at the same precision.
    block = step_schedule(settings.step_size * model.step_size_scale(), settings.n_langevin, settings.schedule)
    low_precision = settings.precision == "bfloat16"
    with sampling_mode(model), torch.autocast(x0.device.type, torch.bfloat16, enabled=low_precision):
        ld = langevin(
            grad_fn, x0, step_size=block * settings.n_gibbs, temperature=visible_temperature,
            energy_scale=settings.energy_scale, bounds=settings.bounds, generator=generator,
        )["x"]
    d_gl = float((gl - x0).flatten(1).norm(dim=1).mean())
    d_ld = float((ld - x0).flatten(1).norm(dim=1).mean())
    return ChainDistance(d_gl, d_ld, d_gl / d_ld if d_ld > 0 else float("inf"), n_chains,
                         settings.n_gibbs, settings.n_langevin)
