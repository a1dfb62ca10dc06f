"""``ByImageSize``: parameter values that depend on the size of the images fitted on.

The ``density`` preset's NN-EFH needs larger Langevin steps on noisier data for 28x28 images
than for 8x8 digits, and a coupling and annealed restarts on the digits only (the likelihood
page of the docs); a rule resolved in ``fit`` lets one preset carry both. What must hold: a
fit with a rule is the fit with the value the rule gives for its data, the rule survives
``clone``, ``get_params`` and pickling, and a value the parameter refuses is refused for the
data it would be used on.
"""

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skefh import EBM, NNEFH
from skefh.presets import ByImageSize, make_estimator

RNG = np.random.default_rng(0)
SMALL_IMAGES = RNG.random((64, 64))     # 8x8
LARGE_IMAGES = RNG.random((64, 256))    # 16x16, the smallest "large" size
TABLE = RNG.normal(size=(64, 3))
TINY = dict(n_components=4, n_statistics=4, n_filters=2, gibbs_steps=1, langevin_steps=2, batch_size=32,
            max_iter=2, random_state=0, device="cpu", log_partition=None, verbose=-1)


def weights(est):
    return [p.detach().clone() for p in est.module_.parameters()]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))


@pytest.mark.parametrize("X, value", [(SMALL_IMAGES, "small"), (LARGE_IMAGES, "large"), (TABLE, "small")],
                         ids=["8x8", "16x16", "table"])
@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_a_fit_with_a_rule_is_the_fit_with_its_value_for_the_data(cls, X, value):
    steps = ByImageSize(small=0.01, large=0.04)
    noise = ByImageSize(small=0.05, large=0.3)
    params = {k: v for k, v in TINY.items() if cls is NNEFH or k not in ("n_components", "gibbs_steps")}
    ruled = cls(**params, step_size=steps, data_noise=noise).fit(X)
    plain = cls(**params, step_size=getattr(steps, value), data_noise=getattr(noise, value)).fit(X)
    other = "large" if value == "small" else "small"
    unlike = cls(**params, step_size=getattr(steps, other), data_noise=getattr(noise, other)).fit(X)
    other_noise = cls(**params, step_size=getattr(steps, value), data_noise=getattr(noise, other)).fit(X)
    assert same(weights(ruled), weights(plain))
    # The two values train differently here, and the noise alone does too.
    assert not same(weights(ruled), weights(unlike))
    assert not same(weights(ruled), weights(other_noise))
    assert ruled.sampling_settings().step_size == getattr(steps, value)
    assert ruled.step_size is steps  # the parameter itself is left as given


def test_the_density_preset_takes_the_measured_settings_for_each_image_size():
    """8x8 digits: steps 0.002 on data noised by 0.1, the bounded coupling on whitened statistics
    with annealed restarts; 28x28 images: 0.01 and 0.25 (the settings whose Fashion-MNIST density
    AIS estimates, likelihood page) with the paper's coupling and no restarts."""
    cases = ((SMALL_IMAGES, 0.002, 0.1, "bounded", True, 32), (RNG.random((8, 784)), 0.01, 0.25, "paper", False, 0))
    for X, step, noise, coupling, whiten, restarts in cases:
        est = make_estimator("nnefh", "density", max_iter=0, random_state=0, device="cpu",
                             log_partition=None).fit(X)
        assert est._trained_params["step_size"] == step
        assert est._trained_params["data_noise"] == noise
        assert est.sampling_settings(init="buffer").step_size == step
        assert (est.module_.coupling, est.module_.whiten) == (coupling, whiten)
        assert est._trained_params["annealed_restarts"] == restarts
        assert len(est._training_callbacks()) == (1 if restarts else 0)


