"""Annealed importance sampling (Neal 2001) for the log-partition function log Z.

AIS moves chains from a tractable base density f_0 (known normaliser Z_0, exact samples) to the
target f_1 through intermediate densities f_beta, 0 = beta_0 < ... < beta_T = 1. Each chain
carries a log weight sum_t [log f_{beta_t}(x_t) - log f_{beta_{t-1}}(x_t)], where x_t was produced
by a transition that leaves f_{beta_{t-1}} invariant. Then Z_1 / Z_0 = E[exp(log weight)], so

    log Z = log Z_0 + logmeanexp(log weights),

with a standard error from the delta method. The estimate of Z is unbiased; that of log Z is
biased low when the weights are very uneven, which the effective sample size reveals.

The annealing paths (one per model family) are in :mod:`skefh.samplers.annealing_paths`;
log Z without chains (exact for small GRBMs, a lower bound from a kernel density) is here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..nn.base import sampling_mode

__all__ = [
    "AISResult",
    "annealed_importance_sampling",
    "reverse_annealed_importance_sampling",
    "grbm_exact_log_partition",
    "kernel_lower_bound",
    "kernel_log_weights",
]


@dataclass(frozen=True)
class AISResult:
    """An AIS estimate of log Z.

    Attributes
    ----------
    log_z : float
        The estimate of log Z.
    log_z_std : float
        Its standard error (delta method on the importance weights).
    ess : float
        Effective sample size of the final weights, between 1 and ``n_chains``.
    n_chains : int
    n_steps : int
        Number of intermediate distributions.
    acceptance : float
        Mean Metropolis acceptance rate of the moves (1.0 for Gibbs moves).
    log_weights : torch.Tensor of shape (n_chains,)
    states : torch.Tensor of shape (n_chains, ...) or None
        The chains' final states, in the order of ``log_weights`` (kept on request only:
        ``keep_states=True``). Forward: where each chain ended at the target, so the heaviest
        weights say where the mass the estimate rests on lies; reverse: where each ended at the
        base.
    """

    log_z: float
    log_z_std: float
    ess: float
    n_chains: int
    n_steps: int
    acceptance: float
    log_weights: torch.Tensor
    states: Optional[torch.Tensor] = None


def linear_schedule(n_steps: int) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_n = 1, evenly spaced (the default).

    Against the exact log Z of a small GRBM with large weights, even spacing gave a smaller bias
    and spread than schedules concentrated near 0 (geometric) or near both ends (sigmoid); see
    the likelihood page of the docs.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64)


def _check_betas(betas: torch.Tensor) -> torch.Tensor:
    betas = torch.as_tensor(betas, dtype=torch.float64).flatten().cpu()
    if betas.numel() < 2 or betas[0] != 0.0 or betas[-1] != 1.0 or bool(torch.any(betas[1:] < betas[:-1])):
        raise ValueError("betas must be a non-decreasing schedule of at least two values from 0 to 1")
    return betas


def _log_mean_exp_with_se(log_weights: torch.Tensor) -> tuple[float, float, float]:
    lw = log_weights.double()
    n = lw.numel()
    log_mean = torch.logsumexp(lw, 0) - math.log(n)
    normalised = torch.exp(lw - log_mean)  # w / mean(w)
    # Var(log mean w) ~ Var(w) / (n mean(w)^2) by the delta method.
    se = float(normalised.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("inf")
    ess = float(normalised.sum() ** 2 / normalised.square().sum())
    return float(log_mean), se, ess


def annealed_importance_sampling(
    path,
    n_chains: int = 64,
    n_steps: int = 1000,
    *,
    generator: Optional[torch.Generator] = None,
    betas: Optional[torch.Tensor] = None,
    keep_states: bool = False,
) -> AISResult:
    """Estimate log Z of ``path``'s target by annealed importance sampling.

    Parameters
    ----------
    path : GaussianMixtureBasePath, BoxPath or GRBMPath
    n_chains : int, default=64
    n_steps : int, default=1000
        Number of intermediate distributions (ignored when ``betas`` is given).
    generator : torch.Generator, optional
    betas : torch.Tensor, optional
        A custom schedule, non-decreasing from exactly 0 to exactly 1; default
        :func:`linear_schedule` with ``n_steps`` steps.
    keep_states : bool, default=False
        Return the chains' final states (``AISResult.states``): where the chains that carry
        the estimate ended, e.g. to see whether the heaviest lie near the data or in a mode
        the model puts away from it.

    Returns
    -------
    AISResult
    """
    betas = linear_schedule(n_steps) if betas is None else _check_betas(betas)
    model = path.model
    with sampling_mode(model), torch.no_grad():
        x = path.sample_base(n_chains, generator)
        log_weights = torch.zeros(n_chains, dtype=torch.float64, device=x.device)
        for t in range(1, len(betas)):
            b_prev, b_next = float(betas[t - 1]), float(betas[t])
            log_weights += path.log_weight_increment(x, b_prev, b_next)
            if t < len(betas) - 1:
                x = path.transition(x, b_next, generator)
    log_mean, se, ess = _log_mean_exp_with_se(log_weights)
    return AISResult(
        log_z=path.log_z0 + log_mean,
        log_z_std=se,
        ess=ess,
        n_chains=n_chains,
        n_steps=len(betas) - 1,
        acceptance=float(path.acceptance),
        log_weights=log_weights.cpu(),
        states=x.detach().cpu() if keep_states else None,
    )


def reverse_annealed_importance_sampling(
    path,
    x_start: torch.Tensor,
    n_steps: int = 1000,
    *,
    generator: Optional[torch.Generator] = None,
    betas: Optional[torch.Tensor] = None,
    burn_in: int = 0,
    keep_states: bool = False,
) -> AISResult:
    """An upper estimate of log Z: AIS run backwards from samples of the target (BDMC).

    Chains start at ``x_start``, samples of the target f_1, and move down the same path as
    :func:`annealed_importance_sampling` (transitions that leave each f_beta invariant, from
    beta = 1 to 0), carrying the log weight sum_t [log f_{beta_{t-1}}(x_t) - log f_{beta_t}(x_t)],
    whose exponential has expectation Z_0 / Z_1. So ``log Z_0 - logmeanexp(log weights)`` is a
    stochastic upper bound on log Z (its expectation is at least log Z, by Jensen), as the
    forward estimate is a stochastic lower bound: together they bracket log Z, and a wide
    bracket says that at least one of them has not converged (Grosse et al. 2015,
    bidirectional Monte Carlo). The bound holds for exact samples of the target; from
    approximate ones (a model's own sampler, or data rows the model fits) it is a diagnostic;
    ``burn_in`` moves them nearer the target first.

    Parameters
    ----------
    path : GaussianMixtureBasePath, BoxPath or GRBMPath
    x_start : torch.Tensor of shape (n_chains, ...)
        The chains' starting states, samples of the target (in the path's units).
    n_steps : int, default=1000
        Number of intermediate distributions (ignored when ``betas`` is given).
    generator : torch.Generator, optional
    betas : torch.Tensor, optional
        The forward schedule, non-decreasing from 0 to 1 (run here from 1 to 0).
    burn_in : int, default=0
        Transitions of the target itself (beta = 1) applied to ``x_start`` before the reverse
        run: starts that are not exact samples of the target (data rows) move towards it, and
        the bound holds the better the closer they get.
    keep_states : bool, default=False
        Return the chains' final states, at the base (``AISResult.states``).

    Returns
    -------
    AISResult
        ``log_z`` is the upper estimate; ``log_z_std`` and ``ess`` are those of the reverse
        weights.
    """
    betas = linear_schedule(n_steps) if betas is None else _check_betas(betas)
    if x_start.dim() < 2 or x_start.shape[0] < 1:
        raise ValueError(f"x_start must hold at least one chain's state, got shape {tuple(x_start.shape)}")
    if burn_in < 0:
        raise ValueError(f"burn_in must be >= 0, got {burn_in}")
    with sampling_mode(path.model), torch.no_grad():
        x = x_start.clone()
        for _ in range(int(burn_in)):
            x = path.transition(x, 1.0, generator)
        log_weights = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for t in range(len(betas) - 1, 0, -1):
            b_here, b_next = float(betas[t]), float(betas[t - 1])
            log_weights += path.log_weight_increment(x, b_here, b_next)
            if t > 1:
                x = path.transition(x, b_next, generator)
    log_mean, se, ess = _log_mean_exp_with_se(log_weights)
    return AISResult(
        log_z=path.log_z0 - log_mean,
        log_z_std=se,
        ess=ess,
        n_chains=int(x.shape[0]),
        n_steps=len(betas) - 1,
        acceptance=float(path.acceptance),
        log_weights=log_weights.cpu(),
        states=x.detach().cpu() if keep_states else None,
    )


def grbm_exact_log_partition(model, chunk: int = 4096) -> float:
    """Exact log Z of a GRBM by summing over all 2^H hidden states (small H only).

    ``log Z = sum_i log sqrt(2 pi sigma_i^2) + logsumexp_h [b^T h + sum_i ((mu_i + (W h)_i)^2 -
    mu_i^2) / (2 sigma_i^2)]``: the visible units integrate out in closed form for each h.
    """
    n_hidden = model.bias.numel()
    if n_hidden > 24:
        raise ValueError(f"exact log Z enumerates 2^{n_hidden} hidden states; use AIS instead")
    with torch.no_grad():
        var = model.variance().double()
        mu, weight, bias = model.mu.double(), model.weight.double(), model.bias.double()
        terms = []
        for start in range(0, 2**n_hidden, chunk):
            codes = torch.arange(start, min(start + chunk, 2**n_hidden), device=mu.device)
            h = ((codes.unsqueeze(1) >> torch.arange(n_hidden, device=mu.device)) & 1).double()
            mean = mu + h @ weight.T
            terms.append(h @ bias + ((mean.square() - mu.square()) / (2 * var)).sum(1))
        log_sum = torch.logsumexp(torch.cat(terms), 0)
        return float(log_sum + 0.5 * torch.log(2 * math.pi * var).sum())


def kernel_lower_bound(
    log_density,
    centres: torch.Tensor,
    variance: float,
    n_samples: int = 1024,
    *,
    generator: Optional[torch.Generator] = None,
    batch_size: int = 256,
    bounds: Optional[tuple] = None,
) -> tuple[float, float]:
    """A stochastic lower bound on log Z from a Gaussian kernel density on ``centres``.

    For any normalised density q, ``log Z = log E_q[f / q] >= E_q[log f - log q]`` (Jensen).
    With q the kernel density ``(1/N) sum_i N(c_i, variance I)`` on training rows, the bound
    needs no chain to find where the data are, so an AIS estimate well below it has missed
    mass there.

    A density restricted to a box (``bounds``) has no mass outside it, and a bound computed
    from its unrestricted ``f`` would bound a larger Z. There each kernel is truncated to the
    box (its centre first moved into the box): q then lives where f does, and each truncated
    kernel's normaliser is a per-centre constant, so q stays exact and cheap.

    Parameters
    ----------
    log_density : callable
        ``log f(x)`` (unnormalised) for a batch ``x`` of shape ``(B, *centres.shape[1:])``.
    centres : torch.Tensor of shape (N, ...)
        The kernel centres (training rows, in the model's units).
    variance : float
        Kernel variance per coordinate (> 0).
    n_samples : int, default=1024
    generator : torch.Generator, optional
    batch_size : int, default=256
        Rows per call of ``log_density``.
    bounds : tuple (low, high) or None, default=None
        The box f is restricted to: numbers, or tensors broadcasting against one row of
        ``centres``; ``log_density`` is then only called inside it.

    Returns
    -------
    bound : float
        The Monte Carlo estimate of ``E_q[log f - log q]``.
    std : float
        Its standard error.
    """
    values = kernel_log_weights(log_density, centres, variance, n_samples, generator=generator,
                                batch_size=batch_size, bounds=bounds)
    return float(values.mean()), float(values.std() / math.sqrt(n_samples))


def kernel_log_weights(
    log_density,
    centres: torch.Tensor,
    variance: float,
    n_samples: int = 1024,
    *,
    generator: Optional[torch.Generator] = None,
    batch_size: int = 256,
    bounds: Optional[tuple] = None,
) -> torch.Tensor:
    """Importance log-weights ``log f(x) - log q(x)`` of draws x from the kernel density q of
    :func:`kernel_lower_bound` (same arguments): their mean is that bound, and the log of their
    mean exponential is an importance-sampling estimate of log Z, itself a stochastic lower
    bound (Jensen again), tighter where q resembles f.

    Returns
    -------
    torch.Tensor of shape (n_samples,), float64
    """
    if not variance > 0:
        raise ValueError(f"the kernel variance must be positive, got {variance}")
    if n_samples < 2 or len(centres) == 0:
        raise ValueError("the kernel bound needs at least 2 samples and one centre")
    flat = centres.flatten(1).double()
    dim = flat.shape[1]
    scale = math.sqrt(variance)
    which = torch.randint(len(flat), (n_samples,), generator=generator, device=flat.device)
    log_mass = torch.zeros(len(flat), dtype=flat.dtype, device=flat.device)  # log q_i(box), per centre
    if bounds is None:
        noise = torch.randn((n_samples, dim), generator=generator, device=flat.device, dtype=flat.dtype)
        x = flat[which] + scale * noise
    else:
        low, high = (torch.as_tensor(b, dtype=flat.dtype, device=flat.device).flatten().expand(dim) for b in bounds)
        flat = torch.minimum(torch.maximum(flat, low), high)
        below, above = torch.special.ndtr((low - flat) / scale), torch.special.ndtr((high - flat) / scale)
        log_mass = torch.log(above - below).sum(1)
        # Inverse-CDF draws from each kernel truncated to the box.
        u = torch.rand((n_samples, dim), generator=generator, device=flat.device, dtype=flat.dtype)
        u = below[which] + u * (above[which] - below[which])
        x = flat[which] + scale * torch.special.ndtri(u)
        x = torch.minimum(torch.maximum(x, low), high)  # rounding at the faces
    values = []
    with torch.no_grad():
        for start in range(0, n_samples, batch_size):
            chunk = x[start : start + batch_size]
            log_q = (
                torch.logsumexp(-torch.cdist(chunk, flat).square() / (2 * variance) - log_mass, dim=1)
                - math.log(len(flat))
                - 0.5 * dim * math.log(2 * math.pi * variance)
            )
            batch = chunk.to(centres.dtype).reshape(-1, *centres.shape[1:])
            values.append(log_density(batch).double() - log_q)
    return torch.cat(values)
