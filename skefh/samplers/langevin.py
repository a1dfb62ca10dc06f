"""Langevin dynamics, the x-update of every sampler in skefh.

One step (NN-EFH paper, Eq. 8, with the energy scale made explicit):

    x <- x - eps_l * s * dE/dx + sqrt(2 * eps_l * T) * xi,      xi ~ N(0, I)

``s`` is the energy scale: the paper "normalize[s] the final energy by the batch size", which the
GRBM reference code implements by dividing every energy by B, so ``s = 1/B`` (``s = 1`` gives the
textbook update). The stationary density of the small-step limit is exp(-s E(x) / T).

Unadjusted (:func:`langevin`), the chain's law is off that density by O(eps) and a step too
large for the energy's curvature overshoots. Metropolis-adjusted (:func:`metropolis_langevin`,
MALA), each move is a proposal accepted with the Metropolis-Hastings probability, so the chain
leaves exp(-s E / T) invariant at any step size (restricted to the box, when there is one:
proposals that leave it are reflected back in), and a step that overshoots is refused instead
of taken.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..nn.base import EnergyGradFn, GradFn

__all__ = ["clip_to_box", "langevin", "metropolis_langevin", "step_schedule"]


def step_schedule(step_size: float, n_steps: int, schedule: str = "constant") -> list[float]:
    """Per-step sizes eps_0..eps_{n-1} of one Langevin block.

    Parameters
    ----------
    step_size : float
        eps (the largest step for the cosine schedule).
    n_steps : int
    schedule : {"constant", "cosine"}
        "cosine" is the GRBM reference's ``eps_j = eps (1 + cos(pi j / n)) / 2``, restarted in
        every Gibbs round.

    Returns
    -------
    list of float
    """
    if schedule == "constant":
        return [float(step_size)] * n_steps
    if schedule == "cosine":
        return [float(step_size) * 0.5 * (1.0 + math.cos(math.pi * j / n_steps)) for j in range(n_steps)]
    raise ValueError(f"unknown step schedule {schedule!r}; expected 'constant' or 'cosine'")


def langevin(
    grad_fn: GradFn,
    x: torch.Tensor,
    *,
    step_size: Union[float, Sequence[float]],
    n_steps: Optional[int] = None,
    temperature: float = 1.0,
    energy_scale: float = 1.0,
    bounds: Optional[tuple] = None,
    generator: Optional[torch.Generator] = None,
) -> dict:
    """Run unadjusted Langevin dynamics from ``x``.

    Parameters
    ----------
    grad_fn : callable
        ``grad_fn(x)`` returns the per-sample energy gradient dE/dx (same shape as x).
    x : torch.Tensor
        Initial state; not modified.
    step_size : float or sequence of float
        eps, or one eps per step (then ``n_steps`` defaults to its length).
    n_steps : int, optional
    temperature : float, default=1.0
        T; the noise standard deviation per step is ``sqrt(2 eps T)``.
    energy_scale : float, default=1.0
        s, multiplying the energy (``1 / batch_size`` for the paper's recipe).
    bounds : (low, high), optional
        Clip the state into the box [low, high] (floats or tensors broadcasting against ``x``)
        at the start and after every step: projected Langevin, whose small-step law is the
        density restricted to the box (a step that would leave it stops on its face, so at a
        finite step the faces hold an O(sqrt(step)) share of the mass).
    generator : torch.Generator, optional
        Source of the Gaussian noise (on ``x``'s device).

    Returns
    -------
    dict
        ``x``: final state; ``grad_norm``: mean over steps and chains of ||s dE/dx||;
        ``n_steps``.
    """
    steps = _steps(step_size, n_steps)
    x = x.detach().clone()
    if bounds is not None:
        low, high = _box_like(x, *bounds)  # converted once, not at every step
        x.clamp_(low, high)
    # One noise buffer for the whole chain, refilled in place at every step.
    noise = torch.empty_like(x)
    grad_norm = torch.zeros((), device=x.device, dtype=torch.float32)
    for eps in steps:
        grad = grad_fn(x).to(x.dtype)  # under autocast the gradient may come back in bfloat16
        grad_norm += grad.flatten(1).norm(dim=1).mean().float()
        x.add_(grad, alpha=-eps * energy_scale)
        if temperature > 0:
            noise.normal_(generator=generator)
            x.add_(noise, alpha=math.sqrt(2.0 * eps * temperature))
        if bounds is not None:
            x.clamp_(low, high)
    grad_norm = grad_norm * energy_scale / max(len(steps), 1)
    return {"x": x, "grad_norm": grad_norm, "n_steps": len(steps)}


def metropolis_langevin(
    energy_fn: EnergyGradFn,
    x: torch.Tensor,
    *,
    step_size: Union[float, Sequence[float]],
    n_steps: Optional[int] = None,
    temperature: float = 1.0,
    energy_scale: float = 1.0,
    bounds: Optional[tuple] = None,
    generator: Optional[torch.Generator] = None,
) -> dict:
    """Run Metropolis-adjusted Langevin (MALA) from ``x``, targeting exp(-s E(x) / T).

    Each step proposes ``y = x - eps s dE/dx + sqrt(2 eps T) xi`` (the unadjusted step) and
    accepts it, per chain, with probability ``min(1, pi(y) q(x | y) / (pi(x) q(y | x)))``;
    a rejected chain stays where it was. With ``bounds`` a proposal that leaves the box is
    reflected back into it at the face it crossed (and rejected if it overshoots by more than the
    box's width), and the acceptance ratio uses the reflected proposal's density, so the chain
    targets the density restricted to the box exactly. Rejecting every proposal that leaves the
    box would be exact too, but where many coordinates sit near a face (image pixels at their
    extremes) nearly every proposal leaves it, and the chains freeze.

    Parameters
    ----------
    energy_fn : callable
        ``energy_fn(x) -> (E, dE/dx)``, per-sample energies of shape (B,) and their gradients.
    x : torch.Tensor
        Initial state; not modified.
    step_size, n_steps, temperature, energy_scale, bounds, generator
        As in :func:`langevin`.

    Returns
    -------
    dict
        ``x``, ``grad_norm`` and ``n_steps`` as in :func:`langevin`, and ``acceptance``: the
        fraction of proposals accepted over all steps and chains.
    """
    steps = _steps(step_size, n_steps)
    if not temperature > 0:
        raise ValueError(f"MALA needs a positive temperature, got {temperature!r}")
    x = x.detach().clone()
    if bounds is not None:
        low, high = _box_like(x, *bounds)
        x.clamp_(low, high)
    # Work with the target's potential V = s E / T: proposal y = x - h grad V + sqrt(2 h) xi, h = eps T.
    scale = energy_scale / temperature
    energy, grad = energy_fn(x)
    potential, grad = energy.to(x.dtype) * scale, grad.to(x.dtype) * scale
    grad_norm = torch.zeros((), device=x.device, dtype=torch.float32)
    accepted = torch.zeros((), device=x.device, dtype=torch.float32)
    for eps in steps:
        h = eps * temperature
        grad_norm += grad.flatten(1).norm(dim=1).mean().float()
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        proposal = x - h * grad + math.sqrt(2.0 * h) * noise
        if bounds is not None:
            proposal, inside = fold_into_box(proposal, low, high)
        energy_p, grad_p = energy_fn(proposal)
        potential_p, grad_p = energy_p.to(x.dtype) * scale, grad_p.to(x.dtype) * scale
        if bounds is None:
            # log q(x | y) - log q(y | x) for the Gaussian proposals; the forward one is ||xi||^2 / 2.
            backward = (x - proposal + h * grad_p).flatten(1).square().sum(1) / (4.0 * h)
            forward = noise.flatten(1).square().sum(1) / 2.0
            log_ratio = potential - potential_p + forward - backward
        else:
            log_ratio = (potential - potential_p + log_folded_proposal(x, proposal - h * grad_p, h, low, high)
                         - log_folded_proposal(proposal, x - h * grad, h, low, high))
        uniform = torch.rand(log_ratio.shape, generator=generator, device=x.device, dtype=x.dtype)
        accept = torch.log(uniform) < log_ratio  # NaN energies compare False: never accepted
        if bounds is not None:
            accept &= inside
        shape = (-1,) + (1,) * (x.dim() - 1)
        x = torch.where(accept.view(shape), proposal, x)
        grad = torch.where(accept.view(shape), grad_p, grad)
        potential = torch.where(accept, potential_p, potential)
        accepted += accept.float().mean()
    n = max(len(steps), 1)
    return {
        "x": x,
        "grad_norm": grad_norm * temperature / n,  # ||s dE/dx||, as langevin reports it
        "n_steps": len(steps),
        "acceptance": accepted / n,
    }


def _steps(step_size, n_steps) -> list[float]:
    if np.ndim(step_size) == 0:  # Python, numpy or 0-d tensor scalar
        if n_steps is None:
            raise ValueError("n_steps is required with a scalar step_size")
        return [float(step_size)] * n_steps
    steps = [float(s) for s in step_size]
    if n_steps is not None and n_steps != len(steps):
        raise ValueError(f"got {len(steps)} step sizes for n_steps={n_steps}")
    return steps


def fold_into_box(y: torch.Tensor, low, high) -> tuple:
    """Reflect each coordinate of ``y`` once at the face of [low, high] it crossed.

    Returns the folded tensor and, per row, whether every coordinate then lies in the box (a
    coordinate that overshot by more than the box's width does not)."""
    folded = torch.where(y < low, 2 * low - y, torch.where(y > high, 2 * high - y, y))
    return folded, ((folded >= low) & (folded <= high)).flatten(1).all(1)


def log_folded_proposal(y: torch.Tensor, mean: torch.Tensor, h: float, low, high) -> torch.Tensor:
    """log density, per row and up to a constant, of drawing ``y`` (in the box) by
    :func:`fold_into_box` of a draw from N(mean, 2 h I): per coordinate, the Gaussian summed
    over the three points that fold onto ``y`` (itself and its mirror images in the two faces)."""
    images = torch.stack([y, 2 * low - y, 2 * high - y])
    return torch.logsumexp(-(images - mean).square() / (4.0 * h), dim=0).flatten(1).sum(1)


def clip_to_box(x: torch.Tensor, low, high) -> torch.Tensor:
    """Clip ``x`` in place into [low, high] (numbers or tensors broadcasting against it); returns it."""
    return x.clamp_(*_box_like(x, low, high))


def _box_like(x: torch.Tensor, low, high) -> tuple:
    # torch.clamp takes either two numbers or two tensors (of x's dtype), not one of each.
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        return tuple(torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in (low, high))
    return float(low), float(high)
