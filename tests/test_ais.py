"""Annealed importance sampling against exact log-partition functions."""

import math

import pytest
import torch
from conftest import far_mode_nnefh, quadratic_base_path, tiny_grbm, tiny_nnefh
from torch import nn

from skefh.nn import EBMEnergy
from skefh.samplers import (
    BoxPath,
    GaussianMixtureBasePath,
    GRBMPath,
    annealed_importance_sampling,
    grbm_exact_log_partition,
    linear_schedule,
    reverse_annealed_importance_sampling,
)


def _quadrature_log_z(free_energy, low, high, n=400_001, dim=1):
    """log of the integral of exp(-F) on a grid (1-D or 2-D)."""
    if dim == 1:
        grid = torch.linspace(low, high, n, dtype=torch.float64).unsqueeze(1)
        cell = (high - low) / (n - 1)
    else:
        side = torch.linspace(low, high, n, dtype=torch.float64)
        grid = torch.cartesian_prod(side, side)
        cell = ((high - low) / (n - 1)) ** 2
    with torch.no_grad():
        return float(torch.logsumexp(-free_energy(grid), 0) + math.log(cell))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grbm_exact_log_partition_matches_quadrature(seed):
    model = tiny_grbm(1, 4, seed=seed)
    assert grbm_exact_log_partition(model) == pytest.approx(
        _quadrature_log_z(model.free_energy, -40, 40), abs=1e-6
    )
    model2 = tiny_grbm(2, 3, seed=seed)
    assert grbm_exact_log_partition(model2) == pytest.approx(
        _quadrature_log_z(model2.free_energy, -25, 25, n=1501, dim=2), abs=1e-4
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_grbm_ais_matches_the_exact_log_partition(seed):
    model = tiny_grbm(4, 5, seed=seed)
    exact = grbm_exact_log_partition(model)
    result = annealed_importance_sampling(
        GRBMPath(model), n_chains=256, n_steps=1000, generator=torch.Generator().manual_seed(seed)
    )
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.05
    assert result.log_z_std < 0.5 and 1 <= result.ess <= 256


@pytest.mark.parametrize("dim, seed, tau", [(1, 0, 1.0), (1, 5, 1.0), (2, 1, 1.0), (2, 7, 1.0),
                                            (1, 3, 0.05), (2, 4, 0.2)])
def test_nnefh_ais_matches_quadrature(dim, seed, tau):
    """log of the integral of exp(-F_tau(x) / tau), tau = 1 the paper's nominal density."""
    model = tiny_nnefh(dim, 4, 5, seed=seed)
    model.temperature = tau
    exact = _quadrature_log_z(lambda x: model.free_energy(x) / tau, -15, 15,
                              n=400_001 if dim == 1 else 1501, dim=dim)
    path = quadratic_base_path(model)
    result = annealed_importance_sampling(path, 256, 400, generator=torch.Generator().manual_seed(seed))
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.02
    assert 0.2 < result.acceptance < 0.95


@pytest.mark.parametrize("dim, seed, tau", [(1, 0, 1.0), (2, 7, 1.0), (2, 4, 0.2)])
def test_nnefh_ais_from_a_gaussian_mixture_matches_quadrature(dim, seed, tau):
    model = tiny_nnefh(dim, 4, 5, seed=seed)
    model.temperature = tau
    exact = _quadrature_log_z(lambda x: model.free_energy(x) / tau, -15, 15,
                              n=400_001 if dim == 1 else 1501, dim=dim)
    gen = torch.Generator().manual_seed(seed)
    mu = model.mu.detach()
    means = torch.stack([mu, mu + torch.randn(dim, generator=gen, dtype=mu.dtype)])
    variances = torch.stack([torch.full_like(mu, tau / 2), torch.full_like(mu, 0.8)])
    path = GaussianMixtureBasePath(model, means, variances)
    result = annealed_importance_sampling(path, 256, 400, generator=gen)
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.02
    assert 0.2 < result.acceptance < 0.95


@pytest.mark.parametrize("dim, seed, tau", [(1, 0, 1.0), (2, 7, 1.0), (2, 4, 0.2)])
def test_nnefh_ais_on_a_box_matches_quadrature_on_the_box(dim, seed, tau):
    """The density restricted to a box that cuts through its mass: truncated components start
    the chains inside, proposals outside are rejected, and log Z is the box's integral."""
    model = tiny_nnefh(dim, 4, 5, seed=seed)
    model.temperature = tau
    mu = model.mu.detach()
    low, high = mu - 0.3, mu + 1.2  # off centre: part of the mass lies outside on each side
    n = 400_001 if dim == 1 else 1501
    side = [torch.linspace(float(low[i]), float(high[i]), n, dtype=torch.float64) for i in range(dim)]
    grid = side[0].unsqueeze(1) if dim == 1 else torch.cartesian_prod(*side)
    cell = math.prod(float(high[i] - low[i]) / (n - 1) for i in range(dim))
    with torch.no_grad():
        exact = float(torch.logsumexp(-model.free_energy(grid) / tau, 0) + math.log(cell))
    gen = torch.Generator().manual_seed(seed)
    means = torch.stack([mu, mu + torch.randn(dim, generator=gen, dtype=mu.dtype)])
    variances = torch.stack([torch.full_like(mu, tau / 2), torch.full_like(mu, 0.8)])
    path = GaussianMixtureBasePath(model, means, variances, bounds=(low, high))
    assert bool(path.inside(path.sample_base(1000, gen)).all())
    with torch.no_grad():  # the truncated base is normalised on the box
        assert float(torch.logsumexp(path._log_base(grid), 0)) + math.log(cell) == pytest.approx(0.0, abs=3e-3)
    result = annealed_importance_sampling(path, 256, 400, generator=gen)
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.02
    unrestricted = _quadrature_log_z(lambda x: model.free_energy(x) / tau, -15, 15, n=n, dim=dim)
    assert unrestricted > exact + 0.1  # the box does cut off mass: the test can tell the two apart


def test_a_mode_far_from_mu_is_missed_from_the_quadratic_base_and_found_from_a_mixture():
    model, w, exact = far_mode_nnefh()
    gen = torch.Generator().manual_seed(0)
    from_quadratic = annealed_importance_sampling(quadratic_base_path(model), 64, 500, generator=gen)
    # Every chain stays near mu: the weights agree, and the estimate is confidently 10 nats low.
    assert from_quadratic.log_z < exact - 9.0 and from_quadratic.ess > 60
    # A component near the far mode (off centre, wider than the mode) starts chains there.
    offset = 0.5 * torch.randn(w.shape, generator=gen, dtype=w.dtype)
    means = torch.stack([model.mu.detach(), w / 2 + offset])
    variances = torch.stack([torch.full_like(w, 0.5), torch.full_like(w, 1.0)])
    result = annealed_importance_sampling(GaussianMixtureBasePath(model, means, variances), 64, 500, generator=gen)
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.05
    assert result.ess > 10



def test_kept_states_are_the_chains_ends_in_the_order_of_their_weights():
    """The far-mode model's mass is e^10 times at w / 2: chains from a base split between mu and
    that mode end on both, and the weights, paired with the kept states, give the target's mean
    (self-normalised importance sampling). States out of step with their weights would put half
    of it at mu."""
    model, w, _ = far_mode_nnefh()
    means = torch.stack([model.mu.detach(), w / 2])
    variances = torch.stack([torch.full_like(w, 0.5), torch.full_like(w, 0.5)])
    path = GaussianMixtureBasePath(model, means, variances)
    run = annealed_importance_sampling(path, 64, 100, generator=torch.Generator().manual_seed(0), keep_states=True)
    assert run.states.shape == (64, w.numel())
    near_far_mode = (run.states - w / 2).norm(dim=1) < (run.states - model.mu.detach()).norm(dim=1)
    assert 10 < int(near_far_mode.sum()) < 54  # both modes hold chains
    shares = torch.softmax(run.log_weights, 0)
    p_far = torch.sigmoid(model.bias.detach()[0] + w.square().sum() / 4)
    assert torch.allclose(shares @ run.states, model.mu.detach() + p_far * w / 2, atol=0.3)
    # Keeping the states changes nothing else; by default none are kept.
    plain = annealed_importance_sampling(GaussianMixtureBasePath(model, means, variances), 64, 100,
                                         generator=torch.Generator().manual_seed(0))
    assert plain.states is None and torch.equal(plain.log_weights, run.log_weights)


def test_reverse_ais_keeps_its_chains_ends_at_the_base_on_request():
    model, w, _ = far_mode_nnefh()
    start = _far_mode_exact_samples(model, w, 16, torch.Generator().manual_seed(1))
    kept = reverse_annealed_importance_sampling(quadratic_base_path(model), start, 50,
                                                generator=torch.Generator().manual_seed(2), keep_states=True)
    plain = reverse_annealed_importance_sampling(quadratic_base_path(model), start, 50,
                                                 generator=torch.Generator().manual_seed(2))
    assert kept.states.shape == start.shape and plain.states is None
    assert torch.equal(kept.log_weights, plain.log_weights)
    # At beta = 0 the chains sample N(mu, I / 2): their ends lie about sqrt(D / 2) from mu, not at w / 2.
    assert float((kept.states - model.mu.detach()).norm(dim=1).mean()) < 0.5 * float(w.norm() / 2)


class _Quadratic(nn.Module):
    def forward(self, x):
        return x.flatten(1) ** 2


@pytest.mark.parametrize("soft", [False, True])
def test_ebm_box_ais_matches_quadrature(soft):
    """Hard box: exp(-E / tau) on [-1, 1]. Soft box: the energy carries the containment term
    d(x)^2 (d the distance to the box), and the density exp(-E / tau) is positive everywhere."""
    torch.manual_seed(0)
    tau = 0.4  # density exp(-2.5 (x^2 + 0.3)) on the box
    model = EBMEnergy(_Quadratic(), (1,), 1, temperature=tau).double()
    with torch.no_grad():
        model.readout.fill_(1.0)
        model.offset.fill_(0.3)
    low, high = torch.tensor([-1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    if soft:
        model.set_support(low, high)
        exact = _quadrature_log_z(lambda x: model.energy(x) / tau, -10, 10)
        assert float(model.containment(torch.tensor([[2.5]], dtype=torch.float64))) == pytest.approx(1.5**2)
    else:
        exact = _quadrature_log_z(lambda x: model.energy(x) / tau, -1, 1)
    path = BoxPath(model, low, high, step_size=0.1, tail_variance=tau / 2 if soft else None)
    result = annealed_importance_sampling(path, 512, 300, generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.02


def test_the_soft_box_base_is_sampled_exactly():
    """Samples of the soft-box base against its closed-form density (a histogram) and mass."""
    model = EBMEnergy(_Quadratic(), (2,), 2).double()
    low = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    high = torch.tensor([1.0, 3.0], dtype=torch.float64)
    path = BoxPath(model, low, high, tail_variance=torch.tensor([0.1, 0.4], dtype=torch.float64))
    x = path.sample_base(200_000, torch.Generator().manual_seed(0))
    # log Z_0 is the integral of the unnormalised base, coordinate by coordinate, on a grid...
    grid = torch.linspace(-6, 8, 140_001, dtype=torch.float64)
    pairs = torch.stack([grid, grid], 1)
    outside = pairs - torch.maximum(torch.minimum(pairs, high), low)
    per_coordinate = torch.exp(-outside.square() / (2 * path.tail_variance)).sum(0) * (grid[1] - grid[0])
    torch.testing.assert_close(per_coordinate.log().sum(), torch.tensor(path.log_z0, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    # ...and the samples fall outside the box as often as the tails' share of the mass says.
    width = high - low
    tail_share = 1 - width / (width + torch.sqrt(2 * math.pi * path.tail_variance))
    below, above = (x < low).double().mean(0), (x > high).double().mean(0)
    torch.testing.assert_close(below, tail_share / 2, atol=4e-3, rtol=0)
    torch.testing.assert_close(above, tail_share / 2, atol=4e-3, rtol=0)
    assert path.inside(x) is None
    # The base's gradient (for the MALA moves) against autograd, inside and outside the box.
    points = torch.tensor([[-2.0, 1.0], [0.5, 4.0], [1.5, -0.5]], dtype=torch.float64, requires_grad=True)
    log_q, grad = path._base_and_grad(points.detach())
    (autograd,) = torch.autograd.grad(path._base_and_grad(points)[0].sum(), points)
    torch.testing.assert_close(grad, autograd)


def test_ais_with_no_annealing_needed_is_exact():
    """Target equal to base (all weights 1): the estimate is log Z_0 with zero error."""
    model = tiny_nnefh(2, 3, 4, seed=0)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.fill_(-50.0)  # softplus(eta) ~ 0: F(x) = ||x - mu||^2
    result = annealed_importance_sampling(quadratic_base_path(model), 32, 10,
                                          generator=torch.Generator().manual_seed(0))
    assert result.log_z == pytest.approx(math.log(math.pi), abs=1e-12)
    assert result.log_z_std == pytest.approx(0.0, abs=1e-12)
    assert result.ess == pytest.approx(32.0)


def test_the_linear_schedule_runs_from_0_to_1():
    betas = linear_schedule(100)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and len(betas) == 101
    assert torch.all(betas[1:] > betas[:-1])
    with pytest.raises(ValueError):
        linear_schedule(0)


@pytest.mark.parametrize("betas", [[0.0, 0.5], [0.1, 1.0], [0.0, 0.7, 0.6, 1.0], [1.0]])
def test_a_custom_schedule_must_run_from_0_to_1(betas):
    model = tiny_nnefh(1, 2, 4)
    with pytest.raises(ValueError, match="from 0 to 1"):
        annealed_importance_sampling(quadratic_base_path(model), 4, betas=torch.tensor(betas))


def test_default_schedule_is_unbiased_on_a_hard_grbm():
    """Large weights make the path hard; the default schedule must still land near the exact
    log Z (a schedule crowded near beta = 0 was about 1 nat low here at 1,000 steps)."""
    from skefh.nn import GRBMEnergy

    torch.manual_seed(0)
    model = GRBMEnergy(30, 12, init_var=1.0)
    with torch.no_grad():
        model.weight.mul_(8)
        model.bias.normal_()
    exact = grbm_exact_log_partition(model)
    errors = [annealed_importance_sampling(GRBMPath(model), 64, 1000,
                                           generator=torch.Generator().manual_seed(seed)).log_z - exact
              for seed in range(2)]
    assert max(abs(e) for e in errors) < 0.5, errors


def _far_mode_exact_samples(model, w, n, generator):
    """Exact draws from far_mode_nnefh's density at tau = 1: a two-component Gaussian mixture,
    N(mu, I / 2) (z = 0) and N(mu + w / 2, I / 2) (z = 1, weight sigmoid(b + ||w||^2 / 4))."""
    p_far = torch.sigmoid(model.bias.detach()[0] + w.square().sum() / 4)
    far = torch.rand(n, generator=generator, dtype=w.dtype) < p_far
    mean = model.mu.detach() + far[:, None] * (w / 2)
    return mean + math.sqrt(0.5) * torch.randn((n, w.numel()), generator=generator, dtype=w.dtype)


def test_reverse_ais_from_exact_samples_brackets_a_log_z_that_forward_ais_misses():
    """BDMC: forward AIS from the quadratic base misses the far mode and lands 10 nats low with
    agreeing weights; reverse AIS from exact samples of the target lands at or above log Z, so
    the bracket's width exposes the failure that the effective sample size hides."""
    model, w, exact = far_mode_nnefh()
    gen = torch.Generator().manual_seed(0)
    forward = annealed_importance_sampling(quadratic_base_path(model), 32, 200, generator=gen)
    start = _far_mode_exact_samples(model, w, 32, gen)
    reverse = reverse_annealed_importance_sampling(quadratic_base_path(model), start, 200, generator=gen)
    assert forward.log_z < exact - 9.0 and forward.ess > 30
    assert reverse.log_z > exact - 3 * reverse.log_z_std - 0.05
    assert reverse.log_z - forward.log_z > 9.0


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_and_reverse_ais_bracket_the_exact_grbm_log_partition(seed):
    """On a GRBM small enough to enumerate, started from exact samples (long Gibbs chains at
    beta = 1), the two estimates bracket the exact value and agree with it closely."""
    model = tiny_grbm(4, 5, seed=seed)
    exact = grbm_exact_log_partition(model)
    gen = torch.Generator().manual_seed(seed)
    path = GRBMPath(model)
    with torch.no_grad():
        start = path.transition(path.sample_base(128, gen), 1.0, gen)
        for _ in range(200):
            start = path.transition(start, 1.0, gen)
    forward = annealed_importance_sampling(path, 128, 300, generator=gen)
    reverse = reverse_annealed_importance_sampling(path, start, 300, generator=gen)
    assert forward.log_z - 3 * forward.log_z_std - 0.05 < exact < reverse.log_z + 3 * reverse.log_z_std + 0.05
    assert reverse.log_z - forward.log_z < 0.5


def test_reverse_ais_needs_states():
    model, _, _ = far_mode_nnefh()
    with pytest.raises(ValueError, match="x_start"):
        reverse_annealed_importance_sampling(quadratic_base_path(model), torch.zeros(16), 10)


def _hard_grbm(n_visible=30, n_hidden=12, weight_scale=8.0):
    """A GRBM whose large weights make the annealing path hard (modes far from mu)."""
    from skefh.nn import GRBMEnergy

    torch.manual_seed(0)
    model = GRBMEnergy(n_visible, n_hidden, init_var=1.0)
    with torch.no_grad():
        model.weight.mul_(weight_scale)
        model.bias.normal_()
    return model.double()


def _long_gibbs_samples(path, n, sweeps, generator):
    with torch.no_grad():
        x = path.sample_base(n, generator)
        for _ in range(sweeps):
            x = path.transition(x, 1.0, generator)
    return x


@pytest.mark.parametrize("seed", [0, 1])
def test_grbm_ais_from_a_fitted_base_matches_the_exact_log_partition(seed):
    """A base Gaussian away from the model's mu (any normalised one is valid) gives the same log Z."""
    model = tiny_grbm(4, 5, seed=seed)
    exact = grbm_exact_log_partition(model)
    gen = torch.Generator().manual_seed(seed)
    samples = _long_gibbs_samples(GRBMPath(model), 2000, 300, gen)
    path = GRBMPath(model, base_mean=samples.mean(0), base_variance=samples.var(0))
    result = annealed_importance_sampling(path, 256, 1000, generator=gen)
    assert abs(result.log_z - exact) < 3 * result.log_z_std + 0.02


def test_a_base_fitted_to_the_model_samples_makes_a_hard_path_short():
    """On the hard GRBM, 100 intermediate distributions from the model's own quadratic term
    leave few effective chains and errors of nats; from a base at its samples' moments the
    estimate lands within 0.3 nats with most chains counting."""
    model = _hard_grbm()
    exact = grbm_exact_log_partition(model)
    samples = _long_gibbs_samples(GRBMPath(model), 2000, 300, torch.Generator().manual_seed(0))
    fitted = GRBMPath(model, base_mean=samples.mean(0),
                      base_variance=torch.maximum(samples.var(0), model.variance().detach()))
    own, data = [], []
    for seed in range(3):
        for path, results in ((GRBMPath(model), own), (fitted, data)):
            results.append(annealed_importance_sampling(path, 64, 100, generator=torch.Generator().manual_seed(seed)))
    assert max(abs(r.log_z - exact) for r in data) < 0.3
    assert min(r.ess for r in data) > 20
    assert max(r.ess for r in own) < 12 and max(abs(r.log_z - exact) for r in own) > 0.7


def test_the_grbm_base_needs_both_moments_of_the_right_shape():
    model = tiny_grbm(4, 5)
    with pytest.raises(ValueError, match="both"):
        GRBMPath(model, base_mean=torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        GRBMPath(model, base_mean=torch.zeros(3), base_variance=torch.ones(3))
    with pytest.raises(ValueError, match="positive"):
        GRBMPath(model, base_mean=torch.zeros(4), base_variance=torch.zeros(4))


def test_burn_in_brings_reverse_ais_from_poor_starts_to_an_upper_estimate():
    """Reverse AIS from one state that is not a sample of the model lands below log Z (no longer
    an upper estimate); moves of the model itself first (burn_in) restore it."""
    model = _hard_grbm(10, 8, weight_scale=3.0)
    exact = grbm_exact_log_partition(model)
    start = torch.zeros(64, 10, dtype=torch.float64)
    cold = reverse_annealed_importance_sampling(GRBMPath(model), start, 200, generator=torch.Generator().manual_seed(0))
    warm = reverse_annealed_importance_sampling(GRBMPath(model), start, 200, generator=torch.Generator().manual_seed(0),
                                                burn_in=200)
    assert cold.log_z < exact - 3 * cold.log_z_std
    assert warm.log_z > exact - 3 * warm.log_z_std - 0.02 and abs(warm.log_z - exact) < 0.3
    with pytest.raises(ValueError, match="burn_in"):
        reverse_annealed_importance_sampling(GRBMPath(model), start, 10, burn_in=-1)