def test_a_rule_may_name_an_option_or_a_switch():
    """Strings and bools resolve like numbers, are checked against the parameter's options for
    the data they are used on, and a rule giving True is not one giving 1."""
    rule = ByImageSize(small="bounded", large="paper")
    small = NNEFH(**TINY, coupling=rule).fit(SMALL_IMAGES)
    large = NNEFH(**TINY, coupling=rule).fit(LARGE_IMAGES)
    assert (small.module_.coupling, large.module_.coupling) == ("bounded", "paper")
    assert same(weights(small), weights(NNEFH(**TINY, coupling="bounded").fit(SMALL_IMAGES)))
    with pytest.raises(InvalidParameterError, match="'coupling' parameter of NNEFH .*ByImageSize.* must be"):
        NNEFH(**TINY, coupling=ByImageSize(small="bounded", large="tight")).fit(LARGE_IMAGES)
    with pytest.raises(InvalidParameterError, match="'annealed_restarts' parameter of NNEFH .*ByImageSize"):
        NNEFH(**TINY, annealed_restarts=ByImageSize(small=0, large=-1)).fit(LARGE_IMAGES)
    assert ByImageSize(small=True, large=0.5) != ByImageSize(small=1, large=0.5)
    assert ByImageSize(small=1, large=0.5) != ByImageSize(small=1.0, large=0.5)
    assert ByImageSize(small="a", large=2) == ByImageSize(small="a", large=2)
    assert ByImageSize(small=False, large=True)((1, 16, 16)) is True


def test_a_rule_survives_clone_get_params_and_pickling():
    est = NNEFH(**TINY, step_size=ByImageSize(small=0.01, large=0.04))
    assert clone(est).get_params()["step_size"] == ByImageSize(small=0.01, large=0.04)
    assert "step_size=ByImageSize(small=0.01, large=0.04)" in repr(est)
    fitted = pickle.loads(pickle.dumps(est.fit(SMALL_IMAGES)))
    assert fitted.step_size == ByImageSize(small=0.01, large=0.04)
    assert fitted.sampling_settings().step_size == 0.01
    assert ByImageSize(small=0.01, large=0.04) != ByImageSize(small=0.04, large=0.01)


def test_a_checkpoint_keeps_its_rules(tmp_path):
    """from_checkpoint rebuilds the rules (it used to fall back to the defaults: steps of 0.05
    where the density preset fitted 0.002, and no annealed restarts), a fit resumes from its own
    checkpoint, and one written before the rules were recorded still resumes."""
    from skefh.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    path = tmp_path / "run.pt"
    est = make_estimator("nnefh", "density", **{**TINY, "max_iter": 4}, checkpoint_path=str(path), checkpoint_every=2,
                         ais_steps=20, annealed_restart_steps=5, annealed_restart_every=2)
    est.fit(SMALL_IMAGES)
    back = NNEFH.from_checkpoint(path)
    for name in ("step_size", "data_noise", "coupling", "annealed_restarts"):
        assert getattr(back, name) == getattr(est, name) and isinstance(getattr(back, name), ByImageSize), name
    assert back.sampling_settings().step_size == est.sampling_settings().step_size == 0.002
    assert back._trained_params["annealed_restarts"] == 32
    clone(est).fit(SMALL_IMAGES)  # resumes: same parameters
    with pytest.raises(CheckpointError, match="step_size"):
        clone(est).set_params(step_size=ByImageSize(small=0.003, large=0.01)).fit(SMALL_IMAGES)
    state = load_checkpoint(path)
    state["comparable_params"]["step_size"] = "skefh.estimators._resolve.ByImageSize"  # as 0.18-0.23 wrote it
    save_checkpoint(state, path)
    clone(est).fit(SMALL_IMAGES)


def test_a_value_the_parameter_refuses_is_refused_for_the_data_it_would_be_used_on():
    bad_for_large = NNEFH(**TINY, step_size=ByImageSize(small=0.01, large=-0.5))
    bad_for_large.fit(SMALL_IMAGES)  # the large value is never used on 8x8 images
    with pytest.raises(InvalidParameterError, match="'step_size' parameter of NNEFH .*ByImageSize.* must be"):
        clone(bad_for_large).fit(LARGE_IMAGES)
    with pytest.raises(InvalidParameterError, match="'temperature' parameter of NNEFH must be"):
        NNEFH(**TINY, temperature=ByImageSize(small=1.0, large=2.0)).fit(SMALL_IMAGES)
    for small, large in ((float("nan"), 0.02), (0.01, None), (0.01, float("inf")), ([0.01], 0.02)):
        with pytest.raises(ValueError, match="ByImageSize's (small|large) must be a finite number, a bool or a string"):
            ByImageSize(small=small, large=large)


@given(channels=st.integers(1, 4), height=st.integers(1, 64), width=st.integers(1, 64),
       small=st.floats(-1e6, 1e6), large=st.floats(-1e6, 1e6))
def test_a_rule_gives_large_exactly_from_16x16_pixels_per_channel(channels, height, width, small, large):
    rule = ByImageSize(small=small, large=large)
    assert rule((channels, height, width)) == (large if height * width >= 256 else small)
    assert rule(None) == small
