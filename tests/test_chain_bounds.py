"""``chain_bounds``: visible chains clipped into a box, in the sampler and in the estimators."""

import math
import pickle

import numpy as np
import pytest
import torch
from conftest import tiny_nnefh
from hypothesis import given, settings
from hypothesis import strategies as st

from skefh import EBM, NNEFH
from skefh.datasets import load_digits
from skefh.samplers import GibbsLangevinSettings, gibbs_langevin, langevin


def _truncated_normal_moments(low, high):
    """Mean and standard deviation of N(0, 1) restricted to [low, high]."""
    pdf = lambda t: math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))  # noqa: E731
    mass = cdf(high) - cdf(low)
    mean = (pdf(low) - pdf(high)) / mass
    var = 1 + (low * pdf(low) - high * pdf(high)) / mass - mean**2
    return mean, math.sqrt(var)


def test_bounded_langevin_approaches_the_gaussian_restricted_to_the_box_as_the_step_shrinks():
    """E(x) = x^2 / 2 at T = 1 in the box [-0.5, 1] (truncated normal: mean 0.207, sd 0.416).
    Projection puts an O(sqrt(step)) share of the mass on the faces, which widens the chain's law;
    with 20,000 chains that share and the error fall as the step shrinks, and the unbounded
    chains target N(0, 1) instead."""
    low, high = -0.5, 1.0
    mean, sd = _truncated_normal_moments(low, high)
    x0 = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    results = {}
    for step, n_steps in ((0.02, 500), (0.001, 4000)):  # about four relaxation times each
        x = langevin(lambda x: x, x0, step_size=step, n_steps=n_steps, temperature=1.0, bounds=(low, high),
                     generator=torch.Generator().manual_seed(1))["x"]
        assert x.min() >= low and x.max() <= high
        on_faces = ((x == low) | (x == high)).double().mean().item()
        results[step] = (abs(x.mean().item() - mean), abs(x.std().item() - sd), on_faces)
    (mean_err_big, sd_err_big, faces_big), (mean_err_small, sd_err_small, faces_small) = results[0.02], results[0.001]
    # Measured: sd errors 0.054 and 0.014, face shares 0.14 and 0.03, mean errors 0.013 and 0.010.
    assert mean_err_big < 0.025 and mean_err_small < 0.02
    assert sd_err_small < 0.02 and sd_err_small < sd_err_big / 2
    assert faces_small < 0.05 and faces_small < faces_big / 2
    free = langevin(lambda x: x, x0, step_size=0.02, n_steps=500, temperature=1.0,
                    generator=torch.Generator().manual_seed(1))["x"]
    assert abs(free.mean().item() - mean) > 0.15 and free.min() < low and free.max() > high


@settings(max_examples=30, deadline=None)
@given(low=st.floats(-3, 2), width=st.floats(0.01, 3), step=st.floats(1e-4, 2.0), seed=st.integers(0, 2**16))
def test_bounded_langevin_never_leaves_the_box(low, width, step, seed):
    high = low + width
    x0 = 5 * torch.randn(64, 3, generator=torch.Generator().manual_seed(seed))
    # A steep drift away from the box and large noise: every step tries to leave it.
    out = langevin(lambda x: -10 * x - 3, x0, step_size=step, n_steps=5, temperature=1.0, bounds=(low, high),
                   generator=torch.Generator().manual_seed(seed))["x"]
    assert out.min() >= low and out.max() <= high


def test_tensor_bounds_clip_each_coordinate_to_its_own_interval():
    low, high = torch.tensor([0.0, -2.0]), torch.tensor([1.0, -1.0])
    x0 = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])
    out = langevin(lambda x: torch.zeros_like(x), x0, step_size=0.1, n_steps=1, temperature=0.0,
                   bounds=(low, high))["x"]
    torch.testing.assert_close(out, torch.tensor([[1.0, -1.0], [0.0, -2.0]]))


