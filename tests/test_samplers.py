"""Samplers against known distributions, with statistical tolerances."""

import math

import numpy as np
import pytest
import torch
from conftest import ZeroStatistics, all_binary_states, tiny_grbm, tiny_nnefh
from torch import nn

from skefh.nn import EBMEnergy, NNEFHEnergy
from skefh.samplers import (
    GibbsLangevinSettings,
    gibbs_langevin,
    langevin,
    sample_from_data,
    sample_from_noise,
    sampling_mode,
    step_schedule,
)


def _ar1_variance(eps, scale, curvature, temperature):
    """Stationary variance of x <- x - eps*scale*curvature*x + sqrt(2 eps T) xi."""
    a = 1.0 - eps * scale * curvature
    return 2.0 * eps * temperature / (1.0 - a * a)


def _quadratic_nnefh(dim, mu):
    model = NNEFHEnergy(ZeroStatistics(3), (dim,), 3, 4).double()
    with torch.no_grad():
        model.mu.copy_(torch.as_tensor(mu, dtype=torch.float64))
    return model


@pytest.mark.parametrize(
    "eps, scale, temperature, n_steps",
    [(0.2, 1.0, 0.5, 60), (1.0, 1 / 64, 5e-5, 400)],  # textbook; the paper's recipe with B=64
)
def test_langevin_with_zero_statistics_reaches_the_known_gaussian(eps, scale, temperature, n_steps):
    """U = 0 leaves E = ||x - mu||^2: the chain is an AR(1) process with a known stationary law."""
    mu = [0.5, -1.0, 0.25]
    model = _quadratic_nnefh(3, mu)
    n_chains = 20_000
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(n_chains, 3, dtype=torch.float64, generator=gen)
    z = torch.bernoulli(torch.full((n_chains, 4), 0.5, dtype=torch.float64), generator=gen)
    settings = GibbsLangevinSettings(1, n_steps, eps, temperature, energy_scale=scale)
    x = gibbs_langevin(model, x0, z, settings, generator=gen)["x"]
    var = _ar1_variance(eps, scale, 2.0, temperature)
    se_mean = math.sqrt(var / n_chains)
    assert torch.all((x.mean(0) - torch.tensor(mu, dtype=torch.float64)).abs() < 5 * se_mean)
    # The sample variance has relative standard error sqrt(2 / n) (about 1 % here).
    torch.testing.assert_close(x.var(0), torch.full((3,), var, dtype=torch.float64), rtol=0.05, atol=0)


class _Square(nn.Module):
    """U(x) = x^2 elementwise, so that E(x) = w^T x^2 + c is a known quadratic."""

    def forward(self, x):
        return x.flatten(1) ** 2


def test_ebm_langevin_reaches_the_gaussian_of_a_quadratic_energy():
    model = EBMEnergy(_Square(), (2,), 2).double()
    with torch.no_grad():
        model.readout.fill_(1.5)  # E(x) = 1.5 ||x||^2 + c: curvature 3
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(20_000, 2, dtype=torch.float64, generator=gen) * 3
    settings = GibbsLangevinSettings(n_gibbs=2, n_langevin=50, step_size=0.1, temperature=0.2)
    x = gibbs_langevin(model, x0, None, settings, generator=gen)["x"]
    var = _ar1_variance(0.1, 1.0, 3.0, 0.2)
    assert torch.all(x.mean(0).abs() < 5 * math.sqrt(var / 20_000))
    torch.testing.assert_close(x.var(0), torch.full((2,), var, dtype=torch.float64), rtol=0.05, atol=0)


def test_langevin_step_is_the_stated_update():
    """One step equals x - eps*s*grad + sqrt(2 eps T) * (the generator's next normal draw)."""
    grad_fn = lambda x: 3.0 * x  # noqa: E731
    x = torch.randn(4, 5)
    out = langevin(grad_fn, x, step_size=0.3, n_steps=1, temperature=0.7, energy_scale=0.5,
                   generator=torch.Generator().manual_seed(9))
    noise = torch.randn(4, 5, generator=torch.Generator().manual_seed(9))
    expected = x - 0.3 * 0.5 * 3.0 * x + math.sqrt(2 * 0.3 * 0.7) * noise
    torch.testing.assert_close(out["x"], expected)
    assert out["n_steps"] == 1
    assert float(out["grad_norm"]) == pytest.approx(float((0.5 * 3.0 * x).norm(dim=1).mean()), rel=1e-5)


@pytest.mark.parametrize("step", [np.float32(0.3), np.float64(0.3), torch.tensor(0.3)])
def test_langevin_takes_numpy_and_tensor_scalar_steps(step):
    x = torch.randn(4, 5)
    run = lambda s: langevin(lambda v: v, x, step_size=s, n_steps=2, temperature=0.1,  # noqa: E731
                             generator=torch.Generator().manual_seed(0))["x"]
    torch.testing.assert_close(run(step), run(0.3))


