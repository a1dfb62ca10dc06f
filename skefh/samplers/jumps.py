"""Mode-jumping moves: independence Metropolis-Hastings proposals from a kernel density on data rows.

Langevin moves, Metropolis-adjusted or not, are local: a chain never crosses between modes that
are far apart in units of its step, so chains that start in one proportion keep it. Persistent
training chains then never show the contrastive gradient a mode whose weight the model has
wrong, and ``sample`` draws the proportions the chains happen to have, not the model's. A
proposal from a Gaussian kernel density on training rows reaches every mode the data have; the
Metropolis-Hastings ratio keeps the target invariant whatever the proposal.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from ..nn.base import EnergyModel, sampling_mode
from .langevin import _box_like

__all__ = ["KernelJump"]


class KernelJump:
    """One independence Metropolis-Hastings step per chain, targeting ``exp(-F(x) / T)``.

    The proposal ``q(x') = mean_i N(x'; r_i, diag(h^2))`` is a Gaussian kernel density on the
    ``rows`` (bandwidth ``h = bandwidth * std(rows)`` per coordinate), independent of the current
    state, and ``x'`` is accepted with probability
    ``min(1, exp((F(x) - F(x')) / T) q(x) / q(x'))``. The move targets the marginal of x (the free
    energy sums the latent out), so the latent, if any, is redrawn from ``p(z | x)`` afterwards:
    the pair is a valid move on the joint.

    Parameters
    ----------
    rows : torch.Tensor of shape ``(n_rows, *input_shape)``
        Kernel centres, in the model's working units (training rows).
    bandwidth : float, default=0.3
        Kernel standard deviation in units of the rows' standard deviation per coordinate.
    bounds : (low, high), optional
        A box the chains live in: proposals outside it are rejected, so that the move keeps
        the density restricted to the box invariant.
    """

    def __init__(self, rows: torch.Tensor, bandwidth: float = 0.3, bounds: Optional[tuple] = None):
        if rows.dim() < 2 or rows.shape[0] < 2:
            raise ValueError(f"rows must hold at least two rows, got shape {tuple(rows.shape)}")
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        if not bool(torch.isfinite(rows).all()):
            raise ValueError("rows must be finite")
        self.rows = rows.detach()
        spread = self.rows.flatten(1).std(0)
        # A coordinate constant over the rows still gets a kernel of its own scale (any q > 0 is
        # valid; this one is narrow where the data do not vary).
        spread = torch.where(spread > 0, spread, spread.new_ones(()) * 1e-3)
        self.scale = bandwidth * spread
        self.bounds = bounds

    def log_proposal(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x) up to a constant that cancels in the acceptance ratio, shape (B,)."""
        diff = (x.flatten(1).unsqueeze(1) - self.rows.flatten(1).unsqueeze(0)) / self.scale
        return torch.logsumexp(-0.5 * diff.square().sum(2), dim=1)

    def propose(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` draws from q."""
        rows = self.rows.flatten(1)
        which = torch.randint(len(rows), (n,), generator=generator, device=rows.device)
        noise = torch.randn((n, rows.shape[1]), generator=generator, device=rows.device, dtype=rows.dtype)
        return (rows[which] + noise * self.scale).view(n, *self.rows.shape[1:])

    def __call__(self, model: EnergyModel, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                 temperature: Optional[float] = None, latent_temperature: Optional[float] = None) -> dict:
        """Move the chains ``x`` one step; return ``x``, ``z`` (redrawn; None without a latent)
        and ``acceptance`` (the fraction of chains that jumped)."""
        tau = model.temperature if temperature is None else float(temperature)
        with sampling_mode(model), torch.no_grad():
            x = x.detach().to(self.rows.dtype)
            proposal = self.propose(x.shape[0], generator)
            log_ratio = (model.free_energy(x) - model.free_energy(proposal)) / tau
            log_ratio = log_ratio + self.log_proposal(x) - self.log_proposal(proposal)
            u = torch.rand(log_ratio.shape, generator=generator, device=x.device, dtype=log_ratio.dtype)
            accept = torch.log(u) < log_ratio  # NaN energies compare False: never accepted
            if self.bounds is not None:
                low, high = _box_like(proposal, *self.bounds)
                accept = accept & ((proposal >= low) & (proposal <= high)).flatten(1).all(1)
            x = torch.where(accept.view(-1, *([1] * (x.dim() - 1))), proposal, x)
            z = model.sample_latent(x, generator, latent_temperature) if model.has_latent else None
        return {"x": x, "z": z, "acceptance": float(accept.float().mean()) if accept.numel() else math.nan}
