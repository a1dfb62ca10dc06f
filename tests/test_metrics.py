"""Tests for skefh.metrics: Fréchet distance / FID, nearest neighbours (the probe: test_probe.py)."""

import sys
import types

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skefh.metrics import (
    FIDResult,
    fid,
    frechet_distance,
    frechet_distance_from_stats,
    nearest_neighbours,
)

HYPOTHESIS = settings(max_examples=40, deadline=None)


def _frechet_scipy(a, b):
    """Reference: the textbook formula with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a = np.atleast_2d(np.cov(a, rowvar=False))
    s_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


# --------------------------------------------------------------------------- Fréchet


@pytest.mark.parametrize("d", [1, 2, 7, 20])
def test_frechet_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(300, d)) @ rng.normal(size=(d, d))
    b = rng.normal(loc=0.3, size=(250, d)) @ rng.normal(size=(d, d)) + 1.0
    expected = _frechet_scipy(a, b)
    assert expected > 0
    np.testing.assert_allclose(frechet_distance(a, b), expected, rtol=1e-6)


def test_frechet_identical_symmetric_and_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 5))
    b = rng.normal(size=(150, 5)) * 1.5
    assert abs(frechet_distance(a, a)) < 1e-8
    np.testing.assert_allclose(frechet_distance(a, b), frechet_distance(b, a), rtol=1e-10)
    assert frechet_distance(a, a + 0.5) > 0
    # A pure shift leaves the covariances equal, so only ||shift||^2 remains.
    np.testing.assert_allclose(frechet_distance(a, a + 0.5), 5 * 0.25, rtol=1e-8)


@pytest.mark.parametrize(
    "m1,s1,m2,s2", [(0.0, 1.0, 3.0, 2.0), (-1.0, 0.5, 1.0, 0.5), (2.0, 3.0, 2.0, 0.1)]
)
def test_frechet_from_stats_1d_closed_form(m1, s1, m2, s2):
    value = frechet_distance_from_stats([m1], [[s1**2]], [m2], [[s2**2]])
    assert value == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12, abs=1e-12)
    # Scalars are accepted for d == 1.
    assert frechet_distance_from_stats(m1, s1**2, m2, s2**2) == pytest.approx(value)


def test_frechet_1d_samples_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 1))
    b = rng.normal(size=(400, 1))
    # Standardise exactly so the sample moments are known.
    a = (a - a.mean()) / a.std(ddof=1) * 2.0 + 1.0
    b = (b - b.mean()) / b.std(ddof=1) * 0.5 - 1.0
    assert frechet_distance(a, b) == pytest.approx((1.0 + 1.0) ** 2 + (2.0 - 0.5) ** 2, rel=1e-10)


def test_frechet_accepts_torch_tensors():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(60, 3)) + 1
    ta = torch.tensor(a, requires_grad=True)
    assert frechet_distance(ta, torch.tensor(b)) == pytest.approx(frechet_distance(a, b))


@HYPOTHESIS
@given(
    n_a=st.integers(2, 30),
    n_b=st.integers(2, 30),
    d=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_frechet_properties_over_shapes(n_a, n_b, d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_a, d))
    b = rng.normal(size=(n_b, d)) * rng.uniform(0.5, 2.0)
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value >= 0
    scale = 1.0 + np.trace(np.atleast_2d(np.cov(a, rowvar=False))) + np.trace(
        np.atleast_2d(np.cov(b, rowvar=False))
    )
    assert abs(frechet_distance(b, a) - value) <= 1e-7 * scale
    assert frechet_distance(a, a) <= 1e-7 * scale
    shift = rng.normal(size=d)
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, abs=1e-7 * scale)


def test_frechet_input_errors():
    a = np.zeros((10, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], a)
    with pytest.raises(ValueError, match="dimensionality"):
        frechet_distance(a, np.zeros((10, 4)))
    with pytest.raises(ValueError, match="2-D"):
        frechet_distance(np.zeros(10), a)
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(a, bad)
    with pytest.raises(ValueError, match="square"):
        frechet_distance_from_stats(np.zeros(2), np.zeros((2, 3)), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="dimension mismatch"):
        frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# --------------------------------------------------------------------------- FID


def _mean_and_spread(batch):
    return np.stack([batch.mean(1), batch.std(1), batch[:, 0]], axis=1)


def test_fid_callable_equals_frechet_of_features():
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(120, 16))
    b = rng.uniform(size=(90, 16)) ** 2
    res = fid(a, b, feature_extractor=_mean_and_spread, batch_size=7)
    assert isinstance(res, FIDResult)
    expected = frechet_distance(_mean_and_spread(a), _mean_and_spread(b))
    assert res.value == pytest.approx(expected, rel=1e-12)
    assert res.value > 0
    assert res.extractor == "_mean_and_spread"
    assert res.comparable_to_published is False
    assert (res.n_a, res.n_b) == (120, 90)
    assert res.to_dict()["value"] == res.value


def test_fid_callable_object_name_and_torch_output():
    class Embed:
        def __call__(self, batch):
            return torch.as_tensor(batch[:, :3] * 2.0)

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    res = fid(a, b, feature_extractor=Embed())
    assert res.extractor == "Embed"
    assert res.value == pytest.approx(frechet_distance(2 * a[:, :3], 2 * b[:, :3]))


def test_fid_rejects_bad_extractor_output_and_args():
    a = np.zeros((10, 4)) + np.arange(10)[:, None]
    with pytest.raises(ValueError, match="feature extractor must map"):
        fid(a, a, feature_extractor=lambda x: x[:1])
    with pytest.raises(ValueError, match="non-finite"):
        fid(a, a, feature_extractor=lambda x: np.full_like(x, np.nan))
    with pytest.raises(ValueError, match="unknown feature_extractor"):
        fid(a, a, feature_extractor="clip")
    with pytest.raises(ValueError, match="batch_size"):
        fid(a, a, feature_extractor=lambda x: x, batch_size=0)
    with pytest.raises(ValueError, match="at least 2 images"):
        fid(a[:1], a, feature_extractor=lambda x: x)


@pytest.fixture
def no_torch_fidelity(monkeypatch):
    # None in sys.modules makes `import torch_fidelity...` raise ImportError,
    # whether or not the package is installed.
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)


def test_fid_inception_without_weights_path(no_torch_fidelity):
    a = np.full((4, 3 * 4 * 4), 0.5)
    with pytest.raises(ValueError, match="weights_path") as info:
        fid(a, a, feature_extractor="inception", image_shape=(3, 4, 4))
    assert "pip install torch-fidelity" in str(info.value)


def test_fid_inception_without_torch_fidelity(no_torch_fidelity, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    a = np.full((4, 3 * 4 * 4), 0.5)
    with pytest.raises(ImportError, match="pip install torch-fidelity") as info:
        fid(a, a, feature_extractor="inception", image_shape=(3, 4, 4), weights_path=weights)
    assert "weights_path" in str(info.value)


class _FakeInception(torch.nn.Module):
    """Stands in for torch-fidelity's extractor to test the plumbing around it."""

    calls: list = []

    def __init__(self, name, features_list, feature_extractor_weights_path=None):
        super().__init__()
        assert feature_extractor_weights_path is not None  # never download
        self.name, self.features_list = name, features_list

    def forward(self, x):
        type(self).calls.append(x.clone())
        xf = x.to(torch.float32)
        return (torch.stack([xf.mean((1, 2, 3)), xf[:, 0].mean((1, 2)), xf[:, 2].std((1, 2))], 1),)


