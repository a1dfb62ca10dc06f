"""The EBM baseline: the same U(x) trunk read out by a linear layer (the paper's Methods).

    E(x) = w^T U(x) + c  [+ ||x - clamp(x, low, high)||^2]

There is no latent and no quadratic term around a mean (the first author's EBM code has the
``0.1 ||x||^2`` term commented out), so w^T U(x) + c need not be integrable on R^D. With a
support box (``set_support``) the energy adds a containment term that is zero inside the box and
grows quadratically outside it: the density exp(-E / tau) is then proper, and the sampler, the
log-likelihood and its annealed importance sampling all see that one density.
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

    Attributes
    ----------
    support : tuple of two torch.Tensor of the input shape, or None
        The box outside which the containment term acts (see :meth:`set_support`).
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
        self.support: Optional[tuple] = None

    def set_support(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Add ``||x - clamp(x, low, high)||^2`` to the energy (None, None removes it).

        A fixed box, not a parameter: it is not in the ``state_dict`` (the estimator keeps it).
        """
        if low is None or high is None:
            self.support = None
            return
        if not bool(torch.all(high > low)):
            raise ValueError("the support box must have positive width in every dimension")
        self.support = (low.detach(), high.detach())

    def _outside(self, x: torch.Tensor) -> torch.Tensor:
        """x - clamp(x, low, high): zero inside the support box."""
        low, high = (bound.to(device=x.device, dtype=x.dtype) for bound in self.support)
        return x - torch.maximum(torch.minimum(x, high), low)

    def containment(self, x: torch.Tensor) -> torch.Tensor:
        """``||x - clamp(x, low, high)||^2`` per sample (zeros without a support box)."""
        if self.support is None:
            return x.new_zeros(x.shape[0])
        return self._outside(x).flatten(1).square().sum(1)

    def energy(self, x: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.statistics(x) @ self.readout + self.offset + self.containment(x)  # (B,)

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy(x)

    def conditional_grad(self, z: Optional[torch.Tensor] = None) -> GradFn:
        readout = self.readout.detach()

        def grad_fn(x: torch.Tensor) -> torch.Tensor:
            grad = input_gradient(self.statistics, x, readout)
            return grad if self.support is None else grad + 2.0 * self._outside(x)

        return grad_fn

    def free_energy_grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.conditional_grad(None)(x)
