"""The NN-EFH energy (Abdulsalam & Makin, AAAI 2025, Eq. 6).

    E(z, x) = ||x - mu||^2 - U(x)^T W^T z - b_z^T z,        z in {0, 1}^K

so that the posterior is exact and factorised (Eq. 5),

    p(z | x) = Bern(sigmoid(eta(x))),   eta(x) = W U(x) + b_z,

and summing z out gives the free energy, the exact unnormalised -log p(x):

    F(x) = ||x - mu||^2 - sum_k softplus(eta_k(x)).

At a temperature tau, p_tau(x, z) proportional to exp(-E(z, x) / tau), the posterior is
Bern(sigmoid(eta / tau)) and the marginal is exp(-F_tau(x) / tau) with the tempered free energy

    F_tau(x) = ||x - mu||^2 - tau * sum_k softplus(eta_k(x) / tau)

(tau = 1 is the paper's density; as tau -> 0 the softplus tends to relu(eta)). The posterior's
natural parameters at the model's temperature are eta / tau (:meth:`NNEFHEnergy.natural_parameters`).
The network outputs eta, in the energy's units. Parametrised so that it outputs eta / tau
instead (the posterior's logits at unit scale for the optimiser), the model learned far more
slowly at small tau and its latent layer still saturated (measured on the generation page).
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
        W is initialised from N(0, weight_std^2); b_z and mu start at zero (the first
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

    def _eta_from_statistics(self, u: torch.Tensor) -> torch.Tensor:
        return dense(u, self.weight, self.bias)  # (B, K)

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._eta_from_statistics(self.statistics(x))

    def natural_parameters(self, x: torch.Tensor) -> torch.Tensor:
        """eta(x) / tau = (W U(x) + b) / tau: the logits of p(z | x) at the model's temperature."""
        return self.posterior_logits(x) / self.temperature

    def energy(self, x: torch.Tensor, z: Optional[torch.Tensor]) -> torch.Tensor:
        if z is None:
            raise ValueError("the NN-EFH joint energy needs a latent z; use free_energy(x)")
        eta = self.posterior_logits(x)
        # U^T W^T z + b^T z = z . eta
        return self.quadratic(x) - (z * eta).sum(1)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        tau = self.temperature
        return self.quadratic(x) - tau * F.softplus(self.posterior_logits(x) / tau).sum(1)

    def conditional_grad(self, z: Optional[torch.Tensor]) -> GradFn:
        if z is None:
            raise ValueError("the NN-EFH conditional gradient needs a latent z")
        # dE/dx = 2 (x - mu) - J_U(x)^T (W^T z); W^T z is fixed for a whole Langevin block.
        direction = (z @ self.weight).detach()  # (B, N)
        mu = self.mu.detach()

        def grad_fn(x: torch.Tensor) -> torch.Tensor:
            return 2.0 * (x - mu) - input_gradient(self.statistics, x, direction)

        return grad_fn