@pytest.fixture
def fake_torch_fidelity(monkeypatch):
    package = types.ModuleType("torch_fidelity")
    module = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    module.FeatureExtractorInceptionV3 = _FakeInception
    package.feature_extractor_inceptionv3 = module
    monkeypatch.setitem(sys.modules, "torch_fidelity", package)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", module)
    _FakeInception.calls = []
    return _FakeInception


def test_fid_inception_path_plumbing(fake_torch_fidelity, tmp_path):
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"")
    rng = np.random.default_rng(5)
    a = rng.uniform(size=(6, 3 * 2 * 3))
    b = rng.uniform(size=(5, 3 * 2 * 3))
    res = fid(a, b, feature_extractor="inception", image_shape=(3, 2, 3), weights_path=weights,
              batch_size=4)
    assert res.comparable_to_published is True
    assert res.extractor == "inception-v3-compat"
    first = fake_torch_fidelity.calls[0]
    assert first.dtype == torch.uint8 and tuple(first.shape) == (4, 3, 2, 3)
    expected = np.rint(a[:4] * 255).astype(np.uint8).reshape(4, 3, 2, 3)
    np.testing.assert_array_equal(first.numpy(), expected)

    with pytest.raises(FileNotFoundError, match="weights_path"):
        fid(a, b, feature_extractor="inception", image_shape=(3, 2, 3),
            weights_path=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fid(a * 2 - 1, b, feature_extractor="inception", image_shape=(3, 2, 3),
            weights_path=weights)
    with pytest.raises(ValueError, match="image_shape"):
        fid(a, b, feature_extractor="inception", image_shape=(1, 3, 6), weights_path=weights)
    with pytest.raises(ValueError, match="image_shape"):
        fid(a, b, feature_extractor="inception", weights_path=weights)


# --------------------------------------------------------------------------- neighbours


def _brute_force(q, r, k):
    dist = np.linalg.norm(q[:, None, :] - r[None, :, :], axis=2)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(dist, idx, axis=1), dist


def test_nearest_neighbours_matches_brute_force():
    rng = np.random.default_rng(10)
    r = rng.normal(size=(300, 12)) + 50.0  # far from the origin: tests centring
    q = rng.normal(size=(45, 12)) + 50.0
    idx, dist = nearest_neighbours(q, r, n_neighbors=4, batch_size=8)
    ref_idx, ref_dist, _ = _brute_force(q, r, 4)
    assert idx.dtype == np.int64 and dist.dtype == np.float64
    assert idx.shape == dist.shape == (45, 4)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_nearest_neighbours_far_from_origin():
    # ||q||^2 ~ 3e14 here, so the uncentred expansion would lose all digits of
    # the O(1) squared distances; centring on the reference mean keeps them.
    rng = np.random.default_rng(14)
    r = 1e7 + rng.normal(size=(200, 3))
    q = 1e7 + rng.normal(size=(30, 3))
    idx, dist = nearest_neighbours(q, r, n_neighbors=3)
    ref_idx, ref_dist, _ = _brute_force(q, r, 3)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-9)


