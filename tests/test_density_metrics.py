"""skefh.metrics.density: grid quadrature, MMD tests, and sample-versus-score agreement, checked
against distributions whose answers are known."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from skefh.metrics import grid_log_partition, mmd, mmd_test, sample_score_agreement

COV = np.array([[1.0, 0.6], [0.6, 0.8]])
MEAN = np.array([0.5, -1.0])


def unnormalised_gaussian(x, scale=3.0):
    """log of ``scale`` times the N(MEAN, COV) density minus its normalising constant:
    exp(-0.5 (x - m)^T C^-1 (x - m)) * scale, whose integral is scale * 2 pi sqrt(det C)."""
    d = x - MEAN
    return -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(COV), d) + math.log(scale)


def test_grid_log_partition_of_a_gaussian_is_the_closed_form():
    grid = grid_log_partition(unnormalised_gaussian, MEAN - 7, MEAN + 7, n=400)
    exact = math.log(3.0 * 2 * math.pi * math.sqrt(np.linalg.det(COV)))
    assert abs(grid.log_partition - exact) < 1e-3
    assert grid.probabilities.sum() == pytest.approx(1.0)
    assert grid.border_mass() < 1e-6  # the box holds the mass
    x = np.array([[0.0, 0.0], [1.0, -2.0]])
    np.testing.assert_allclose(grid.log_density(x), multivariate_normal(MEAN, COV).logpdf(x), atol=1e-3)


def test_a_box_that_cuts_off_mass_shows_it_in_the_border():
    grid = grid_log_partition(unnormalised_gaussian, MEAN - 1, MEAN + 1, n=100)
    assert grid.border_mass() > 0.01
    assert grid.log_partition < math.log(3.0 * 2 * math.pi * math.sqrt(np.linalg.det(COV))) - 0.5


def test_grid_samples_have_the_gaussians_mean_and_covariance():
    grid = grid_log_partition(unnormalised_gaussian, MEAN - 7, MEAN + 7, n=300)
    draws = grid.sample(40_000, random_state=0)
    assert grid.inside(draws).all()
    # Standard errors: ~0.005 for the means, ~0.007 for the covariances.
    np.testing.assert_allclose(draws.mean(0), MEAN, atol=0.025)
    np.testing.assert_allclose(np.cov(draws.T), COV, atol=0.04)
    # Jitter within cells: draws are not restricted to the cell centres.
    assert len(np.unique(draws[:, 0])) == len(draws)


def test_grid_rejects_nan_and_boxes_without_mass():
    with pytest.raises(ValueError, match="NaN"):
        grid_log_partition(lambda x: np.full(len(x), np.nan), 0, 1, n=10)
    with pytest.raises(ValueError, match="misses the mass"):
        grid_log_partition(lambda x: np.full(len(x), -np.inf), 0, 1, n=10)
    with pytest.raises(ValueError, match="low < high"):
        grid_log_partition(unnormalised_gaussian, 1, 0, n=10)


def test_mmd_test_rejects_shifted_gaussians_and_not_identical_ones():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    shifted = mmd_test(X, rng.normal(size=(300, 2)) + [0.5, 0.0], random_state=0)
    same = mmd_test(X, rng.normal(size=(300, 2)), random_state=0)
    assert shifted.p_value < 0.01 and shifted.statistic > 0.01
    assert same.p_value > 0.05 and abs(same.statistic) < 0.01
    assert same.n_permutations == 200 and same.bandwidth > 0


def test_mmd_is_the_unbiased_estimate_written_out():
    rng = np.random.default_rng(1)
    X, Y, bw = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 1, 0.9

    def k(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * bw**2))

    kxx, kyy = k(X, X), k(Y, Y)
    expected = ((kxx.sum() - 7) / 42 + (kyy.sum() - 5) / 20 - 2 * k(X, Y).mean())
    assert mmd(X, Y, bandwidth=bw) == pytest.approx(expected, rel=1e-12)
    Z = np.concatenate([X, Y])
    d = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))[np.triu_indices(12, 1)]
    assert mmd(X, Y) == pytest.approx(mmd(X, Y, bandwidth=np.median(d)), rel=1e-10)


samples = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).normal(size=(np.random.default_rng(seed).integers(3, 40), 2)))


@settings(max_examples=30, deadline=None)
@given(samples, samples, st.floats(-5, 5), st.floats(0.2, 5))
def test_mmd_is_symmetric_and_invariant_to_moving_both_samples(X, Y, shift, scale):
    assert mmd(X, Y) == pytest.approx(mmd(Y, X), rel=1e-9, abs=1e-12)
    # The median bandwidth follows the data: translating and scaling both samples changes nothing.
    assert mmd(scale * X + shift, scale * Y + shift) == pytest.approx(mmd(X, Y), rel=1e-6, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(samples)
def test_mmd_of_a_sample_with_itself_is_within_its_bias_of_zero(X):
    # Unbiased MMD^2 of X against X is 2S/(m^2 (m-1)) - 2/m with S the off-diagonal kernel sum.
    assert -2 / len(X) - 1e-12 <= mmd(X, X) <= 1e-12


@settings(max_examples=25, deadline=None)
@given(st.floats(-50, 50), st.floats(0.3, 3.0), st.integers(8, 40))
def test_grid_log_partition_shifts_by_the_constant_added_to_the_log_density(c, width, n):
    def f(x):
        return -0.5 * ((x / width) ** 2).sum(1) + np.sin(x[:, 0])

    base = grid_log_partition(f, -4, 4, n=n)
    moved = grid_log_partition(lambda x: f(x) + c, -4, 4, n=n)
    assert moved.log_partition == pytest.approx(base.log_partition + c, abs=1e-9)
    np.testing.assert_allclose(moved.probabilities, base.probabilities, atol=1e-12)
    np.testing.assert_allclose(moved.log_density(moved.centres[:5]), base.log_density(base.centres[:5]), atol=1e-9)


class FakeMixture:
    """A 2-D Gaussian mixture that scores its density and samples ``width`` times wider
    (``width=1``: an honest model; ``width=1.8``: the bug issue 30 describes)."""

    means = np.array([[-2.0, 0.0], [1.5, 1.0], [1.0, -1.5]])
    weights = np.array([0.5, 0.3, 0.2])
    scale = 0.5

    def __init__(self, width=1.0, log_z_error=0.0):
        self.width, self.log_z_error = width, log_z_error

    def score_samples(self, X):
        parts = [np.log(w) + multivariate_normal(m, self.scale**2 * np.eye(2)).logpdf(X)
                 for m, w in zip(self.means, self.weights)]
        return logsumexp(parts, axis=0) - self.log_z_error

    def sample(self, n_samples, random_state=None):
        rng = np.random.default_rng(random_state)
        k = rng.choice(3, size=n_samples, p=self.weights)
        centre = self.weights @ self.means  # widen about the mean, components included
        x = self.means[k] + self.scale * rng.normal(size=(n_samples, 2))
        return centre + self.width * (x - centre)


def test_an_honest_model_agrees_with_itself():
    report = sample_score_agreement(FakeMixture(), -6, 6, n_samples=800, n_grid=200, random_state=0)
    assert report.agrees()
    assert report.p_value > 0.05
    assert abs(report.log_density_gap) < 3 * report.log_density_gap_se + 0.05
    assert abs(report.log_mass) < 1e-3  # normalised, and all the mass is in the box
    assert report.border_mass < 1e-4 and report.samples_outside == 0.0
    assert report.log_partition_estimator is None  # the fake stores no log Z


def test_a_model_that_samples_wider_than_it_scores_is_caught():
    report = sample_score_agreement(FakeMixture(width=1.8), -6, 6, n_samples=800, n_grid=200, random_state=0)
    assert not report.agrees()
    assert report.p_value < 0.01
    assert report.log_density_gap < -1.0  # the samples sit where the scored density is low


def test_agreement_reads_the_estimators_log_z_error_from_the_mass():
    fake = FakeMixture(log_z_error=0.7)  # score_samples = log p - 0.7: log Z overestimated by 0.7
    fake.log_partition_ = 2.0
    report = sample_score_agreement(fake, -6, 6, n_samples=300, n_grid=150, n_permutations=20, random_state=0)
    assert report.log_mass == pytest.approx(-0.7, abs=1e-3)
    assert report.log_partition_grid == pytest.approx(1.3, abs=1e-3)
    assert report.agrees()  # a wrong constant does not change the shape
