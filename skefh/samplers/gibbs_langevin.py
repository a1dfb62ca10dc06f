"""Langevin-within-Gibbs: the one sampler driver shared by NN-EFH, GRBM and EBM.

Each of M rounds runs L Langevin steps on x with z held fixed, then redraws z ~ p(z | x)
(NN-EFH paper, Algorithm 1 lines 12-18; the GRBM reference's ``Gibbs_Langevin_sampling_vh``).
x persists across the rounds of one call. For a model without a latent (the EBM) the rounds are
simply consecutive Langevin blocks, i.e. M * L steps of short-run Langevin.

Algorithm 1 (training) starts x from N(0, I) and z from p(z | x); Algorithm 2 (generation)
starts x from N(0, I) and z from the posterior of a data batch: :func:`sample_from_noise` and
:func:`sample_from_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from ..nn.base import EnergyModel, sampling_mode
from .langevin import clip_to_box, langevin, metropolis_langevin, step_schedule

__all__ = [
    "GibbsLangevinSettings",
    "gibbs_langevin",
    "sample_from_noise",
    "sample_from_data",
    "training_negatives",
]

_VISIBLE_STEPS = ("langevin", "exact")
_KEEP = ("last", "all")
_PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class GibbsLangevinSettings:
    """Settings of one Gibbs-Langevin run.

    Parameters
    ----------
    n_gibbs : int
        M, the number of Gibbs rounds.
    n_langevin : int
        L, Langevin steps per round.
    step_size : float
        eps (multiplied by the model's :meth:`~skefh.nn.EnergyModel.step_size_scale`): each
        Langevin step is ``x <- x - eps * s * dE/dx + sqrt(2 eps T) xi``.
    temperature : float or None, default=None
        T of the Langevin noise; None uses the model's own temperature tau, so that the chain
        targets the model's density. Another value samples the tempered density exp(-E / T).
    latent_temperature : float or None, default=None
        Temperature of the latent draws z ~ Bern(sigmoid(eta / T_z)); None uses the x-steps'
        ``temperature``, so that both halves of the chain target one density,
        p_T(x, z) proportional to exp(-E(z, x) / T). The NN-EFH paper's sampler draws z at 1 while
        its x-steps run at about 3e-3: that chain targets neither density (kept for the paper's
        presets).
    energy_scale : float, default=1.0
        s, the factor on the energy in the Langevin drift. 1 targets exp(-E / T); the GRBM
        reference code divides its energies by the batch size (s = 1 / B), which makes its
        x-steps target exp(-E / (B T)) while its latent draws stay at T.
    schedule : {"constant", "cosine"}, default="constant"
        Step-size schedule within each round.
    visible_step : {"langevin", "exact"}, default="langevin"
        "exact" draws x ~ p(x | z) in closed form (GRBM only) instead of Langevin steps.
    precision : {"float32", "bfloat16"}, default="float32"
        "bfloat16" computes the Langevin energy gradients under bfloat16 autocast (faster on
        CPUs with native bfloat16, see the performance page of the docs; the chain state, its
        noise and the latent draws stay float32). Validated against float32 in the tests and
        ``benchmarks/``.
    exact_blocks : bool, default=True
        Where the model integrates the Langevin diffusion of its visible conditional exactly
        (``model.conditional_langevin``: the GRBM, whose x | z is Gaussian), use that instead
        of Euler steps. False runs Euler steps for every model (like-for-like comparisons with
        Langevin alone on another target, as in :func:`skefh.metrics.chain_distance`).
    metropolis : bool, default=False
        Metropolis-adjusted Langevin (:func:`~skefh.samplers.langevin.metropolis_langevin`):
        every x-step is accepted or rejected so that the chain leaves the target invariant at
        any step size. With latent draws at the x-steps' temperature the whole chain then
        samples p_T(x, z) without discretisation bias. Ignores ``precision`` (energies are
        compared in float32) and needs a positive temperature.
    bounds : (low, high) or None, default=None
        Keep the visible chain in the box [low, high] (floats, or tensors shaped like one
        input) by clipping after every Langevin step; for small steps the chain targets the
        density restricted to the box (at a finite step its faces hold an O(sqrt(step)) share of
        the mass). None leaves x unbounded.
    """

    n_gibbs: int
    n_langevin: int
    step_size: float
    temperature: Optional[float] = None
    latent_temperature: Optional[float] = None
    energy_scale: float = 1.0
    schedule: str = "constant"
    visible_step: str = "langevin"
    precision: str = "float32"
    exact_blocks: bool = True
    metropolis: bool = False
    bounds: Optional[tuple] = None

    def __post_init__(self):
        if self.n_gibbs < 1 or self.n_langevin < 0:
            raise ValueError(
                f"need n_gibbs >= 1 and n_langevin >= 0, got {self.n_gibbs} and {self.n_langevin}"
            )
        if not (self.step_size > 0 and self.energy_scale > 0):
            raise ValueError(
                f"need step_size > 0 and energy_scale > 0, got {self.step_size} and {self.energy_scale}"
            )
        for name in ("temperature", "latent_temperature"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if self.visible_step not in _VISIBLE_STEPS:
            raise ValueError(f"visible_step must be one of {_VISIBLE_STEPS}, got {self.visible_step!r}")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.bounds is not None and len(self.bounds) != 2:
            raise ValueError(f"bounds must be a pair (low, high) or None, got {self.bounds!r}")

    def with_(self, **changes) -> "GibbsLangevinSettings":
        """Copy with some fields changed."""
        return replace(self, **changes)

    def temperatures(self, model: EnergyModel) -> tuple[float, float]:
        """(T of the x-steps, T of the latent draws) for ``model``."""
        visible = self.temperature if self.temperature is not None else model.temperature
        latent = self.latent_temperature if self.latent_temperature is not None else visible
        return float(visible), float(latent)


def gibbs_langevin(
    model: EnergyModel,
    x: torch.Tensor,
    z: Optional[torch.Tensor],
    settings: GibbsLangevinSettings,
    *,
    generator: Optional[torch.Generator] = None,
    keep: str = "last",
) -> dict:
    """Run M rounds of (L Langevin steps on x given z, then z ~ p(z | x)).

    Parameters
    ----------
    model : EnergyModel
        Borrowed, not owned: it is frozen for the duration (:func:`sampling_mode`) and restored.
    x : torch.Tensor of shape (B, ...)
        Initial visible state; not modified.
    z : torch.Tensor of shape (B, K) or None
        Initial latent state; drawn from p(z | x) when None (ignored by latent-free models).
    settings : GibbsLangevinSettings
    generator : torch.Generator, optional
        Source of all randomness (Langevin noise and Bernoulli draws).
    keep : {"last", "all"}, default="last"
        "all" also returns the state after every round (``xs``, ``zs``: lists of length M),
        for the GRBM's averaged negative statistics and for chain figures.

    Returns
    -------
    dict
        ``x``, ``z`` (final state; ``z`` is None without a latent), ``grad_norm`` (mean
        ||s dE/dx|| over all steps), ``x_min``, ``x_max`` (range of the final x), and ``xs``,
        ``zs`` when ``keep="all"``.
    """
    if keep not in _KEEP:
        raise ValueError(f"keep must be one of {_KEEP}, got {keep!r}")
    if settings.visible_step == "exact" and not model.has_latent:
        raise ValueError("exact visible steps need a model with a latent layer")
    xs, zs = [], []
    grad_norm = torch.zeros((), device=x.device)
    acceptance = torch.zeros((), device=x.device)
    temperature, latent_temperature = settings.temperatures(model)
    # Models whose x | z is Gaussian integrate the Langevin diffusion exactly (stable at any step).
    exact_block = getattr(model, "conditional_langevin", None) if settings.exact_blocks else None
    with sampling_mode(model), torch.no_grad():
        steps = step_schedule(
            settings.step_size * model.step_size_scale(), settings.n_langevin, settings.schedule
        )
        x = x.detach()
        if settings.bounds is not None:  # the first latent draw already sees a state in the box
            x = clip_to_box(x.clone(), *settings.bounds)
        if model.has_latent and z is None:
            z = model.sample_latent(x, generator, latent_temperature)
        for _ in range(settings.n_gibbs):
            if settings.visible_step == "exact":
                x = model.sample_visible(z, generator, temperature)
            else:
                out = _visible_block(model, x, z, steps, settings, temperature, exact_block, generator)
                x = out["x"]
                grad_norm += out["grad_norm"]
                if settings.metropolis:
                    acceptance += out["acceptance"]
            if model.has_latent:
                z = model.sample_latent(x, generator, latent_temperature)
            if keep == "all":
                xs.append(x)
                zs.append(z)
    result = {
        "x": x,
        "z": z if model.has_latent else None,
        "grad_norm": grad_norm / settings.n_gibbs,
        # Fraction of Metropolis-adjusted moves accepted (NaN for unadjusted chains).
        "acceptance": acceptance / settings.n_gibbs if settings.metropolis else torch.tensor(float("nan")),
        "x_min": x.min(),
        "x_max": x.max(),
    }
    if keep == "all":
        result["xs"], result["zs"] = xs, zs
    return result


def _visible_block(model, x, z, steps, settings, temperature, exact_block, generator) -> dict:
    """One block of Langevin steps on x given z, by the integrator the model and settings ask for:
    the model's exact one (``exact_block``), Metropolis-adjusted steps, or Euler steps."""
    options = dict(temperature=temperature, energy_scale=settings.energy_scale, bounds=settings.bounds,
                   generator=generator)
    if exact_block is not None:  # a Gaussian conditional (GRBM): the diffusion solved exactly
        return exact_block(x, z, steps, **options)
    if settings.metropolis:
        return metropolis_langevin(model.conditional_energy(z), x, step_size=steps, **options)
    with torch.autocast(x.device.type, torch.bfloat16, enabled=settings.precision == "bfloat16"):
        return langevin(model.conditional_grad(z), x, step_size=steps, **options)


def _noise_like_inputs(
    model: EnergyModel, n: int, device, generator: Optional[torch.Generator]
) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    return torch.randn((n, *model.input_shape), generator=generator, device=device, dtype=dtype)


def sample_from_noise(
    model: EnergyModel,
    n: int,
    settings: GibbsLangevinSettings,
    *,
    device=None,
    generator: Optional[torch.Generator] = None,
    keep: str = "last",
) -> dict:
    """Algorithm 1's TRAININGSAMPLER: x ~ N(0, I), z ~ p(z | x), then Gibbs-Langevin.

    Parameters
    ----------
    model : EnergyModel
    n : int
        Number of chains.
    settings : GibbsLangevinSettings
    device : torch.device, optional
        Defaults to the model's device.
    generator : torch.Generator, optional
    keep : {"last", "all"}

    Returns
    -------
    dict
        As :func:`gibbs_langevin`, plus ``x0`` (the initial noise).
    """
    device = device if device is not None else next(model.parameters()).device
    x0 = _noise_like_inputs(model, n, device, generator)
    out = gibbs_langevin(model, x0, None, settings, generator=generator, keep=keep)
    out["x0"] = x0
    return out


def sample_from_data(
    model: EnergyModel,
    x_data: torch.Tensor,
    settings: GibbsLangevinSettings,
    *,
    generator: Optional[torch.Generator] = None,
    keep: str = "last",
) -> dict:
    """Algorithm 2's TESTSAMPLER: z ~ p(z | x_data), x ~ N(0, I), then Gibbs-Langevin.

    Parameters
    ----------
    model : EnergyModel
        Must have a latent layer.
    x_data : torch.Tensor of shape (n, ...)
        Data whose posterior initialises the latent chain.
    settings : GibbsLangevinSettings
    generator : torch.Generator, optional
    keep : {"last", "all"}

    Returns
    -------
    dict
        As :func:`gibbs_langevin`, plus ``x0``.
    """
    if not model.has_latent:
        raise ValueError(f"{type(model).__name__} has no latent layer to initialise from data")
    latent_temperature = settings.temperatures(model)[1]
    with sampling_mode(model), torch.no_grad():
        z0 = model.sample_latent(x_data, generator, latent_temperature)
    x0 = _noise_like_inputs(model, x_data.shape[0], x_data.device, generator)
    out = gibbs_langevin(model, x0, z0, settings, generator=generator, keep=keep)
    out["x0"] = x0
    return out


def training_negatives(
    model: EnergyModel,
    x_pos: torch.Tensor,
    settings: GibbsLangevinSettings,
    *,
    data_fraction: float = 0.0,
    x_init: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    keep: str = "last",
) -> dict:
    """Model samples for one training update: x from noise, the latent from noise or data.

    ``data_fraction = 0`` is Algorithm 1 (TRAININGSAMPLER: z ~ p(z | noise)); ``1`` starts every
    latent chain from the posterior of the positive batch, as Algorithm 2 does at test time;
    values in between start that fraction of the chains from data (the first author's EFH code
    has a ``data_init_fraction`` option of this kind).

    Parameters
    ----------
    model : EnergyModel
    x_pos : torch.Tensor of shape (B, ...)
        The positive batch; ``B`` chains are drawn.
    settings : GibbsLangevinSettings
    data_fraction : float, default=0.0
    x_init : torch.Tensor of shape (B, ...), optional
        Where the visible chains start (a replay buffer's states); fresh N(0, I) noise when
        None, as in Algorithm 1.
    generator : torch.Generator, optional
    keep : {"last", "all"}

    Returns
    -------
    dict
        As :func:`gibbs_langevin`, plus ``x0``.
    """
    n = x_pos.shape[0]
    n_data = int(round(data_fraction * n)) if model.has_latent else 0
    if x_init is None:
        x0 = _noise_like_inputs(model, n, x_pos.device, generator)
    elif x_init.shape != (n, *model.input_shape):
        raise ValueError(
            f"x_init must have shape {(n, *model.input_shape)} (one chain per positive), "
            f"got {tuple(x_init.shape)}"
        )
    else:
        x0 = x_init.detach()
    if settings.bounds is not None:  # the latent draws below see the start in the box, as gibbs_langevin's do
        x0 = clip_to_box(x0.clone(), *settings.bounds)
    z0 = None
    if n_data > 0:
        latent_temperature = settings.temperatures(model)[1]
        with sampling_mode(model), torch.no_grad():
            z_data = model.sample_latent(x_pos[:n_data].to(x0.dtype), generator, latent_temperature)
            z_noise = (
                model.sample_latent(x0[n_data:], generator, latent_temperature) if n_data < n else z_data[:0]
            )
        z0 = torch.cat([z_data, z_noise])
    out = gibbs_langevin(model, x0, z0, settings, generator=generator, keep=keep)
    out["x0"] = x0
    return out