def test_nearest_neighbours_exact_duplicates():
    rng = np.random.default_rng(11)
    r = rng.uniform(size=(200, 64))
    picks = np.array([5, 17, 199, 0])
    idx, dist = nearest_neighbours(r[picks], r, n_neighbors=1)
    np.testing.assert_array_equal(idx[:, 0], picks)
    np.testing.assert_array_equal(dist[:, 0], 0.0)


def test_nearest_neighbours_k_equals_reference_size():
    rng = np.random.default_rng(12)
    r = rng.normal(size=(6, 2))
    q = rng.normal(size=(3, 2))
    idx, dist = nearest_neighbours(q, r, n_neighbors=6)
    ref_idx, ref_dist, _ = _brute_force(q, r, 6)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12)


@HYPOTHESIS
@given(
    n_q=st.integers(1, 20),
    n_r=st.integers(1, 30),
    d=st.integers(1, 6),
    data=st.data(),
)
def test_nearest_neighbours_hypothesis(n_q, n_r, d, data):
    k = data.draw(st.integers(1, n_r), label="k")
    batch_size = data.draw(st.integers(1, 25), label="batch_size")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    # Coarse integer grid: creates exact ties and duplicates on purpose.
    r = rng.integers(-3, 4, size=(n_r, d)).astype(float)
    q = rng.integers(-3, 4, size=(n_q, d)).astype(float)
    idx, dist = nearest_neighbours(q, r, n_neighbors=k, batch_size=batch_size)
    _, ref_dist, full = _brute_force(q, r, k)
    assert idx.shape == dist.shape == (n_q, k)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=0)
    # The reported distances are the true distances of the reported indices.
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), dist, rtol=1e-12, atol=0)
    assert all(len(set(row)) == k for row in idx.tolist())


