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

Centred coupling (``coupling="centred"``): the same harmonium with each unit's logit measured from
the data's mean statistics and a visible read-out of U in place of the latent biases,

    E(z, x) = ||x - mu||^2 - a^T U(x) - z^T W (U(x) - u_bar),

where u_bar is the mean of U over the data (a buffer, not a parameter): during training the
current batch's, at the end of a fit the training data's (:meth:`NNEFHEnergy.centre_on`). The
posterior is Bern(sigmoid(W (U(x) - u_bar) / tau)) and

    F_tau(x) = ||x - mu||^2 - a^T U(x) - tau * sum_k softplus(eta_k(x) / tau).

Why: U's mean over inputs is far larger than its spread across them (research notes), so in the
paper's coupling w_k . U(x) + b_k has the same sign for every input, and the contrastive gradient,
dominated early by the one direction that tells data from noise, drives every unit along it until
all are on or off for every input (a linear read-out of U). Here the read-out a carries that
direction, and a unit's logit is zero at the average data point, so every unit splits the data.
Why the current batch's mean and not a running mean over batches: U's mean over the data moves at
every update, and a running mean lags it; on digits at a constant learning rate the lag outgrew
U's spread over the data, which put every bounded unit at its bound for every input (measured in
the research notes of the docs, "A centre that lags").

Bounded coupling (``coupling="bounded"``): the centred harmonium with each unit's logit in nats,
at unit scale for the optimiser and bounded by B (``logit_bound``),

    l_k(x) = B tanh(g_W w_k . (U(x) - u_bar) / B),
    E(z, x) = ||x - mu||^2 - g_a a^T U(x) - tau z^T l(x),

so that p(z | x) = Bern(sigmoid(l(x))) at the model's temperature, eta = tau l and
F_tau(x) = ||x - mu||^2 - g_a a^T U(x) - tau * sum_k softplus(l_k(x)). The gains g_W
(``latent_gain``) and g_a (``readout_gain``) set how fast the optimiser moves the logits and the
read-out: Adam moves each parameter by about the learning rate per update, so a gain g moves the
product g times as fast. Why: in the centred coupling a unit's logit is eta / tau, and at
tau = 1e-3 a step of 2e-4 on W moves it by hundreds of times that, so the units end crisp (a
posterior of 0 or 1 for every input) and each unit's share of the energy is unbounded. Measured
in nats, a unit holds at most B of them, and its posterior stays soft where the data do not
push it. The paper's coupling moves its read-out fast without a gain: its always-on units are
a read-out each, about K / 2 of them moving together (research notes).

