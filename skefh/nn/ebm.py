"""The EBM baseline: the same U(x) trunk read out by a linear layer (the paper's Methods).

    E(x) = w^T U(x) + c

There is no latent and no quadratic containment term (the first author's EBM code has the
``0.1 ||x||^2`` term commented out), so E need not be integrable on R^D; the density of the
fitted model is defined on the bounded working range of the data (see ``skefh.samplers.annealing_paths``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .base import EnergyModel, GradFn, input_gradient

__all__ = ["EBMEnergy"]


class EBMEnergy(EnergyModel):
    """Scalar energy on top of a statistics network.

    Parameters
    ----------
    statistics : torch.nn.Module
        U(x): maps ``(B, *input_shape)`` to ``(B, n_statistics)`` (the penultimate layer).
    input_shape : tuple of int
    n_statistics : int
    generator : torch.Generator, optional
        Source of randomness for the read-out initialisation (PyTorch's default scheme).
    temperature : float, default=1.0
        tau: the density is exp(-E(x) / tau) (see :attr:`EnergyModel.temperature`).
    """

    has_latent = False

    def __init__(
        self,
        statistics: nn.Module,
        input_shape: Sequence[int],
        n_statistics: int,
        *,
        generator: Optional[torch.Generator] = None,
        temperature: float = 1.0,
    ):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.temperature = float(temperature)
        self.statistics = statistics
        self.input_shape = tuple(int(s) for s in input_shape)
        bound = 1.0 / n_statistics**0.5  # nn.Linear's default uniform bound
        self.readout = nn.Parameter(
            (torch.rand(n_statistics, generator=generator) * 2 - 1) * bound
        )  # w: (N,)
        self.offset = nn.Parameter((torch.rand(1, generator=generator) * 2 - 1) * bound)  # c

    def energy(self, x: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.statistics(x) @ self.readout + self.offset  # (B,)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy(x)

    def conditional_grad(self, z: Optional[torch.Tensor] = None) -> GradFn:
        readout = self.readout.detach()

        def grad_fn(x: torch.Tensor) -> torch.Tensor:
            return input_gradient(self.statistics, x, readout)

        return grad_fn

    def free_energy_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.conditional_grad(None)(x)
