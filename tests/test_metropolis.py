"""Metropolis-adjusted Langevin: exact stationary laws at step sizes where the unadjusted chain is off."""

import math

import pytest
import torch
from conftest import tiny_nnefh
from test_samplers import _quadrature_cdf

from skefh.samplers import GibbsLangevinSettings, gibbs_langevin, langevin, metropolis_langevin


def _gaussian_energy(x):
    """E = ||x||^2 / 2 and its gradient."""
    return 0.5 * x.flatten(1).square().sum(1), x


@pytest.mark.parametrize("temperature, energy_scale", [(1.0, 1.0), (0.25, 2.0)])
def test_mala_samples_the_tempered_gaussian_at_a_step_where_ula_is_biased(temperature, energy_scale):
    """Target exp(-s E / T) = N(0, T / s). At this step the unadjusted chain's variance is off by
    more than 40 % (AR(1) algebra); the adjusted one must be within sampling error."""
    gen = torch.Generator().manual_seed(0)
    x0 = 3.0 * torch.randn(20_000, 2, dtype=torch.float64, generator=gen)
    eps = 0.8 / energy_scale
    target = temperature / energy_scale
    mala = metropolis_langevin(_gaussian_energy, x0, step_size=eps, n_steps=150, temperature=temperature,
                               energy_scale=energy_scale, generator=gen)
    ula = langevin(lambda x: x, x0, step_size=eps, n_steps=150, temperature=temperature,
                   energy_scale=energy_scale, generator=gen)
    # Relative standard error of a variance from 20,000 draws: sqrt(2 / n) = 1 %.
    torch.testing.assert_close(mala["x"].var(0), torch.full((2,), target, dtype=torch.float64), rtol=0.05, atol=0)
    assert float(ula["x"].var(0).min()) > 1.4 * target
    assert 0.5 < float(mala["acceptance"]) < 1.0


def test_mala_in_a_box_samples_the_restricted_density():
    """N(0, 1) restricted to [0, 10] is the half-normal, mean sqrt(2 / pi); no chain leaves the box."""
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(20_000, 1, dtype=torch.float64, generator=gen) * 3
    out = metropolis_langevin(_gaussian_energy, x0, step_size=0.5, n_steps=200, bounds=(0.0, 10.0), generator=gen)
    assert float(out["x"].min()) >= 0.0
    se = math.sqrt((1 - 2 / math.pi) / 20_000)
    assert abs(float(out["x"].mean()) - math.sqrt(2 / math.pi)) < 5 * se


def test_mala_in_a_box_with_mass_at_its_faces_keeps_moving_in_many_dimensions():
    """64 coordinates of N(0, 1) restricted to [-0.2, 2.5], chains started at the lower face:
    proposals that leave the box are reflected, so the chains move and reach the restricted law
    (each coordinate's mean and standard deviation); rejecting them would freeze the chains."""
    low, high = -0.2, 2.5
    pdf = lambda t: math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))  # noqa: E731
    mass = cdf(high) - cdf(low)
    mean = (pdf(low) - pdf(high)) / mass
    sd = math.sqrt(1 + (low * pdf(low) - high * pdf(high)) / mass - mean**2)
    gen = torch.Generator().manual_seed(2)
    x0 = torch.full((4000, 64), low, dtype=torch.float64)
    out = metropolis_langevin(_gaussian_energy, x0, step_size=0.3, n_steps=300, bounds=(low, high), generator=gen)
    x = out["x"]
    assert float(x.min()) >= low and float(x.max()) <= high
    assert float(out["acceptance"]) > 0.3
    # 4,000 x 64 draws (correlated along each chain only): means within 0.01, spreads within 2 %.
    assert abs(float(x.mean()) - mean) < 0.01
    assert abs(float(x.std()) / sd - 1) < 0.02


def test_mala_rejects_moves_to_non_finite_energies():
    def energy(x):  # NaN on the right half-line: no chain may go there
        e = 0.5 * x[:, 0].square()
        return torch.where(x[:, 0] > 0, torch.full_like(e, float("nan")), e), x

    gen = torch.Generator().manual_seed(2)
    out = metropolis_langevin(energy, -torch.ones(500, 1), step_size=1.0, n_steps=50, generator=gen)
    assert torch.isfinite(out["x"]).all() and float(out["x"].max()) <= 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_gibbs_mala_samples_the_nnefh_marginal_at_a_large_step(seed):
    """Latent draws and adjusted x-steps at tau target p_tau(x) exactly: at a step of 0.35 the
    chains' law passes a Kolmogorov-Smirnov test against quadrature of exp(-F_tau / tau), while
    the unadjusted chain at the same step fails it."""
    from scipy import stats

    tau = 0.5
    model = tiny_nnefh(1, 3, 4, seed=seed, weight_std=1.5 / tau)
    model.temperature = tau
    cdf = _quadrature_cdf(model.log_density)

    def chains(metropolis):
        settings = GibbsLangevinSettings(100, 5, 0.35, metropolis=metropolis)
        gen = torch.Generator().manual_seed(seed)
        x0 = torch.randn(4000, 1, dtype=torch.float64, generator=gen)
        return gibbs_langevin(model, x0, None, settings, generator=gen)

    adjusted = chains(True)
    assert stats.kstest(adjusted["x"][:, 0].numpy(), cdf).pvalue > 1e-3
    assert stats.kstest(chains(False)["x"][:, 0].numpy(), cdf).pvalue < 1e-6
    assert 0.3 < float(adjusted["acceptance"]) <= 1.0


@pytest.mark.parametrize("step_size, stalls", [(1e-3, False), (50.0, True)])
def test_fit_warns_when_its_training_chains_stall(step_size, stalls):
    """Chains that accept almost nothing are reported with the measured rate; healthy ones are not."""
    import warnings

    from sklearn.datasets import make_moons
    from sklearn.exceptions import ConvergenceWarning

    from skefh import NNEFH

    X = make_moons(200, noise=0.05, random_state=0)[0]
    est = NNEFH(n_components=8, n_statistics=8, metropolis=True, step_size=step_size, log_partition=None,
                max_iter=20, random_state=0, verbose=-1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    stalled = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    rates = [r["acceptance"] for r in est.history_]
    assert all(0.0 <= a <= 1.0 for a in rates)
    if stalls:
        assert len(stalled) == 1 and max(rates[-2:]) < 0.1
        assert f"{sum(rates[-2:]) / 2:.1%}" in str(stalled[0].message)
    else:
        assert not stalled and min(rates) > 0.5
