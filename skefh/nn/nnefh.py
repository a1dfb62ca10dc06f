"""The NN-EFH energy (Abdulsalam & Makin, AAAI 2025, Eq. 6) at a temperature tau.

The model is

    p(x, z) proportional to exp(-||x - mu||^2 / tau + z^T eta(x)),   eta(x) = W U(x) + b,

with z in {0, 1}^K. Written as an energy at temperature tau, p = exp(-E / tau) / Z with

    E(z, x) = ||x - mu||^2 - tau z^T eta(x),

which is the paper's energy (Eq. 6) with its natural parameters W U + b written as tau eta. The
posterior is exact, factorised and the same at every tau (Eq. 5),

    p(z | x) = Bern(sigmoid(eta(x))),

and summing z out gives the free energy, the exact unnormalised -tau log p(x):

    F(x) = ||x - mu||^2 - tau sum_k softplus(eta_k(x)).

tau = 1 is the paper's density. Why eta and not tau eta is what the network outputs: the
optimiser moves each weight by about its learning rate per update, so the parameters it moves
must be the posterior's logits at unit scale. When the logits were tau eta, an update moved the
posterior's logits by 1 / tau times the learning rate (1,000 times at tau = 1e-3), and every
unit saturated within a few dozen updates (see the generation page).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import EnergyModel, GradFn, input_gradient
from .frozen import dense

__all__ = ["NNEFHEnergy"]


class NNEFHEnergy(EnergyModel):
    """Energy of an exponential-family harmonium with neural sufficient statistics.

    Parameters
    ----------
    statistics : torch.nn.Module
        U(x): maps ``(B, *input_shape)`` to ``(B, n_statistics)``.
    input_shape : tuple of int
        Shape of one x (``(C, H, W)`` or ``(D,)``).
    n_statistics : int
        N, the size of U(x).
    n_components : int
        K, the number of Bernoulli latent units.
    weight_std : float, default=0.01
        W is initialised from N(0, weight_std^2); b and mu start at zero (the first
        author's EFH code; the paper does not say).
    generator : torch.Generator, optional
        Source of randomness for the initialisation of W.
    temperature : float, default=1.0
        tau (see :attr:`EnergyModel.temperature`).
    """

    has_latent = True

    def __init__(
        self,
        statistics: nn.Module,
        input_shape: Sequence[int],
        n_statistics: int,
        n_components: int,
        *,
        weight_std: float = 0.01,
        generator: Optional[torch.Generator] = None,
        temperature: float = 1.0,
    ):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.temperature = float(temperature)
        self.statistics = statistics
        self.input_shape = tuple(int(s) for s in input_shape)
        self.weight = nn.Parameter(
            torch.randn(n_components, n_statistics, generator=generator) * weight_std
        )  # W: (K, N)
        self.bias = nn.Parameter(torch.zeros(n_components))  # b_z: (K,)
        self.mu = nn.Parameter(torch.zeros(self.input_shape))  # mu: input_shape

    def quadratic(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mu).square().flatten(1).sum(1)  # (B,)

    def natural_parameters(self, x: torch.Tensor) -> torch.Tensor:
        """eta(x) = W U(x) + b, the logits of p(z | x), shape (B, K)."""
        return dense(self.statistics(x), self.weight, self.bias)  # (B, K)

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        # The coefficient of z in -E, tau eta: the posterior at a temperature T is
        # sigmoid(tau eta / T), which is sigmoid(eta) at the model's own T = tau.
        return self.temperature * self.natural_parameters(x)

    def energy(self, x: torch.Tensor, z: Optional[torch.Tensor]) -> torch.Tensor:
        if z is None:
            raise ValueError("the NN-EFH joint energy needs a latent z; use free_energy(x)")
        return self.quadratic(x) - (z * self.posterior_logits(x)).sum(1)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.quadratic(x) - self.temperature * F.softplus(self.natural_parameters(x)).sum(1)

    def conditional_grad(self, z: Optional[torch.Tensor]) -> GradFn:
        if z is None:
            raise ValueError("the NN-EFH conditional gradient needs a latent z")
        # dE/dx = 2 (x - mu) - tau J_U(x)^T (W^T z); W^T z is fixed for a whole Langevin block.
        direction = (self.temperature * (z @ self.weight)).detach()  # (B, N)
        mu = self.mu.detach()

        def grad_fn(x: torch.Tensor) -> torch.Tensor:
            return 2.0 * (x - mu) - input_gradient(self.statistics, x, direction)

        return grad_fn