def test_nearest_neighbours_validation():
    r = np.zeros((5, 3))
    with pytest.raises(ValueError, match="exceeds"):
        nearest_neighbours(r, r, n_neighbors=6)
    with pytest.raises(ValueError, match="n_neighbors"):
        nearest_neighbours(r, r, n_neighbors=0)
    with pytest.raises(ValueError, match="dimensions"):
        nearest_neighbours(np.zeros((2, 4)), r)
    with pytest.raises(ValueError, match="2-D"):
        nearest_neighbours(np.zeros(3), r)
    with pytest.raises(ValueError, match="batch_size"):
        nearest_neighbours(r, r, batch_size=0)
    with pytest.raises(ValueError, match="NaN"):
        nearest_neighbours(np.full((1, 3), np.nan), r)


def test_chain_distance_compares_like_with_like():
    """With the latent cut off from x (W = 0) and no noise, Gibbs redraws change nothing: both
    samplers then follow the same deterministic path, step schedule included, so the ratio is 1."""
    from sklearn.datasets import load_digits

    from skefh import GRBM
    from skefh.metrics import chain_distance

    X = load_digits().data[:64]
    est = GRBM(n_components=6, max_iter=1, gibbs_steps=3, langevin_steps=4, step_schedule="cosine",
               energy_scale="batch", random_state=0, device="cpu", log_partition=None).fit(X)
    with torch.no_grad():
        est.module_.weight.zero_()
    # A vanishing temperature: the chains are deterministic up to noise of order 1e-8.
    result = chain_distance(est, n_chains=8, random_state=0, target="fixed_latent", temperature=1e-16)
    assert result.gibbs_langevin > 0
    assert result.ratio == pytest.approx(1.0, rel=1e-6)



def test_chain_distance_from_given_rows_starts_there():
    """Started at data rows, a deterministic chain (W = 0, vanishing temperature) moves by the
    closed-form contraction of the quadratic term: x - mu shrinks by (1 - 2 eps s) per step."""
    from sklearn.datasets import load_digits

    from skefh import GRBM
    from skefh.metrics import chain_distance

    X = load_digits().data[:64]
    est = GRBM(n_components=6, max_iter=1, gibbs_steps=2, langevin_steps=3, step_schedule="constant",
               energy_scale=1.0, step_size=0.01, random_state=0, device="cpu", log_partition=None).fit(X)
    with torch.no_grad():
        est.module_.weight.zero_()
    start = X[:5]
    result = chain_distance(est, n_chains=64, start=start, random_state=0, temperature=1e-16)
    assert result.n_chains == 5
    working = torch.as_tensor(est.range_map_.to_working(start))
    mu, variance = est.module_.mu.detach().double(), est.module_.variance().detach().double()
    # E = sum (v - mu)^2 / (2 sigma^2) and the step is eps * mean(sigma^2) (the reference's
    # scaling): each step multiplies v - mu by 1 - eps mean(sigma^2) / sigma^2.
    shrink = (1 - 0.01 * variance.mean() / variance) ** 6
    expected = ((working - mu) * (1 - shrink)).norm(dim=1).mean().item()
    assert result.gibbs_langevin == pytest.approx(expected, rel=1e-4)
    assert result.ratio == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError, match="features"):
        chain_distance(est, start=X[:3, :10])
