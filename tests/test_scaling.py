"""The data maps between X and the working units: whitening (the tabular default) and standardisation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError

from skefh import EBM, GRBM, NNEFH
from skefh.estimators import RangeMap
from skefh.estimators._scaling import fit_range_map


def _correlated(n=500, seed=0):
    rng = np.random.default_rng(seed)
    mixing = np.array([[3.0, 0.0, 0.0], [2.9, 0.4, 0.0], [-1.0, 0.5, 0.05]])
    return rng.normal(size=(n, 3)) @ mixing.T + [10.0, -4.0, 0.5]


def test_whitened_rows_have_zero_mean_and_identity_covariance():
    X = _correlated()
    rmap = fit_range_map(X, "whiten")
    W = rmap.to_working(X).astype(np.float64)
    np.testing.assert_allclose(W.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.cov(W.T, bias=True), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(rmap.to_data(rmap.to_working(X)), X, rtol=1e-5, atol=1e-4)
    # log|det dw/dx| = -1/2 log det Cov(X): the rotation adds nothing.
    _, logdet = np.linalg.slogdet(np.cov(X.T, bias=True))
    assert rmap.log_abs_det_jacobian == pytest.approx(-0.5 * logdet, rel=1e-9)
    assert not rmap.per_feature and fit_range_map(X, "standardise").per_feature


def test_directions_without_variance_are_only_centred():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=50), np.full(50, 7.0), rng.normal(size=50)])
    X = np.column_stack([X, X[:, 0] - 2.0 * X[:, 2]])  # a fourth feature in the span of two others
    rmap = fit_range_map(X, "whiten")
    W = rmap.to_working(X).astype(np.float64)
    assert np.isfinite(W).all() and np.isfinite(rmap.log_abs_det_jacobian)
    variances = np.sort(W.var(0))
    np.testing.assert_allclose(variances, [0.0, 0.0, 1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(rmap.to_data(rmap.to_working(X)), X, atol=1e-4)
    wide = rng.normal(size=(5, 12))  # more features than rows
    W = fit_range_map(wide, "whiten").to_working(wide).astype(np.float64)
    assert np.isfinite(W).all() and np.sum(W.var(0) > 0.5) == 4  # 5 rows span 4 directions about their mean


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_features=st.integers(1, 6), log_scale=st.floats(-3, 3))
def test_whitening_round_trips_and_its_jacobian_is_the_covariance_determinant(seed, n_features, log_scale):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, n_features)) @ rng.normal(size=(n_features, n_features)) * 10.0**log_scale
    cov = np.cov(X.T, bias=True).reshape(n_features, n_features)
    eigenvalues = np.linalg.eigvalsh(cov)
    if eigenvalues.min() < 1e-6 * eigenvalues.max():
        return  # near-singular draws: covered by the flat-direction test
    rmap = fit_range_map(X, "whiten")
    assert rmap.log_abs_det_jacobian == pytest.approx(-0.5 * np.linalg.slogdet(cov)[1], rel=1e-6, abs=1e-6)
    back = rmap.to_data(rmap.to_working(X))
    np.testing.assert_allclose(back, X, atol=1e-5 * np.abs(X).max() + 1e-5)


def test_a_whitened_density_in_data_units_integrates_to_one():
    """exp(score_samples) of a GRBM (exact log Z) on correlated 2-D data, summed on a grid in the
    units of X: the rotation and the scales of the map enter with the right Jacobian."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2)) @ np.array([[2.0, 0.0], [1.8, 0.3]]).T + [5.0, -3.0]
    est = GRBM(n_components=3, max_iter=30, random_state=0).fit(X)
    assert est.range_map_.kind == "whiten" and est.log_partition_std_ == 0.0
    xs = np.linspace(-5.0, 15.0, 801)
    ys = np.linspace(-12.0, 6.0, 801)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    mass = np.exp(est.score_samples(grid)).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert mass == pytest.approx(1.0, abs=0.01)


