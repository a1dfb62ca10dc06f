"""The latent layer carries information: the centred coupling against the paper's on digits, and
whitened statistics against raw ones."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skefh.metrics import latent_usage
from skefh.presets import make_estimator


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data / 16.0
    return X[:1200], X[1200:1500]


def _fit(X, coupling):
    # The cpu-short-run network and sampler, a few dozen updates: the paper's coupling has
    # saturated by then (every unit on or off for every digit).
    return make_estimator("nnefh", "cpu-short-run", max_iter=40, coupling=coupling, random_state=0).fit(X)


def test_centred_units_split_the_data_where_the_papers_saturate(digits, one_torch_thread):
    train, test = digits
    centred = latent_usage(_fit(train, "centred"), test)
    paper = latent_usage(_fit(train, "paper"), test)
    # The criterion: >= 25 % of units with a posterior-mean std >= 0.1 across inputs,
    # <= 25 % always on or always off.
    assert centred.varying_std >= 0.25
    assert centred.always_on + centred.always_off <= 0.25
    assert paper.varying_std < 0.25 and paper.always_on + paper.always_off > 0.75


def _fit_bounded(X, whiten):
    # 60 updates: past the first few dozen, in which U collapses onto its first directions.
    return make_estimator("nnefh", "cpu-short-run", max_iter=60, coupling="bounded", whiten_statistics=whiten,
                          random_state=0).fit(X)


@pytest.fixture(scope="module")
def bounded(digits):
    return _fit_bounded(digits[0], whiten=False)


def test_bounded_units_split_the_data_with_soft_posteriors(digits, bounded, one_torch_thread):
    _, test = digits
    est = bounded
    usage = latent_usage(est, test)
    assert usage.varying_std >= 0.25
    assert usage.always_on + usage.always_off <= 0.25
    # Soft: the units carry information without being a crisp code (mean entropy in bits).
    assert usage.entropy >= 0.3
    logits = est.set_params(features="eta").transform(test)
    assert np.abs(logits).max() <= est.logit_bound


def test_whitened_statistics_give_units_that_read_many_directions(digits, bounded, one_torch_thread):
    """Raw, U's spread collapses onto about one direction and the units all read it (logit
    dimension about 1); whitened, the units' logits span many directions, and still split the
    data."""
    train, test = digits
    raw = latent_usage(bounded, test)
    whitened_est = _fit_bounded(train, whiten=True)
    whitened = latent_usage(whitened_est, test)
    assert raw.logit_dimension < 2.0
    assert whitened.logit_dimension > 5.0
    assert whitened.varying_std >= 0.25
    assert whitened.always_on + whitened.always_off <= 0.25
    # history_ shows the same on each training batch while it happens.
    assert np.mean([r["logit_dimension"] for r in bounded.history_[-10:]]) < 2.0
    assert np.mean([r["logit_dimension"] for r in whitened_est.history_[-10:]]) > 5.0


def test_a_fitted_model_is_centred_on_its_training_data(digits):
    """After fit and after partial_fit, u_bar is the mean of U over the rows just trained on
    (not the last batch's), and at most ``_max_centring_rows`` of them, evenly spaced."""
    train, _ = digits
    est = make_estimator("nnefh", "cpu-short-run", max_iter=3, coupling="centred", random_state=0).fit(train)
    module = est.module_
    assert int(module.n_observed) == 3  # one observation per update
    u = est.transform(train).astype(np.float64)  # features="U"
    np.testing.assert_allclose(module.statistics_mean.numpy(), u.mean(0), rtol=1e-5, atol=1e-5 * np.abs(u).max())
    # The last batch's mean is not the data's: the test can tell them apart.
    assert np.abs(u[:64].mean(0) - u.mean(0)).max() > 100 * 1e-5 * np.abs(u).max()
    history = est.history_[-1]
    assert 0.0 <= history["latent_varying"] <= 1.0
    rows = train[:300]
    est._max_centring_rows = 7
    est.partial_fit(rows)
    spaced = rows[np.round(np.linspace(0, len(rows) - 1, 7)).astype(int)]
    u = est.transform(spaced).astype(np.float64)
    np.testing.assert_allclose(module.statistics_mean.numpy(), u.mean(0), rtol=1e-5, atol=1e-5 * np.abs(u).max())


def test_units_stay_centred_while_training_at_a_constant_learning_rate(digits, one_torch_thread):
    """U's mean over the data moves at every update; units centred on a running mean of it lag
    behind, and at a constant learning rate most bounded units sat at their bound for every
    digit from about the tenth update on (at 0.18). Centred on each batch's mean, no unit is on
    or off for a whole batch."""
    train, test = digits
    est = make_estimator("nnefh", "cpu-short-run", max_iter=100, lr_schedule="constant", random_state=0).fit(train)
    saturated = [r["latent_always_on"] + r["latent_always_off"] for r in est.history_[10:]]
    assert np.mean(saturated) <= 0.05
    usage = latent_usage(est, test)
    assert usage.varying_std >= 0.25
    assert usage.always_on + usage.always_off <= 0.25


def test_the_image_default_is_the_whitened_bounded_coupling_and_tables_keep_the_papers(digits):
    """"auto" resolves by the kind of data, an explicit coupling switches whitening off where
    it cannot apply, and the presets measured with the paper's coupling keep it."""
    from sklearn.datasets import make_moons

    from skefh import NNEFH

    train, _ = digits
    tiny = dict(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=2, max_iter=1,
                log_partition=None, random_state=0)
    images = NNEFH(**tiny).fit(train[:64])
    assert images.module_.coupling == "bounded" and images.module_.whiten
    paper = NNEFH(coupling="paper", **tiny).fit(train[:64])
    assert paper.module_.coupling == "paper" and not paper.module_.whiten
    table = NNEFH(**tiny).fit(make_moons(64, random_state=0)[0])
    assert table.module_.coupling == "paper" and not table.module_.whiten
    for preset in ("cpu-paper", "paper", "paper-original"):
        assert make_estimator("nnefh", preset).coupling == "paper"
    density = make_estimator("nnefh", "density").coupling  # bounded on small images only
    assert (density((1, 8, 8)), density((1, 28, 28))) == ("bounded", "paper")
    for preset in ("cpu", "cpu-short-run"):
        assert make_estimator("nnefh", preset).get_params()["coupling"] == "auto"