Whitened statistics (``whiten=True``, centred and bounded couplings): the units read
P (U(x) - u_bar) in place of U(x) - u_bar, where P = C^(-1/2) / sqrt(N) whitens a running
covariance C of U over the training batches (a buffer like u_bar, no gradient through it; a
running one because a batch of 64 has fewer rows than U has dimensions), its
eigenvalues floored at ``WHITENING_FLOOR`` times their mean. Why: training collapses U's spread
over the data onto a few directions (measured on the generation page of the docs), so units
that read U can only split the data along them; whitened,
every direction U still varies along reaches the logits at the same scale. Divided by sqrt(N),
the whitened statistics have a total variance of 1 over the data whatever U's scale, so a
bounded unit's logit varies over the data by ||g_W w_k|| nats (about 1 at initialisation).
The read-out a keeps the raw U.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

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
    coupling : {"paper", "centred", "bounded"}, default="paper"
        How the latent reads U (see the module notes): the paper's ``W U + b``,
        ``W (U - u_bar)`` with a visible read-out ``a^T U`` instead of latent biases, or that
        centred coupling with each unit's logit in nats and bounded by ``logit_bound``.
    centring_momentum : float, default=1.0
        Weight of each data batch in u_bar (centred and bounded couplings): 1 sets u_bar to each
        batch's mean of U; below 1, u_bar is a running mean over the batches.
    whitening_momentum : float, default=0.1
        Weight of each data batch in the running covariance C (``whiten=True``).
    logit_bound : float, default=4.0
        B, the largest absolute logit of a unit (``coupling="bounded"``).
    latent_gain : float, default=100.0
        g_W, the gain on W in the logits (``coupling="bounded"``).
    readout_gain : float, default=256.0
        g_a, the gain on the read-out a (``coupling="bounded"``).
    whiten : bool, default=False
        Whether the units read U whitened by its running covariance over the data (centred and
        bounded couplings; see the module notes).
    """

    #: The couplings of the latent to U (see the module notes).
    COUPLINGS = ("paper", "centred", "bounded")
    #: Smallest eigenvalue of U's running covariance that the whitener divides by, as a share
    #: of their mean: directions along which U barely varies are amplified at most
    #: 1 / sqrt(WHITENING_FLOOR) times as much as the average one.
    WHITENING_FLOOR = 0.01

    has_latent = True
    # Class-level values for modules pickled before the bounded coupling existed.
    logit_bound: Optional[float] = None
    latent_gain = 1.0
    readout_gain = 1.0
    whiten = False
    # Modules pickled before 0.19 moved C by their centring momentum, which was 0.1.
    whitening_momentum = 0.1

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
        coupling: str = "paper",
        centring_momentum: float = 1.0,
        whitening_momentum: float = 0.1,
        logit_bound: float = 4.0,
        latent_gain: float = 100.0,
        readout_gain: float = 256.0,
        whiten: bool = False,
    ):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if coupling not in self.COUPLINGS:
            raise ValueError(f"coupling must be one of {self.COUPLINGS}, got {coupling!r}")
        for name, value in (("centring_momentum", centring_momentum), ("whitening_momentum", whitening_momentum)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
        for name, value in (("logit_bound", logit_bound), ("latent_gain", latent_gain),
                            ("readout_gain", readout_gain)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if whiten and coupling == "paper":
            raise ValueError("whiten=True needs coupling='centred' or 'bounded' (the paper's coupling "
                             "keeps no running statistics of U)")
        self.temperature = float(temperature)
        self.coupling = coupling
        self.centring_momentum = float(centring_momentum)
        self.whitening_momentum = float(whitening_momentum)
        bounded = coupling == "bounded"
        self.logit_bound = float(logit_bound) if bounded else None
        self.latent_gain = float(latent_gain) if bounded else 1.0
        self.readout_gain = float(readout_gain) if bounded else 1.0
        self.statistics = statistics
        self.input_shape = tuple(int(s) for s in input_shape)
        self.weight = nn.Parameter(
            torch.randn(n_components, n_statistics, generator=generator) * weight_std
        )  # W: (K, N)
        self.mu = nn.Parameter(torch.zeros(self.input_shape))  # mu: input_shape
        if coupling == "paper":
            self.bias = nn.Parameter(torch.zeros(n_components))  # b_z: (K,)
            self.readout = None
        else:
            self.bias = None
            self.readout = nn.Parameter(torch.zeros(n_statistics))  # a: (N,)
            self.register_buffer("statistics_mean", torch.zeros(n_statistics))  # u_bar: (N,)
            # Batches observed so far: the first sets u_bar, later ones move it (saved with the model).
            self.register_buffer("n_observed", torch.zeros((), dtype=torch.long))
        self.whiten = bool(whiten)
        if self.whiten:
            self.register_buffer("statistics_covariance", torch.zeros(n_statistics, n_statistics))  # C
            self.register_buffer("whitener", torch.eye(n_statistics))  # P

    def quadratic(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mu).square().flatten(1).sum(1)  # (B,)

    def _eta_from_statistics(self, u: torch.Tensor) -> torch.Tensor:
        if self.readout is not None:
            u = u - self.statistics_mean
        if self.whiten:
            u = u @ self.whitener  # P is symmetric
        eta = dense(u, self.weight, self.bias)  # (B, K)
        if self.logit_bound is not None:  # tau * B tanh(g_W W (U - u_bar) / B): logits in nats
            bound = self.logit_bound
            eta = self.temperature * bound * torch.tanh(self.latent_gain * eta / bound)
        return eta

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._eta_from_statistics(self.statistics(x))

    def _visible_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The z-free part of the energy and eta(x), from one pass of the network."""
        u = self.statistics(x)
        visible = self.quadratic(x)
        if self.readout is not None:
            visible = visible - u @ self._readout()
        return visible, self._eta_from_statistics(u)

    def _readout(self) -> torch.Tensor:
        """a (centred) or g_a a (bounded): the visible read-out of U."""
        return self.readout if self.readout_gain == 1.0 else self.readout * self.readout_gain

    @torch.no_grad()
    def observe_data(self, x: torch.Tensor) -> None:
        """Set u_bar to the mean of U over a data batch (or move it there by the centring momentum),
        and move C towards the batch's covariance (centred and bounded couplings)."""
        if self.readout is None:
            return
        u = self.statistics(x).to(self.statistics_mean.dtype)
        u_mean = u.mean(0)
        if self.whiten:
            centred = u - u_mean
            covariance = centred.T @ centred / max(len(u) - 1, 1)
        first = self.n_observed == 0
        if not first and self.centring_momentum < 1.0:
            u_mean = torch.lerp(self.statistics_mean, u_mean, self.centring_momentum)
        self.statistics_mean.copy_(u_mean)
        if self.whiten:
            if not first:
                covariance = torch.lerp(self.statistics_covariance, covariance, self.whitening_momentum)
            self.statistics_covariance.copy_(covariance)
            self.whitener.copy_(self._whitener_of(covariance))
        self.n_observed += 1

    @torch.no_grad()
    def centre_on(self, batches: Iterable[torch.Tensor]) -> None:
        """Set u_bar to the mean of U over the data in ``batches`` (centred and bounded couplings;
        the paper's coupling keeps no statistics). Run at the end of a fit, so that the fitted
        model's units are centred on its training data, not on the last batch it saw."""
        if self.readout is None:
            return
        total, count = None, 0
        for x in batches:
            u = self.statistics(x).double()
            total = u.sum(0) if total is None else total + u.sum(0)
            count += len(u)
        if count == 0:
            raise ValueError("centre_on needs at least one row of data")
        self.statistics_mean.copy_((total / count).to(self.statistics_mean.dtype))

    def _whitener_of(self, covariance: torch.Tensor) -> torch.Tensor:
        """P = C^(-1/2) / sqrt(N), C's eigenvalues floored at WHITENING_FLOOR times their mean:
        P (U - u_bar) has a total variance of (at most) 1 over the data."""
        eigenvalues, vectors = torch.linalg.eigh(covariance.double())
        mean = eigenvalues.clamp_min(0).mean()
        if not mean > 0:  # U constant over the batch: nothing to whiten
            return torch.eye(len(covariance), dtype=covariance.dtype, device=covariance.device)
        scales = (len(eigenvalues) * eigenvalues.clamp_min(self.WHITENING_FLOOR * mean)).rsqrt()
        return ((vectors * scales) @ vectors.T).to(covariance.dtype)

    def natural_parameters(self, x: torch.Tensor) -> torch.Tensor:
        """eta(x) / tau: the logits of p(z | x) at the model's temperature (eta = W U(x) + b, or
        W (U(x) - u_bar) centred)."""
        return self.posterior_logits(x) / self.temperature

    def energy(self, x: torch.Tensor, z: Optional[torch.Tensor]) -> torch.Tensor:
        if z is None:
            raise ValueError("the NN-EFH joint energy needs a latent z; use free_energy(x)")
        return self.joint_energy_and_logits(x, z)[0]

    def joint_energy_and_logits(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        visible, eta = self._visible_and_logits(x)
        # U^T W^T z + b^T z = z . eta
        return visible - (z * eta).sum(1), eta

    def free_energy(self, x: torch.Tensor) -> torch.Tensor:
        tau = self.temperature
        visible, eta = self._visible_and_logits(x)
        return visible - tau * F.softplus(eta / tau).sum(1)

    def conditional_grad(self, z: Optional[torch.Tensor]) -> GradFn:
        if z is None:
            raise ValueError("the NN-EFH conditional gradient needs a latent z")
        if self.logit_bound is not None:
            # The bounded logits are not linear in U: dE/dx needs a full backward pass.
            return self._autograd_conditional_grad(z.detach())
        # dE/dx = 2 (x - mu) - J_U(x)^T (W^T z + a); W^T z is fixed for a whole Langevin block.
        direction = z @ self.weight
        if self.whiten:
            direction = direction @ self.whitener
        if self.readout is not None:
            direction = direction + self._readout()
        direction = direction.detach()  # (B, N)
        mu = self.mu.detach()

        def grad_fn(x: torch.Tensor) -> torch.Tensor:
            return 2.0 * (x - mu) - input_gradient(self.statistics, x, direction)

        return grad_fn

    def _autograd_conditional_grad(self, z: torch.Tensor) -> GradFn:
        """``grad_fn(x) = dE(z, x)/dx`` by autograd through the joint energy."""

        def grad_fn(x: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.joint_energy_and_logits(x, z)[0].sum(), x)
            return grad

        return grad_fn
