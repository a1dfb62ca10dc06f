"""The energies against brute force: enumeration of latents, finite differences, closed forms."""

import math

import numpy as np
import pytest
import torch
from conftest import all_binary_states, tiny_grbm, tiny_nnefh
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from skefh.nn import EBMEnergy, MLPStatistics, NNEFHEnergy

SETTINGS = settings(max_examples=15, deadline=None)


COUPLINGS = st.sampled_from(["paper", "centred", "bounded", "centred+whiten", "bounded+whiten"])


def _brute_force_posterior(model, x, k):
    """p(z | x) for every z, and -tau log sum_z exp(-E(z, x) / tau), by enumerating all 2^k states."""
    tau = model.temperature
    zs = all_binary_states(k)  # (2^k, k)
    energies = torch.stack([model.energy(x.expand(len(zs), -1), zs) for x in x.split(1)])  # (B, 2^k)
    log_joint = -energies / tau
    return zs, torch.softmax(log_joint, dim=1), -tau * torch.logsumexp(log_joint, dim=1)


@SETTINGS
@given(
    n_features=st.integers(1, 4),
    k=st.integers(1, 8),
    n_statistics=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    coupling=COUPLINGS,
    tau=st.sampled_from([1.0, 0.3, 3.0]),
)
def test_nnefh_posterior_and_free_energy_match_enumeration(n_features, k, n_statistics, seed, coupling, tau):
    model = tiny_nnefh(n_features, k, n_statistics, seed=seed, coupling=coupling)
    model.temperature = tau
    x = torch.randn(3, n_features, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    zs, posterior, free_energy = _brute_force_posterior(model, x, k)
    probs = model.posterior_probabilities(x)  # (B, k)
    # The factorised Bernoulli posterior assigns each z the product of its marginals.
    factorised = torch.prod(torch.where(zs.bool(), probs[:, None, :], 1 - probs[:, None, :]), dim=2)
    torch.testing.assert_close(factorised, posterior, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(model.free_energy(x), free_energy, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(n_features=st.integers(1, 4), seed=st.integers(0, 10_000), coupling=COUPLINGS)
def test_nnefh_free_energy_gradient_matches_finite_differences(n_features, seed, coupling):
    model = tiny_nnefh(n_features, 4, 5, seed=seed, coupling=coupling)
    x = torch.randn(2, n_features, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grad = model.free_energy_grad(x)
    h = 1e-6
    numeric = torch.zeros_like(x)
    for i in range(n_features):
        step = torch.zeros_like(x)
        step[:, i] = h
        numeric[:, i] = (model.free_energy(x + step) - model.free_energy(x - step)) / (2 * h)
    # LeakyReLU kinks make the finite difference wrong only on a measure-zero set.
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-6)


@SETTINGS
@given(n_features=st.integers(1, 4), k=st.integers(1, 6), seed=st.integers(0, 10_000), coupling=COUPLINGS)
def test_nnefh_conditional_gradient_is_the_energy_gradient(n_features, k, seed, coupling):
    model = tiny_nnefh(n_features, k, 5, seed=seed, coupling=coupling)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, n_features, dtype=torch.float64, generator=gen)
    z = torch.bernoulli(torch.full((4, k), 0.5, dtype=torch.float64), generator=gen)
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model.energy(xr, z).sum(), xr)
    torch.testing.assert_close(model.conditional_grad(z)(x), expected)


def test_nnefh_energy_matches_equation_six():
    model = tiny_nnefh(3, 4, 5)
    x = torch.randn(2, 3, dtype=torch.float64)
    z = torch.tensor([[1.0, 0, 1, 1], [0, 0, 0, 1]], dtype=torch.float64)
    u = model.statistics(x)
    expected = ((x - model.mu) ** 2).sum(1) - ((u @ model.weight.T) * z).sum(1) - z @ model.bias
    torch.testing.assert_close(model.energy(x, z), expected)


def test_centred_nnefh_energy_is_the_stated_harmonium():
    """E(z, x) = ||x - mu||^2 - a^T U(x) - z^T W (U(x) - u_bar), posterior logits W (U - u_bar)."""
    model = tiny_nnefh(3, 4, 5, coupling="centred")
    x = torch.randn(2, 3, dtype=torch.float64)
    z = torch.tensor([[1.0, 0, 1, 1], [0, 0, 0, 1]], dtype=torch.float64)
    u = model.statistics(x)
    centred = u - model.statistics_mean
    expected = ((x - model.mu) ** 2).sum(1) - u @ model.readout - ((centred @ model.weight.T) * z).sum(1)
    torch.testing.assert_close(model.energy(x, z), expected)
    torch.testing.assert_close(model.posterior_logits(x), centred @ model.weight.T)
    assert model.bias is None


def test_bounded_nnefh_energy_is_the_stated_harmonium():
    """l = B tanh(g_W W (U - u_bar) / B); E(z, x) = ||x - mu||^2 - g_a a^T U - tau z^T l."""
    model = tiny_nnefh(3, 4, 5, coupling="bounded")
    model.temperature = 0.3
    bound, g_w, g_a = model.logit_bound, model.latent_gain, model.readout_gain
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    z = torch.bernoulli(torch.full((6, 4), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    u = model.statistics(x)
    logits = bound * torch.tanh(g_w * (u - model.statistics_mean) @ model.weight.T / bound)
    expected = ((x - model.mu) ** 2).sum(1) - g_a * u @ model.readout - 0.3 * (z * logits).sum(1)
    torch.testing.assert_close(model.energy(x, z), expected)
    # The posterior's logits are l at any temperature, and never leave (-B, B).
    torch.testing.assert_close(model.natural_parameters(x), logits)
    model.temperature = 2.0
    torch.testing.assert_close(model.natural_parameters(x), logits)
    with torch.no_grad():
        model.weight.mul_(1e4)
    assert model.natural_parameters(x).abs().max() <= bound


@pytest.mark.parametrize("coupling", ["centred", "bounded"])
def test_whitened_nnefh_energy_reads_the_whitened_statistics(coupling):
    """With ``whiten``, the units read P (U - u_bar) (P symmetric) and the read-out the raw U."""
    model = tiny_nnefh(3, 4, 5, coupling=coupling + "+whiten")
    plain = tiny_nnefh(3, 4, 5, coupling=coupling)  # the same parameters, unwhitened
    x = torch.randn(6, 3, dtype=torch.float64)
    z = torch.bernoulli(torch.full((6, 4), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    whitened = (model.statistics(x) - model.statistics_mean) @ model.whitener
    assert not torch.allclose(whitened, model.statistics(x) - model.statistics_mean)
    # The unwhitened model's energy at the statistics the whitened one reads, read-out unchanged.
    readout = model._readout()
    shifted_u = whitened + plain.statistics_mean
    with torch.no_grad():
        expected = (model.quadratic(x) - model.statistics(x) @ readout
                    - (z * plain._eta_from_statistics(shifted_u)).sum(1))
        torch.testing.assert_close(model.energy(x, z), expected)
        torch.testing.assert_close(model.posterior_logits(x), plain._eta_from_statistics(shifted_u))


def test_whitener_whitens_the_running_covariance_of_the_statistics():
    """The first batch sets C to its covariance of U and P (U - u_bar) then has covariance I / N
    on that batch; later batches move C by the momentum; a direction along which U does not
    vary is scaled by 1 / sqrt(N floor mean eigenvalue), not divided by zero."""
    n_features, n_statistics = 8, 6
    linear = nn.Linear(n_features, n_statistics).double()
    with torch.no_grad():
        linear.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
        linear.weight[-1] = 0.0  # the last statistic is constant: C is singular
        linear.weight[0] *= 3.0  # U varies most along one direction (no other below the floor)
    model = NNEFHEnergy(linear, (n_features,), n_statistics, 3, coupling="bounded", whiten=True).double()
    gen = torch.Generator().manual_seed(0)
    first = torch.randn(4000, n_features, dtype=torch.float64, generator=gen)
    model.observe_data(first)
    with torch.no_grad():
        u = linear(first)
        covariance = torch.cov(u.T)
        torch.testing.assert_close(model.statistics_covariance, covariance)
        whitened = (u - model.statistics_mean) @ model.whitener
        expected = torch.eye(n_statistics, dtype=torch.float64) / n_statistics
        expected[-1, -1] = 0.0
        torch.testing.assert_close(torch.cov(whitened.T), expected, atol=1e-9, rtol=1e-6)
        eigenvalues = torch.linalg.eigvalsh(covariance)
        floor = model.WHITENING_FLOOR * eigenvalues.mean()
        unit = torch.zeros(n_statistics, dtype=torch.float64)
        unit[-1] = 1.0
        torch.testing.assert_close((model.whitener @ unit)[-1], (n_statistics * floor).rsqrt())
        second = torch.randn(500, n_features, dtype=torch.float64, generator=gen) * 2.0
        expected_covariance = torch.lerp(covariance, torch.cov(linear(second).T), model.whitening_momentum)
    model.observe_data(second)
    assert model.whitening_momentum == 0.1
    torch.testing.assert_close(model.statistics_covariance, expected_covariance)
    # u_bar is the second batch's mean, not a blend: the covariance keeps a memory, the mean none.
    torch.testing.assert_close(model.statistics_mean, linear(second).mean(0).detach())


def test_centre_on_sets_the_mean_of_the_statistics_over_every_batch():
    """u_bar becomes the mean of U over all rows of all batches (unequal batch sizes weigh by
    rows); C and the whitener are left as training left them; the paper's coupling has no u_bar."""
    model = tiny_nnefh(3, 4, 5, coupling="bounded+whiten")
    covariance, whitener = model.statistics_covariance.clone(), model.whitener.clone()
    gen = torch.Generator().manual_seed(3)
    batches = [torch.randn(n, 3, dtype=torch.float64, generator=gen) + shift for n, shift in ((7, 0.0), (2, 5.0))]
    model.centre_on(iter(batches))
    with torch.no_grad():
        expected = model.statistics(torch.cat(batches)).mean(0)
    torch.testing.assert_close(model.statistics_mean, expected)
    assert torch.equal(model.statistics_covariance, covariance) and torch.equal(model.whitener, whitener)
    with pytest.raises(ValueError, match="at least one row"):
        model.centre_on([])
    paper = tiny_nnefh(3, 4, 5)
    before = {k: v.clone() for k, v in paper.state_dict().items()}
    paper.centre_on(batches)
    assert all(torch.equal(before[k], v) for k, v in paper.state_dict().items())
    for name in ("centring_momentum", "whitening_momentum"):
        with pytest.raises(ValueError, match=name):
            NNEFHEnergy(MLPStatistics(3, 5), (3,), 5, 4, coupling="centred", **{name: 0.0})


def test_whitening_needs_a_centred_or_bounded_coupling():
    from sklearn.datasets import load_digits

    from skefh import NNEFH

    with pytest.raises(ValueError, match="whiten"):
        NNEFHEnergy(MLPStatistics(3, 5), (3,), 5, 4, coupling="paper", whiten=True)
    with pytest.raises(ValueError, match="whiten_statistics.*coupling"):
        NNEFH(coupling="paper", whiten_statistics=True, max_iter=1).fit(load_digits().data[:20])


def test_bounded_coupling_rejects_bad_settings():
    from sklearn.datasets import load_digits

    from skefh import NNEFH

    X = load_digits().data[:20]
    for name in ("logit_bound", "latent_gain", "readout_gain"):
        for value in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                NNEFHEnergy(MLPStatistics(3, 5), (3,), 5, 4, coupling="bounded", **{name: value})
        with pytest.raises(ValueError, match=name):
            NNEFH(coupling="bounded", max_iter=1, **{name: -1.0}).fit(X)


def test_centred_mean_follows_the_data_and_the_paper_coupling_keeps_none():
    """By default u_bar is each batch's mean of U; with a centring momentum below 1 the first
    batch sets it and later batches move it by the momentum."""
    first, second = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64) + 1.0
    model = tiny_nnefh(3, 4, 5, coupling="centred")
    model.n_observed.zero_()
    for batch in (first, second):
        model.observe_data(batch)
        with torch.no_grad():
            torch.testing.assert_close(model.statistics_mean, model.statistics(batch).mean(0))
    assert int(model.n_observed) == 2
    model.centring_momentum = 0.1
    model.n_observed.zero_()
    model.observe_data(first)
    with torch.no_grad():
        torch.testing.assert_close(model.statistics_mean, model.statistics(first).mean(0))
        expected = torch.lerp(model.statistics_mean, model.statistics(second).mean(0), 0.1)
    model.observe_data(second)
    torch.testing.assert_close(model.statistics_mean, expected)
    assert int(model.n_observed) == 2
    paper = tiny_nnefh(3, 4, 5)
    before = {k: v.clone() for k, v in paper.state_dict().items()}
    paper.observe_data(first)
    assert all(torch.equal(before[k], v) for k, v in paper.state_dict().items())
    assert not any("statistics_mean" in k for k in before)


def test_ebm_gradient_matches_autograd():
    torch.manual_seed(1)
    model = EBMEnergy(MLPStatistics(3, 6), (3,), 6).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model.energy(xr).sum(), xr)
    torch.testing.assert_close(model.conditional_grad(None)(x), expected)
    torch.testing.assert_close(model.free_energy(x), model.energy(x))
    assert model.sample_latent(x) is None


# -- GRBM ---------------------------------------------------------------------------------------
@SETTINGS
@given(n_visible=st.integers(1, 4), n_hidden=st.integers(1, 7), seed=st.integers(0, 10_000))
def test_grbm_posterior_and_free_energy_match_enumeration(n_visible, n_hidden, seed):
    model = tiny_grbm(n_visible, n_hidden, seed)
    v = torch.randn(3, n_visible, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    hs, posterior, free_energy = _brute_force_posterior(model, v, n_hidden)
    probs = torch.sigmoid(model.posterior_logits(v))
    factorised = torch.prod(torch.where(hs.bool(), probs[:, None, :], 1 - probs[:, None, :]), dim=2)
    torch.testing.assert_close(factorised, posterior, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(model.free_energy(v), free_energy, rtol=1e-9, atol=1e-9)


@torch.no_grad()
def test_grbm_visible_conditional_is_the_stated_gaussian():
    """exp(-E(v, h)) normalised over v (1-D quadrature) is N(W h + mu, sigma^2)."""
    model = tiny_grbm(1, 3, seed=3)
    grid = torch.linspace(-15, 15, 200_001, dtype=torch.float64).unsqueeze(1)
    for h in all_binary_states(3):
        log_unnorm = -model.energy(grid, h.expand(len(grid), -1))
        weights = torch.softmax(log_unnorm, dim=0)
        mean = float((weights * grid[:, 0]).sum())
        var = float((weights * (grid[:, 0] - mean) ** 2).sum())
        assert mean == pytest.approx(float(model.visible_mean(h[None])[0, 0]), abs=1e-6)
        assert var == pytest.approx(float(model.variance()[0]), rel=1e-5)


def test_grbm_closed_form_gradients_match_autograd():
    model = tiny_grbm(4, 3, seed=5)
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(6, 4, dtype=torch.float64, generator=gen)
    h = torch.bernoulli(torch.full((6, 3), 0.5, dtype=torch.float64), generator=gen)
    vr = v.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model.energy(vr, h).sum(), vr)
    torch.testing.assert_close(model.conditional_grad(h)(v), expected)
    vr = v.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model.free_energy(vr).sum(), vr)
    torch.testing.assert_close(model.free_energy_grad(v), expected)


def test_grbm_parameter_gradients_match_reference_closed_forms():
    """Autograd of the surrogate loss gives Liao et al.'s closed-form parameter gradients."""
    model = tiny_grbm(3, 2, seed=7)
    gen = torch.Generator().manual_seed(2)
    v = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    h = torch.bernoulli(torch.full((5, 2), 0.5, dtype=torch.float64), generator=gen)
    model.zero_grad()
    model.energy(v, h).mean().backward()
    var = model.variance().detach()
    W, mu = model.weight.detach(), model.mu.detach()
    torch.testing.assert_close(model.weight.grad, -torch.einsum("bi,bj->ij", v / var, h) / 5)
    torch.testing.assert_close(model.bias.grad, -h.mean(0))
    torch.testing.assert_close(model.mu.grad, ((mu - v) / var).mean(0))
    expected_log_var = (-0.5 * (v - mu) ** 2 / var + (v / var) * (h @ W.T)).mean(0)
    torch.testing.assert_close(model.log_var.grad, expected_log_var)


@torch.no_grad()
def test_grbm_exact_visible_samples_have_the_conditional_moments():
    model = tiny_grbm(2, 3, seed=2)
    h = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64).expand(200_000, -1)
    v = model.sample_visible(h, torch.Generator().manual_seed(0))
    expected_mean = model.visible_mean(h[:1])[0]
    std = model.variance().sqrt()
    se = std / math.sqrt(len(v))
    assert torch.all((v.mean(0) - expected_mean).abs() < 5 * se)
    np.testing.assert_allclose(v.var(0).numpy(), model.variance().detach().numpy(), rtol=0.02)



@pytest.mark.parametrize("tau", [1e-3, 0.3, 1.0])
def test_nnefh_natural_parameters_are_the_posterior_logits_at_the_models_temperature(tau):
    """``natural_parameters`` (what ``features="eta"`` returns) is (W U + b) / tau, and the
    posterior at the model's temperature is its sigmoid."""
    model = tiny_nnefh(3, 4, 5, seed=3)
    model.temperature = tau
    x = torch.randn(6, 3, dtype=torch.float64)
    eta = model.statistics(x) @ model.weight.T + model.bias
    torch.testing.assert_close(model.natural_parameters(x), eta / tau)
    torch.testing.assert_close(model.posterior_probabilities(x), torch.sigmoid(eta / tau))
    model = tiny_nnefh(3, 4, 5, seed=3, coupling="centred")
    model.temperature = tau
    eta = (model.statistics(x) - model.statistics_mean) @ model.weight.T
    torch.testing.assert_close(model.natural_parameters(x), eta / tau)
    torch.testing.assert_close(model.posterior_probabilities(x), torch.sigmoid(eta / tau))