@pytest.mark.parametrize("field, value, message", [
    ("step_size", 0.0, "step_size > 0"), ("energy_scale", 0.0, "energy_scale > 0"),
    ("temperature", -1.0, "temperature must be positive"), ("temperature", 0.0, "temperature must be positive"),
    ("latent_temperature", 0.0, "latent_temperature must be positive"),
])
def test_gibbs_langevin_settings_reject_impossible_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        GibbsLangevinSettings(2, 3, 1.0, 1e-3).with_(**{field: value})


# -- one temperature: the chain's stationary law is the model's density -----------------------
def _quadrature_cdf(log_density, low=-8.0, high=8.0, n=200_001):
    grid = torch.linspace(low, high, n, dtype=torch.float64)
    with torch.no_grad():
        weights = torch.softmax(log_density(grid[:, None]), 0)
    cdf = torch.cumsum(weights, 0).numpy()
    return lambda x: np.interp(x, grid.numpy(), cdf)


def _long_chains(model, latent_temperature, n_chains=4000, seed=0):
    settings = GibbsLangevinSettings(200, 10, 0.01, latent_temperature=latent_temperature)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n_chains, 1, dtype=torch.float64, generator=gen)
    return gibbs_langevin(model, x0, None, settings, generator=gen)["x"][:, 0].numpy()


@pytest.mark.parametrize("seed, tau", [(0, 0.25), (2, 0.25), (3, 0.25), (0, 0.5)])
def test_gibbs_langevin_at_one_temperature_samples_the_tempered_marginal(seed, tau):
    """Latent draws and x-steps both at tau: 4,000 long chains (2,000 small steps each) are
    distributed as exp(-F_tau(x) / tau), computed by quadrature (Kolmogorov-Smirnov test). The
    paper's mixed chain, latent draws at 1 and x-steps at tau, fails the same test."""
    from scipy import stats

    model = tiny_nnefh(1, 3, 4, seed=seed, weight_std=1.5)
    model.temperature = tau
    cdf = _quadrature_cdf(model.log_density)
    assert stats.kstest(_long_chains(model, None), cdf).pvalue > 1e-3
    assert stats.kstest(_long_chains(model, 1.0), cdf).pvalue < 1e-6


def test_the_tempered_free_energy_sums_the_tempered_joint():
    """exp(-F_tau(x) / tau) = sum_z exp(-E(z, x) / tau), and p_tau(z | x) = Bern(sigmoid(eta / tau))."""
    model = tiny_nnefh(3, 4, 5, seed=1)
    model.temperature = 0.3
    x = torch.randn(6, 3, dtype=torch.float64)
    zs = all_binary_states(4)
    joint = torch.stack([-model.energy(x, z.expand(6, 4)) / 0.3 for z in zs], 1)  # (6, 16)
    torch.testing.assert_close(model.log_density(x), torch.logsumexp(joint, 1))
    posterior = torch.softmax(joint, 1) @ zs  # E[z_k | x] by enumeration
    torch.testing.assert_close(model.posterior_probabilities(x), posterior)


def test_step_schedules():
    assert step_schedule(2.0, 3) == [2.0, 2.0, 2.0]
    cosine = step_schedule(2.0, 4, "cosine")
    assert cosine[0] == pytest.approx(2.0)
    assert cosine[2] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    with pytest.raises(ValueError, match="unknown step schedule"):
        step_schedule(1.0, 3, "linear")


def test_gibbs_langevin_shapes_and_no_parameter_gradients_left_behind():
    model = tiny_nnefh(3, 4, 5)
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    settings = GibbsLangevinSettings(n_gibbs=3, n_langevin=4, step_size=0.1, temperature=0.01)
    out = sample_from_noise(model, 7, settings, generator=torch.Generator().manual_seed(0), keep="all")
    assert out["x"].shape == (7, 3) and out["z"].shape == (7, 4)
    assert len(out["xs"]) == 3 and len(out["zs"]) == 3
    assert out["x0"].shape == (7, 3)
    assert set(torch.unique(out["z"]).tolist()) <= {0.0, 1.0}
    assert not out["x"].requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert model.training
    assert float(out["x_min"]) <= float(out["x_max"])


def test_sampling_mode_freezes_and_restores():
    model = tiny_nnefh(2, 2, 2)
    with sampling_mode(model):
        assert not any(p.requires_grad for p in model.parameters())
        assert not model.training
    assert all(p.requires_grad for p in model.parameters())


def test_samplers_are_reproducible_with_a_seeded_generator():
    model = tiny_nnefh(3, 4, 5)
    settings = GibbsLangevinSettings(2, 3, 0.1, 0.01)
    a = sample_from_noise(model, 5, settings, generator=torch.Generator().manual_seed(4))
    b = sample_from_noise(model, 5, settings, generator=torch.Generator().manual_seed(4))
    c = sample_from_noise(model, 5, settings, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a["x"], b["x"])
    assert not torch.allclose(a["x"], c["x"])


