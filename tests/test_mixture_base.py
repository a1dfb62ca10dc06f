"""The Gaussian-mixture base of AIS paths: its density and gradient against direct sums and
autograd, its weights, its box and the samples it starts chains from."""

import math

import pytest
import torch
from conftest import tiny_nnefh

from skefh.samplers import GaussianMixtureBasePath


def test_gaussian_mixture_base_rejects_bad_components():
    model = tiny_nnefh(2, 3, 4)
    good = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="shape"):
        GaussianMixtureBasePath(model, torch.zeros(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        GaussianMixtureBasePath(model, good, torch.ones(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive variances"):
        GaussianMixtureBasePath(model, good, torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite means"):
        GaussianMixtureBasePath(model, torch.full((2, 2), math.nan, dtype=torch.float64), good + 1)


@pytest.mark.parametrize("n_components", [3, 40])
def test_gaussian_mixture_base_density_and_gradient(n_components):
    """The closed-form log q and its gradient against a direct sum and autograd, for a few
    components (differences) and for many (their expansion into matrix products)."""
    model = tiny_nnefh(3, 3, 4)
    gen = torch.Generator().manual_seed(1)
    means = 3.0 * torch.randn(n_components, 3, generator=gen, dtype=torch.float64)
    variances = torch.rand(n_components, 3, generator=gen, dtype=torch.float64) + 0.2
    path = GaussianMixtureBasePath(model, means, variances)
    assert (n_components > path.expand_above) == (n_components == 40)
    x = 3.0 * torch.randn(5, 3, generator=gen, dtype=torch.float64)
    x.requires_grad_(True)
    direct = torch.logsumexp(torch.stack([
        torch.distributions.Normal(means[k], variances[k].sqrt()).log_prob(x).sum(1) for k in range(n_components)
    ]), 0) - math.log(n_components)
    (autograd,) = torch.autograd.grad(direct.sum(), x)
    log_q, grad = path._base_and_grad(x.detach())
    torch.testing.assert_close(log_q, direct.detach())
    torch.testing.assert_close(grad, autograd)
    torch.testing.assert_close(path._log_base(x.detach()), direct.detach())
    samples = path.sample_base(20_000, torch.Generator().manual_seed(2))
    torch.testing.assert_close(samples.mean(0), means.mean(0), atol=0.15, rtol=0)


def test_mixture_weights_set_the_base_density_and_where_its_chains_start():
    model = tiny_nnefh(1, 3, 4)
    means = torch.tensor([[-2.0], [0.5], [3.0]], dtype=torch.float64)
    variances = torch.tensor([[0.3], [0.1], [0.5]], dtype=torch.float64)
    box = (torch.tensor([-3.0], dtype=torch.float64), torch.tensor([3.5], dtype=torch.float64))
    path = GaussianMixtureBasePath(model, means, variances, bounds=box, weights=torch.tensor([6.0, 3.0, 1.0]))
    torch.testing.assert_close(path.weights, torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64))
    grid = torch.linspace(-3.0, 3.5, 200_001, dtype=torch.float64).unsqueeze(1)
    cell = 6.5 / 200_000
    with torch.no_grad():  # still normalised on the box, with most mass where the weight is
        density = path._log_base(grid).exp()
    assert float(density.sum()) * cell == pytest.approx(1.0, abs=1e-4)
    assert float(density[grid[:, 0] < -0.75].sum()) * cell == pytest.approx(0.6, abs=0.01)
    draws = path.sample_base(20_000, torch.Generator().manual_seed(0))[:, 0]
    assert float((draws < -0.75).double().mean()) == pytest.approx(0.6, abs=0.015)
    assert float((draws > 1.75).double().mean()) == pytest.approx(0.1, abs=0.01)
    for bad in ([1.0, 2.0], [1.0, 0.0, 1.0], [1.0, math.nan, 1.0]):
        with pytest.raises(ValueError, match="weights"):
            GaussianMixtureBasePath(model, means, variances, weights=torch.tensor(bad))


def test_the_expanded_mixture_base_matches_the_direct_one_in_a_box_and_in_float32():
    model = tiny_nnefh(3, 3, 4).float()
    gen = torch.Generator().manual_seed(3)
    means = 10.0 + torch.randn(64, 3, generator=gen)  # far from 0: the expansion's cancellation
    variances = torch.full_like(means, 0.05)
    box = (torch.full((3,), 8.0), torch.full((3,), 12.0))
    expanded = GaussianMixtureBasePath(model, means, variances, bounds=box)
    direct = GaussianMixtureBasePath(model, means, variances, bounds=box)
    direct.expand_above = 1000
    x = expanded.sample_base(32, gen)
    for a, b in zip(expanded._base_and_grad(x), direct._base_and_grad(x)):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3)