def test_gibbs_langevin_clips_the_start_before_the_first_latent_draw():
    """A chain started outside the box runs exactly as one started at the clipped point: its
    first latent draw, which steers the Langevin steps, already sees a state in the box."""
    model = tiny_nnefh(3, 4, 5, seed=0)
    x0 = 5 * torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    settings = GibbsLangevinSettings(n_gibbs=2, n_langevin=3, step_size=0.1, temperature=0.5, bounds=(-1.0, 1.0))
    outside = gibbs_langevin(model, x0, None, settings, generator=torch.Generator().manual_seed(1))
    clipped = gibbs_langevin(model, x0.clamp(-1, 1), None, settings, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(outside["x"], clipped["x"])
    torch.testing.assert_close(outside["z"], clipped["z"])
    with pytest.raises(ValueError, match="bounds must be a pair"):
        GibbsLangevinSettings(n_gibbs=1, n_langevin=1, step_size=0.1, bounds=(0.0,))


TINY = dict(n_statistics=8, n_filters=4, attention=False, langevin_steps=3, step_size=0.05, max_iter=2,
            batch_size=16, replay_buffer=0, log_partition=None, random_state=0, device="cpu")


def _tiny(cls, **changes):
    params = {**TINY, **changes}
    if cls is NNEFH:
        params.update(n_components=8, gibbs_steps=2)
    return cls(**params)


@pytest.fixture(scope="module")
def digits():
    return load_digits().X_train[:64]


@pytest.mark.parametrize("cls", [NNEFH, EBM], ids=lambda c: c.__name__)
def test_image_chains_stay_in_the_pixel_range_by_default_and_leave_it_without_a_box(cls, digits):
    # Three steps from N(0, I) in working units (the data range is [-1, 1] there) do not bring
    # every chain into the data range, so unbounded samples fall outside it and clipped ones may not.
    low, high = digits.min(), digits.max()
    bounded = _tiny(cls).fit(digits).sample(200, random_state=0, gibbs_steps=1)
    assert bounded.min() >= low - 1e-6 and bounded.max() <= high + 1e-6
    free = _tiny(cls, chain_bounds=None).fit(digits).sample(200, random_state=0, gibbs_steps=1)
    assert free.min() < low - 0.1 * (high - low) and free.max() > high + 0.1 * (high - low)


@pytest.mark.parametrize("cls", [NNEFH, EBM], ids=lambda c: c.__name__)
def test_metropolis_chains_in_a_box_sample_and_score_the_density_on_that_box(cls, digits):
    """With Metropolis-adjusted chains the box is the scored density's support: "auto" is the
    pixel range widened by 5 % a side, samples stay in it, rows beyond it score -inf."""
    low, high = digits.min(), digits.max()
    margin = 0.05 * (high - low)
    est = _tiny(cls, metropolis=True, log_partition=None).fit(digits)
    samples = est.sample(200, random_state=0, gibbs_steps=1)
    assert samples.min() >= low - margin - 1e-6 and samples.max() <= high + margin + 1e-6
    rows = np.repeat(digits[:1], 3, axis=0)
    rows[1, 0], rows[2, 0] = low - 0.5 * margin, low - 2 * margin
    scores = est.score_samples(rows)
    assert np.all(np.isfinite(scores[:2])) and scores[2] == -np.inf
    unadjusted = _tiny(cls, log_partition=None).fit(digits)  # clipped chains: the unrestricted density
    assert np.all(np.isfinite(unadjusted.score_samples(rows)))


@pytest.mark.parametrize("cls", [NNEFH, EBM], ids=lambda c: c.__name__)
def test_a_box_in_data_units_bounds_every_sample_and_the_buffer(cls, digits):
    low, high = 0.3, 0.6  # a box well inside the data range [0, 1]
    est = _tiny(cls, chain_bounds=(low, high), replay_buffer=100).fit(digits)
    for init in ("noise", "buffer"):
        samples = est.sample(100, init=init, random_state=0)
        assert samples.min() >= low - 1e-6 and samples.max() <= high + 1e-6, init
    buffer = est._trainer_state["sampler"]["replay_buffer"]
    stored = buffer["states"].numpy().reshape(100, -1)[buffer["written"].numpy()]
    filled = est.range_map_.to_data(stored.astype(np.float64))
    assert filled.size and filled.min() >= low - 1e-6 and filled.max() <= high + 1e-6
    free = _tiny(cls, chain_bounds=None, replay_buffer=100).fit(digits).sample(100, init="noise", random_state=0)
    assert free.min() < low and free.max() > high  # so the box above is what kept the samples in


def test_tabular_data_is_unbounded_by_default_and_boxed_on_request():
    X = np.random.default_rng(0).normal(size=(64, 3))
    common = dict(n_components=4, n_statistics=4, image_shape=None, gibbs_steps=1, langevin_steps=2,
                  max_iter=2, replay_buffer=0, log_partition=None, random_state=0, device="cpu")
    free = NNEFH(**common).fit(X).sample(500, random_state=0)
    assert np.abs(free).max() > 2  # Gaussian tails: no box
    # A box on each feature needs per-feature working units (whitened rows are rotated).
    boxed = NNEFH(chain_bounds=(-0.5, 0.5), scaling="standardise", **common).fit(X).sample(500, random_state=0)
    assert boxed.min() >= -0.5 - 1e-5 and boxed.max() <= 0.5 + 1e-5
    # ... and it is that box, not a narrower one: chains clipped at the start span nearly all of it.
    assert boxed.min() < -0.4 and boxed.max() > 0.4


@pytest.mark.parametrize("bounds, message", [
    ((1.0, 1.0), "low < high"),
    ((3.0, float("nan")), "low < high"),
    ((0.0, 1.0, 2.0), "pair of numbers"),
    (("low", "high"), "pair of numbers"),
    ("data", "'chain_bounds' parameter of NNEFH must be"),
])
def test_bad_chain_bounds_are_refused_by_name(bounds, message, digits):
    with pytest.raises(ValueError, match=message):
        _tiny(NNEFH, chain_bounds=bounds).fit(digits)


def test_a_model_pickled_before_the_box_existed_keeps_sampling_without_one(digits):
    est = _tiny(NNEFH).fit(digits)
    state = est.__getstate__()
    del state["chain_bounds"]  # as pickled by an earlier version, whose chains had no box
    del state["_trained_params"]  # (nor a record of the parameters it was trained with)
    old = NNEFH.__new__(NNEFH)
    old.__setstate__(state)
    assert old.chain_bounds is None
    samples = old.sample(200, random_state=0)
    assert samples.min() < digits.min() or samples.max() > digits.max()
    restored = pickle.loads(pickle.dumps(est))  # today's pickles keep their value
    assert restored.chain_bounds == "auto"


def test_every_latent_draw_of_training_negatives_sees_a_state_in_the_box(monkeypatch):
    """With negative_init a fraction, the noise part's first latent draw sees the clipped start."""
    from skefh.samplers import training_negatives

    model = tiny_nnefh(n_features=3)
    seen = []
    real = type(model).sample_latent

    def recording(self, x, generator=None, temperature=None):
        seen.append(float(x.abs().max()))
        return real(self, x, generator, temperature)

    monkeypatch.setattr(type(model), "sample_latent", recording)
    settings_ = GibbsLangevinSettings(n_gibbs=1, n_langevin=2, step_size=0.01, bounds=(-1.0, 1.0))
    x_pos = torch.zeros(8, 3, dtype=torch.float64)
    x_init = 30.0 * torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    training_negatives(model, x_pos, settings_, data_fraction=0.5, x_init=x_init,
                       generator=torch.Generator().manual_seed(1))
    assert len(seen) >= 3 and max(seen) <= 1.0


@pytest.mark.parametrize("cls", [NNEFH, EBM], ids=lambda c: c.__name__)
def test_noisy_training_images_stay_on_the_box_of_metropolis_adjusted_chains(cls, digits, monkeypatch):
    """Adjusted chains sample the density on the box, so the noisy positives are kept on it too;
    clipped (unadjusted) chains leave them as they are."""
    from skefh.samplers.replay import TrainingSampler

    seen = []
    real = TrainingSampler.__call__

    def recording(self, model, x_pos, generator=None):
        seen.append(float(x_pos.abs().max()))
        return real(self, model, x_pos, generator)

    monkeypatch.setattr(TrainingSampler, "__call__", recording)
    _tiny(cls, metropolis=True, data_noise=0.5).fit(digits)
    assert seen and max(seen) <= 1.1 + 1e-6  # the "auto" box: [-1, 1] widened by 5 % a side
    seen.clear()
    _tiny(cls, data_noise=0.5).fit(digits)
    assert max(seen) > 1.5