@torch.no_grad()
def test_sample_from_data_initialises_the_latent_from_the_posterior():
    """Algorithm 2: z starts from p(z | data). With a near-deterministic posterior and exact
    visible draws of tiny variance, one round maps each data row to W h(data) + mu."""
    model = tiny_grbm(2, 3, seed=4)
    model.weight.copy_(torch.tensor([[4.0, -4.0, 3.0], [-3.0, 2.0, 4.0]], dtype=torch.float64))
    model.bias.zero_()
    model.log_var.fill_(math.log(1e-4))
    x_data = torch.tensor([[1.0, 0.5], [-1.0, 0.2], [0.3, -1.0]], dtype=torch.float64)
    h_data = (model.posterior_logits(x_data) > 0).double()  # |logits| are in the thousands
    settings = GibbsLangevinSettings(n_gibbs=1, n_langevin=1, step_size=1.0, temperature=1.0,
                                     visible_step="exact")
    out = sample_from_data(model, x_data, settings, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["x"], model.visible_mean(h_data), atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="no latent layer"):
        sample_from_data(EBMEnergy(_Square(), (2,), 2).double(), x_data, settings)


# -- GRBM against its exact Gaussian-mixture marginal --------------------------------------------
def _grbm_marginal_moments(model):
    """Mean and covariance of p(v) = sum_h p(h) N(W h + mu, diag sigma^2), exactly."""
    hs = all_binary_states(model.bias.numel())
    var = model.variance()
    means = model.visible_mean(hs)  # (2^H, D)
    # log p(h) = b^T h + sum_i ((mu + W h)_i^2 - mu_i^2) / (2 sigma_i^2) + const
    log_weights = hs @ model.bias + ((means**2 - model.mu**2) / (2 * var)).sum(1)
    weights = torch.softmax(log_weights, 0)
    mean = weights @ means
    second = torch.diag(var) + torch.einsum("h,hi,hj->ij", weights, means, means)
    return mean, second - torch.outer(mean, mean)


@pytest.mark.parametrize("visible_step", ["exact", "langevin"])
@torch.no_grad()
def test_grbm_gibbs_reproduces_the_exact_marginal(visible_step):
    model = tiny_grbm(2, 3, seed=11)
    mean, cov = _grbm_marginal_moments(model)
    n_chains = 20_000
    if visible_step == "exact":
        settings = GibbsLangevinSettings(200, 1, 1.0, 1.0, visible_step="exact")
    else:
        # Energy scale 1 and small steps: Langevin then targets p(v | h) itself.
        settings = GibbsLangevinSettings(60, 20, 0.02, 1.0, energy_scale=1.0)
    out = sample_from_noise(model, n_chains, settings, generator=torch.Generator().manual_seed(3))
    v = out["x"]
    sd = cov.diagonal().sqrt()
    assert torch.all((v.mean(0) - mean).abs() < 5 * sd / math.sqrt(n_chains) + 0.02 * sd)
    tolerance = 0.05 if visible_step == "exact" else 0.1  # Langevin adds an O(eps) bias
    torch.testing.assert_close(torch.cov(v.T), cov, rtol=tolerance, atol=tolerance * float(sd.max()) ** 2)


@torch.no_grad()
def test_grbm_reference_energy_scale_samples_a_hotter_visible_law():
    """The GRBM reference divides its energies by the batch size: its x-steps target exp(-E / B)
    while its latent draws stay at temperature 1, and the chain misses the model's marginal."""
    model = tiny_grbm(2, 3, seed=11)
    _, cov = _grbm_marginal_moments(model)
    settings = GibbsLangevinSettings(60, 20, 0.02 * 8, energy_scale=1 / 8)
    v = sample_from_noise(model, 20_000, settings, generator=torch.Generator().manual_seed(3))["x"]
    assert torch.all(torch.cov(v.T).diagonal() > 2.0 * cov.diagonal())


def test_bfloat16_langevin_gradients_track_float32():
    """The opt-in bfloat16 autocast changes the drift by well under 1 % on a conv net."""
    from skefh.nn import ConvStatistics

    torch.manual_seed(0)
    model = NNEFHEnergy(ConvStatistics((1, 12, 12), 32, 8), (1, 12, 12), 32, 16)
    x = torch.randn(16, 1, 12, 12)
    z = torch.bernoulli(torch.full((16, 16), 0.5))
    with sampling_mode(model):
        g32 = model.conditional_grad(z)(x)
        with torch.autocast("cpu", torch.bfloat16):
            g16 = model.conditional_grad(z)(x).float()
    assert float((g16 - g32).norm() / g32.norm()) < 0.01
    settings = GibbsLangevinSettings(2, 5, 1.0, 5e-5, energy_scale=1 / 16)
    a = gibbs_langevin(model, x, z, settings, generator=torch.Generator().manual_seed(0))["x"]
    b = gibbs_langevin(model, x, z, settings.with_(precision="bfloat16"),
                       generator=torch.Generator().manual_seed(0))["x"]
    assert a.dtype == b.dtype == torch.float32
    assert float((a - b).abs().max()) < 0.05 and not torch.equal(a, b)
