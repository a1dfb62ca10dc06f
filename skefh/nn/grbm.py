"""Gaussian-Bernoulli RBM with learned per-dimension variances (Liao et al. 2022).

    E(v, h) = sum_i (v_i - mu_i)^2 / (2 sigma_i^2) - (v / sigma^2)^T W h - b^T h

    p(h = 1 | v) = sigmoid(W^T (v / sigma^2) + b)
    p(v | h)     = N(W h + mu, diag(sigma^2))
    F(v)         = sum_i (v_i - mu_i)^2 / (2 sigma_i^2) - sum_j softplus((W^T (v / sigma^2) + b)_j)

The reference code (DSL-Lab/GRBM) divides every energy by the batch size; here energies are per
sample and the 1/B factor is the samplers' ``energy_scale`` (same dynamics, one convention for
all models). Variances are parameterised by their logarithm and clipped below at 1e-8.

Given h the visible conditional is Gaussian, so the Langevin diffusion on v (the x-half of
Gibbs-Langevin) is an Ornstein-Uhlenbeck process whose transition over a step of length eps is
known in closed form (:meth:`GRBMEnergy.conditional_langevin`). The samplers use it instead of the
Euler step ``v - eps s dE/dv + sqrt(2 eps T) xi``: the Euler step is unstable once
``eps s / sigma_i^2 > 2`` (the chain oscillates to infinity and the next Bernoulli draw fails) and
below that it inflates the conditional variance by ``1 / (1 - eps s / (2 sigma_i^2))``, which the
learned variances then shrink to compensate. The exact transition keeps N(W h + mu, T sigma^2 / s)
invariant for every step size and agrees with the Euler step to first order in
``eps s / sigma^2`` (the reference's regime, where that ratio is about 1 / B).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

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
        self,
        h: torch.Tensor,
        generator: Optional[torch.Generator] = None,
        temperature: Optional[float] = None,
    ) -> torch.Tensor:
        """Draw v ~ p_T(v | h) = N(W h + mu, diag(T sigma^2)), the conditional of exp(-E / T).

        ``temperature`` defaults to the model's tau.
        """
        tau = self.temperature if temperature is None else float(temperature)
        mean = self.visible_mean(h)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + noise * (tau * self.variance()).sqrt()

    def sample_latent(
        self,
        x: torch.Tensor,
        generator: Optional[torch.Generator] = None,
        temperature: Optional[float] = None,
    ) -> torch.Tensor:
        """Draw h ~ Bern(sigmoid(eta(v) / T)); a clear error instead of torch's on a non-finite chain."""
        probs = self.posterior_probabilities(x, temperature)
        if not bool(torch.isfinite(probs).all()):
            var = self.variance().detach()
            raise FloatingPointError(
                "the GRBM's sampling chain became non-finite (visible states "
                f"{'finite' if bool(torch.isfinite(x).all()) else 'non-finite'}, learned variances in "
                f"[{float(var.min()):.3g}, {float(var.max()):.3g}], weights "
                f"{'finite' if bool(torch.isfinite(self.weight).all()) else 'non-finite'}). The parameters "
                "have diverged: lower learning_rate or max_grad_norm, or refit."
            )
        return torch.bernoulli(probs, generator=generator)

    def conditional_grad(self, h: Optional[torch.Tensor]) -> GradFn:
        if h is None:
            raise ValueError("the GRBM conditional gradient needs hidden states h")
        # Closed form: dE/dv = (v - (W h + mu)) / sigma^2; the mean is fixed within a block.
        mean = self.visible_mean(h).detach()
        inv_var = self.variance().detach().reciprocal()

        def grad_fn(v: torch.Tensor) -> torch.Tensor:
            return (v - mean) * inv_var

        return grad_fn

    def conditional_langevin(
        self,
        v: torch.Tensor,
        h: torch.Tensor,
        steps: Sequence[float],
        *,
        temperature: float = 1.0,
        energy_scale: float = 1.0,
        bounds: Optional[tuple] = None,
        generator: Optional[torch.Generator] = None,
    ) -> dict:
        """Langevin dynamics on v given h, integrated exactly over each step.

        The diffusion ``dv = -s dE/dv dt + sqrt(2 T) dW`` with ``dE/dv = (v - m) / sigma^2``,
        ``m = W h + mu``, is an Ornstein-Uhlenbeck process: over a step of length eps

            v <- m + (v - m) exp(-eps s / sigma^2) + sqrt(T sigma^2 / s (1 - exp(-2 eps s / sigma^2))) xi,

        which leaves N(m, T sigma^2 / s) invariant for any eps (Euler's step, the reference's, is
        its first-order expansion). Arguments and result as :func:`skefh.samplers.langevin`
        (``grad_fn`` replaced by ``h``).
        """
        mean = self.visible_mean(h).detach()
        var = self.variance().detach()
        rate = energy_scale / var  # (D,): the drift coefficient s / sigma_i^2
        stationary_sd = (temperature * var / energy_scale).sqrt()
        if bounds is not None:
            low, high = (torch.as_tensor(b, dtype=v.dtype, device=v.device) for b in bounds)
        v = v.detach().clone()
        if bounds is not None:
            v = torch.maximum(torch.minimum(v, high), low)
        noise = torch.empty_like(v)
        grad_norm = torch.zeros((), device=v.device, dtype=torch.float32)
        for eps in steps:
            offset = v - mean
            grad_norm += (offset * rate).flatten(1).norm(dim=1).mean().float()
            decay = torch.exp(-eps * rate)
            spread = stationary_sd * (-torch.expm1(-2.0 * eps * rate)).sqrt()
            noise.normal_(generator=generator)
            v = mean + offset * decay + spread * noise
            if bounds is not None:
                v = torch.maximum(torch.minimum(v, high), low)
        return {"x": v, "grad_norm": grad_norm / max(len(steps), 1), "n_steps": len(steps)}

    def free_energy_grad(self, v: torch.Tensor) -> torch.Tensor:
        var = self.variance()
        probs = torch.sigmoid(self.posterior_logits(v))
        return (v - self.mu - probs @ self.weight.T) / var

    def step_size_scale(self) -> float:
        # Reference: Langevin step = Langevin_eta * mean(sigma^2), recomputed every update.
        return float(self.variance().detach().mean())
