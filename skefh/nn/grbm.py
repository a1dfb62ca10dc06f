"""Gaussian-Bernoulli RBM with learned per-dimension variances (Liao et al. 2022).

    E(v, h) = sum_i (v_i - mu_i)^2 / (2 sigma_i^2) - (v / sigma^2)^T W h - b^T h

    p(h = 1 | v) = sigmoid(W^T (v / sigma^2) + b)
    p(v | h)     = N(W h + mu, diag(sigma^2))
    F(v)         = sum_i (v_i - mu_i)^2 / (2 sigma_i^2) - sum_j softplus((W^T (v / sigma^2) + b)_j)

The reference code (DSL-Lab/GRBM) divides every energy by the batch size; here energies are per
sample and the 1/B factor is the samplers' ``energy_scale`` (same dynamics, one convention for
all models). Variances are parameterised by their logarithm and clipped below at 1e-8.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import EnergyModel, GradFn

__all__ = ["GRBMEnergy"]

_MIN_VARIANCE = 1e-8


class GRBMEnergy(EnergyModel):
    """Gaussian visible units with learned log-variance, Bernoulli hidden units.

    Parameters
    ----------
    n_visible : int
        D, the length of a (flattened) visible vector.
    n_hidden : int
        H, the number of Bernoulli hidden units.
    init_var : float, default=1.0
        Initial variance; W ~ N(0, (init_var / sqrt(D + H))^2), b = mu = 0 (reference init).
    generator : torch.Generator, optional
    """

    has_latent = True

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        init_var: float = 1.0,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        self.input_shape = (int(n_visible),)
        std = init_var / math.sqrt(n_visible + n_hidden)
        self.weight = nn.Parameter(torch.randn(n_visible, n_hidden, generator=generator) * std)
        self.bias = nn.Parameter(torch.zeros(n_hidden))  # b: (H,)
        self.mu = nn.Parameter(torch.zeros(n_visible))  # mu: (D,)
        self.log_var = nn.Parameter(torch.full((n_visible,), math.log(init_var)))

    def variance(self) -> torch.Tensor:
        """sigma^2, shape (D,)."""
        return self.log_var.exp().clamp(min=_MIN_VARIANCE)

    def posterior_logits(self, v: torch.Tensor) -> torch.Tensor:
        return (v / self.variance()) @ self.weight + self.bias  # (B, H)

    def quadratic(self, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((v - self.mu).square() / self.variance()).sum(1)  # (B,)

    def energy(self, v: torch.Tensor, h: Optional[torch.Tensor]) -> torch.Tensor:
        if h is None:
            raise ValueError("the GRBM joint energy needs hidden states h; use free_energy(v)")
        return self.quadratic(v) - (h * self.posterior_logits(v)).sum(1)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return self.quadratic(v) - F.softplus(self.posterior_logits(v)).sum(1)

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h] = W h + mu, shape (B, D)."""
        return h @ self.weight.T + self.mu

    def sample_visible(
        self, h: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        mean = self.visible_mean(h)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + noise * self.variance().sqrt()

    def conditional_grad(self, h: Optional[torch.Tensor]) -> GradFn:
        if h is None:
            raise ValueError("the GRBM conditional gradient needs hidden states h")
        # Closed form: dE/dv = (v - (W h + mu)) / sigma^2; the mean is fixed within a block.
        mean = self.visible_mean(h).detach()
        inv_var = self.variance().detach().reciprocal()

        def grad_fn(v: torch.Tensor) -> torch.Tensor:
            return (v - mean) * inv_var

        return grad_fn

    def free_energy_grad(self, v: torch.Tensor) -> torch.Tensor:
        var = self.variance()
        probs = torch.sigmoid(self.posterior_logits(v))
        return (v - self.mu - probs @ self.weight.T) / var

    def step_size_scale(self) -> float:
        # Reference: Langevin step = Langevin_eta * mean(sigma^2), recomputed every update.
        return float(self.variance().detach().mean())