def test_a_silent_grbm_on_whitened_data_is_the_gaussian_of_the_training_rows():
    """With W = 0, mu = 0 and unit variances the GRBM is N(0, I) in whitened units, which is
    N(mean, covariance) of the training rows in the units of X: a closed form to score against."""
    from scipy.stats import multivariate_normal

    X = _correlated()
    est = GRBM(n_components=4, max_iter=0, random_state=0).fit(X)
    with torch.no_grad():
        est.module_.weight.zero_()
        est.module_.mu.zero_()
        est.module_.log_var.zero_()
    est.estimate_log_partition()  # exact for 4 hidden units
    gaussian = multivariate_normal(X.mean(0), np.cov(X.T, bias=True))
    probes = np.vstack([X[:20], X.mean(0) + 3.0 * np.random.default_rng(2).normal(size=(20, 3))])
    np.testing.assert_allclose(est.score_samples(probes), gaussian.logpdf(probes), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("cls", [NNEFH, EBM, GRBM], ids=lambda c: c.__name__)
def test_tabular_default_is_whitening_and_standardisation_can_be_asked_for(cls):
    X = _correlated(200)
    small = dict(max_iter=2, random_state=0) if cls is GRBM else dict(max_iter=2, n_statistics=8, random_state=0)
    assert cls(**small).fit(X).range_map_.kind == "whiten"
    assert cls(scaling="standardise", **small).fit(X).range_map_.kind == "standardise"
    with pytest.raises(InvalidParameterError, match="scaling"):
        cls(scaling="pca", **small).fit(X)


def test_scaling_of_images_is_refused_by_name():
    X = np.random.default_rng(0).uniform(0, 16, size=(20, 64))
    with pytest.raises(ValueError, match="scaling='whiten' applies to tabular data"):
        GRBM(scaling="whiten", max_iter=1).fit(X)
    assert GRBM(scaling="whiten", image_shape=None, max_iter=1).fit(X).range_map_.kind == "whiten"


def test_a_box_on_features_needs_per_feature_units():
    X = _correlated(100)
    est = NNEFH(n_statistics=8, n_components=4, max_iter=1, chain_bounds=(-1.0, 1.0), random_state=0)
    with pytest.raises(ValueError, match="whitened data have no per-feature working units"):
        est.fit(X)
    est.set_params(scaling="standardise").fit(X)
    assert est.sample(20, random_state=0).shape == (20, 3)


def test_whitened_models_pickle_and_old_pickles_read_as_standardised():
    X = _correlated(200)
    est = GRBM(n_components=4, max_iter=3, random_state=0).fit(X)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.range_map_.rotation, est.range_map_.rotation)
    np.testing.assert_allclose(again.score_samples(X[:5]), est.score_samples(X[:5]))
    # A model pickled before 0.8: no scaling parameter, and a range map without a rotation.
    old = GRBM(n_components=4, max_iter=3, random_state=0, scaling="standardise").fit(X)
    state = old.__getstate__()
    del state["scaling"]
    rmap_state = dict(vars(state["range_map_"]))
    rmap_state.pop("rotation", None)
    old_map = RangeMap.__new__(RangeMap)
    old_map.__dict__.update(rmap_state)
    state["range_map_"] = old_map
    restored = GRBM.__new__(GRBM)
    restored.__setstate__(state)
    assert restored.scaling == "standardise" and restored.range_map_.rotation is None
    np.testing.assert_allclose(restored.score_samples(X[:5]), old.score_samples(X[:5]))


def test_checkpoints_keep_the_rotation(tmp_path):
    X = _correlated(200)
    path = tmp_path / "grbm.ckpt"
    est = GRBM(n_components=4, max_iter=4, checkpoint_path=path, checkpoint_every=2, random_state=0).fit(X)
    restored = GRBM.from_checkpoint(path)
    np.testing.assert_allclose(restored.range_map_.rotation, est.range_map_.rotation)
    np.testing.assert_allclose(restored.score_samples(X[:5]), est.score_samples(X[:5]), rtol=1e-6)
