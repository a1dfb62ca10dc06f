"""Fitted models generate: samples match the data's distribution, and more sampling helps."""

import numpy as np
import pytest

from skefh import NNEFH
from skefh.datasets import load_digits

CENTRES = np.array([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])


def _mixture(n, seed):
    rng = np.random.default_rng(seed)
    return CENTRES[rng.integers(4, size=n)] + 0.35 * rng.normal(size=(n, 2))


def _occupancy(samples):
    """Fraction of samples within distance 1 of each centre, and within 1 of any."""
    d2 = ((samples[:, None, :] - CENTRES[None]) ** 2).sum(-1)
    near = d2.min(1) < 1.0
    return np.bincount(d2.argmin(1)[near], minlength=4) / len(samples), near.mean()


MOG_SETTINGS = dict(n_components=16, n_statistics=32, image_shape=None, gibbs_steps=5, langevin_steps=10,
                    step_size=0.05, temperature=0.1, batch_size=100, learning_rate=1e-3, data_noise=0.0,
                    energy_l2=0.0, replay_buffer=0, log_partition=None, random_state=0, device="cpu")


def test_an_mlp_nnefh_fitted_on_a_gaussian_mixture_samples_its_modes():
    """Four well-separated modes: the samples' moments and mode occupancies match the data's;
    the same model untrained puts its samples at none of the modes."""
    X = _mixture(2000, seed=0)
    fitted = NNEFH(max_iter=300, **MOG_SETTINGS).fit(X)
    untrained = NNEFH(max_iter=0, **MOG_SETTINGS).fit(X)
    samples = fitted.sample(2000, gibbs_steps=20, random_state=1)
    np.testing.assert_allclose(samples.mean(0), X.mean(0), atol=0.25)
    np.testing.assert_allclose(samples.std(0), X.std(0), rtol=0.1)
    per_mode, near = _occupancy(samples)
    assert near > 0.85
    assert np.all(np.abs(per_mode / near - 0.25) < 0.08), per_mode
    _, untrained_near = _occupancy(untrained.sample(2000, gibbs_steps=20, random_state=1))
    assert untrained_near < 0.3


def test_a_larger_sampling_budget_brings_chains_closer_to_the_model():
    """Chains from noise descend the free energy: ten times the training budget ends lower."""
    X = load_digits().X_train
    est = NNEFH(n_components=64, n_statistics=64, n_filters=8, attention="last", downsample="stride",
                gibbs_steps=2, langevin_steps=5, max_iter=100, log_partition=None, random_state=0,
                device="cpu").fit(X)
    short = est.free_energy(est.sample(200, random_state=2))
    longer = est.free_energy(est.sample(200, gibbs_steps=10, langevin_steps=10, random_state=2))
    assert longer.mean() < short.mean() - 3 * np.hypot(short.std(), longer.std()) / np.sqrt(200)


@pytest.mark.parametrize("option, value, message", [
    ("gibbs_steps", 0, "gibbs_steps must be a positive integer"),
    ("langevin_steps", 2.5, "langevin_steps must be a positive integer"),
    ("step_size", -1.0, "step_size must be a positive number"),
    ("temperature", 0, "temperature must be a positive number"),
    ("init", "data", "init must be 'auto', 'noise' or 'buffer'"),
])
def test_sample_rejects_bad_budgets(option, value, message):
    est = NNEFH(max_iter=0, **MOG_SETTINGS).fit(_mixture(100, seed=0))
    with pytest.raises(ValueError, match=message):
        est.sample(4, **{option: value})


def test_sampling_from_the_buffer_needs_a_buffer_and_starts_there():
    X = _mixture(200, seed=0)
    est = NNEFH(max_iter=0, **MOG_SETTINGS).fit(X)
    with pytest.raises(ValueError, match="replay buffer"):
        est.sample(4, init="buffer")
    with_buffer = NNEFH(max_iter=3, **{**MOG_SETTINGS, "replay_buffer": 50}).fit(X)
    chains = with_buffer.sample_chains(10, init="buffer", random_state=0)
    stored = with_buffer._trainer_state["sampler"]["replay_buffer"]["states"].numpy()
    starts = with_buffer.range_map_.to_data(stored.astype(np.float64), np.float64)
    # Every chain starts at a stored state (in data units), ten different ones.
    distances = ((chains[:, 0, None, :] - starts[None]) ** 2).sum(-1).min(1)
    assert np.all(distances < 1e-8) and len(np.unique(chains[:, 0, 0])) == 10


def test_auto_init_starts_from_the_buffer_when_there_is_one_and_from_noise_otherwise():
    X = _mixture(200, seed=0)
    without = NNEFH(max_iter=3, **MOG_SETTINGS).fit(X)
    np.testing.assert_array_equal(without.sample(8, random_state=0), without.sample(8, init="noise", random_state=0))
    with_buffer = NNEFH(max_iter=3, **{**MOG_SETTINGS, "replay_buffer": 50}).fit(X)
    auto = with_buffer.sample(8, random_state=0)
    np.testing.assert_array_equal(auto, with_buffer.sample(8, init="buffer", random_state=0))
    assert not np.allclose(auto, with_buffer.sample(8, init="noise", random_state=0))
