"""Shared fixtures and tiny models for the test-suite."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from skefh.nn import GRBMEnergy, MLPStatistics, NNEFHEnergy
from skefh.samplers import GaussianMixtureBasePath


@pytest.fixture
def one_torch_thread():
    """For tests of tiny models: extra threads only contend for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global RNG states."""
    torch.manual_seed(0)
    np.random.seed(0)


class ZeroStatistics(nn.Module):
    """U(x) = 0: the NN-EFH reduces to its quadratic term, a known Gaussian."""

    def __init__(self, n_statistics):
        super().__init__()
        self.n_statistics = n_statistics
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x.flatten(1)[:, :1] * 0.0 * self.dummy + torch.zeros(
            x.shape[0], self.n_statistics, dtype=x.dtype, device=x.device
        )


def tiny_nnefh(n_features=3, n_components=4, n_statistics=5, seed=0, weight_std=0.7, coupling="paper"):
    """A float64 NN-EFH on an MLP with random (not small) parameters; centred or bounded, its
    read-out and u_bar are random too (bounded: gains and bound that leave the tanh unsaturated).
    ``coupling="centred+whiten"`` or ``"bounded+whiten"``: with whitened statistics, the whitener
    a random symmetric positive-definite matrix."""
    coupling, _, whiten = coupling.partition("+")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    stats = MLPStatistics(n_features, n_statistics)
    bounded = dict(logit_bound=1.5, latent_gain=0.8, readout_gain=3.0) if coupling == "bounded" else {}
    model = NNEFHEnergy(
        stats, (n_features,), n_statistics, n_components, weight_std=weight_std, generator=gen, coupling=coupling,
        whiten=whiten == "whiten", **bounded,
    )
    with torch.no_grad():
        if coupling == "paper":
            model.bias.normal_(0, 0.5, generator=gen)
        else:
            model.readout.normal_(0, 0.5, generator=gen)
            model.statistics_mean.normal_(0, 0.5, generator=gen)
        if model.whiten:
            root = torch.randn(n_statistics, n_statistics, generator=gen)
            model.whitener.copy_(root @ root.T / n_statistics + 0.5 * torch.eye(n_statistics))
        model.mu.normal_(0, 0.5, generator=gen)
    return model.double()


def tiny_grbm(n_visible=2, n_hidden=3, seed=0):
    """A float64 GRBM with random parameters of order one."""
    gen = torch.Generator().manual_seed(seed)
    model = GRBMEnergy(n_visible, n_hidden, generator=gen)
    with torch.no_grad():
        model.weight.normal_(0, 0.8, generator=gen)
        model.bias.normal_(0, 0.5, generator=gen)
        model.mu.normal_(0, 0.5, generator=gen)
        model.log_var.normal_(-0.5, 0.3, generator=gen)
    return model.double()


def all_binary_states(k, dtype=torch.float64):
    """(2^k, k) tensor of every z in {0, 1}^k."""
    grid = torch.arange(2**k).unsqueeze(1).bitwise_right_shift(torch.arange(k)) & 1
    return grid.to(dtype)


def far_mode_nnefh(dim=16, half_norm_squared=70.0, bias=-60.0):
    """U(x) = x and one latent: Z = pi^(D/2) (1 + exp(b + ||w||^2 / 4)) in closed form (sum
    over z of a Gaussian integral). With b << 0 the softplus term is ~0 near mu, and the z = 1
    term, a Gaussian at w / 2, holds e^10 times the mass of the one at mu."""
    model = NNEFHEnergy(nn.Flatten(), (dim,), dim, 1).double()
    w = torch.randn(dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = w / w.norm() * math.sqrt(4 * half_norm_squared)
    with torch.no_grad():
        model.weight.copy_(w[None])
        model.bias.fill_(bias)
    exact = 0.5 * dim * math.log(math.pi) + math.log1p(math.exp(bias + half_norm_squared))
    return model, w, exact


def quadratic_base_path(model):
    """AIS from N(mu, tau I / 2), the NN-EFH's quadratic term alone: where an untrained network
    puts its mass, and the one-component case of the estimator's mixture base."""
    mu = model.mu.detach()
    return GaussianMixtureBasePath(model, mu[None], torch.full_like(mu, 0.5 * model.temperature)[None])
