"""Unadjusted Langevin dynamics, the x-update of every sampler in skefh.

One step (NN-EFH paper, Eq. 8, with the energy scale made explicit):

    x <- x - eps_l * s * dE/dx + sqrt(2 * eps_l * T) * xi,      xi ~ N(0, I)

``s`` is the energy scale: the paper "normalize[s] the final energy by the batch size", which the
GRBM reference code implements by dividing every energy by B, so ``s = 1/B`` (``s = 1`` gives the
textbook update). The stationary density of the small-step limit is exp(-s E(x) / T).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..nn.base import GradFn

__all__ = ["clip_to_box", "langevin", "step_schedule"]


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
    if np.ndim(step_size) == 0:  # Python, numpy or 0-d tensor scalar
        if n_steps is None:
            raise ValueError("n_steps is required with a scalar step_size")
        steps = [float(step_size)] * n_steps
    else:
        steps = [float(s) for s in step_size]
        if n_steps is not None and n_steps != len(steps):
            raise ValueError(f"got {len(steps)} step sizes for n_steps={n_steps}")
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


def clip_to_box(x: torch.Tensor, low, high) -> torch.Tensor:
    """Clip ``x`` in place into [low, high] (numbers or tensors broadcasting against it); returns it."""
    return x.clamp_(*_box_like(x, low, high))


def _box_like(x: torch.Tensor, low, high) -> tuple:
    # torch.clamp takes either two numbers or two tensors (of x's dtype), not one of each.
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        return tuple(torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in (low, high))
    return float(low), float(high)
