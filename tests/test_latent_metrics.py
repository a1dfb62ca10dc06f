"""Latent-layer metrics: how much the posterior varies over inputs (latent_usage) and how far a
redraw of the latent moves the NN-EFH's x-conditional (redraw_shift)."""

import numpy as np
import pytest
import torch


def test_latent_usage_tells_a_constant_posterior_from_a_varying_one():
    from sklearn.datasets import load_digits

    from skefh import EBM, GRBM
    from skefh.metrics import latent_usage

    X = load_digits().data[:200]
    est = GRBM(n_components=8, max_iter=0, random_state=0, device="cpu", log_partition=None).fit(X)
    with torch.no_grad():
        est.module_.weight.mul_(50.0)  # logits far from zero and varying with v
    varying = latent_usage(est, X)
    assert varying.n_units == 8 and varying.n_rows == 200 and varying.varying > 0.5
    assert varying.always_on + varying.varying <= 1.0
    assert varying.varying_std > 0.5 and varying.always_off < 0.5
    assert est.features == "mean"
    with torch.no_grad():  # W = 0 and a large bias: every unit is on, whatever v is
        est.module_.weight.zero_()
        est.module_.bias.fill_(30.0)
    constant = est.set_params(features="eta")
    usage = latent_usage(constant, X)
    assert usage.varying == 0.0 and usage.posterior_std < 1e-9 and usage.entropy < 1e-6
    assert usage.always_on == 1.0
    with torch.no_grad():  # half the units off everywhere, half on everywhere
        est.module_.bias[:4] = -30.0
    halves = latent_usage(constant, X)
    assert halves.always_on == 0.5 and halves.always_off == 0.5 and halves.varying_std == 0.0
    assert constant.features == "eta"  # restored
    with pytest.raises(ValueError, match="no latent layer"):
        latent_usage(EBM(n_statistics=4, n_filters=2, max_iter=0, device="cpu", log_partition=None).fit(X), X)


def test_latent_usage_leaves_the_callers_estimator_alone():
    """It reads the posterior without set_params on the estimator it was given (another thread
    may be using it)."""
    from sklearn.datasets import load_digits

    from skefh import NNEFH
    from skefh.metrics import latent_usage

    X = load_digits().data[:64]
    est = NNEFH(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=2, max_iter=1,
                device="cpu", log_partition=None, random_state=0).fit(X)
    before = dict(vars(est))
    expected = est.set_params(features="mean").transform(X)
    est.set_params(features="U")

    def refuse(**params):
        raise AssertionError(f"latent_usage called set_params({params}) on the caller's estimator")

    est.set_params = refuse
    try:
        usage = latent_usage(est, X)
    finally:
        del est.set_params
    assert vars(est).keys() == before.keys() and est.features == "U"
    assert usage.posterior_std == pytest.approx(float(expected.std(axis=0).mean()))


def _identity_statistics(input_shape, n_statistics):
    return torch.nn.Flatten()


def _flip_model(X, tau, slope, scale=1.0):
    """A fitted NNEFH with U(x) = x and three units in energy units, all multiplied by ``scale``:
    one whose logit grows along x_2, a coin whose logit is 0 everywhere, one always on."""
    from skefh import NNEFH

    est = NNEFH(image_shape=None, statistics=_identity_statistics, n_statistics=2, n_components=3,
                temperature=tau, scaling="standardise", max_iter=0, device="cpu", log_partition=None,
                random_state=0).fit(X)
    with torch.no_grad():
        est.module_.weight.copy_(scale * torch.tensor([[0.0, slope], [0.0, 0.0], [5.0, 5.0]]))
        est.module_.bias.copy_(scale * torch.tensor([0.0, 0.0, 1e3]))
    return est


def test_redraw_shift_is_half_the_gradient_of_the_flipped_units_logits():
    """U(x) = x, eta = W x + b: a redraw flips unit k with probability 2 p_k (1 - p_k) and then
    moves the conditional's mode by |w_k| / 2; a coin whose logit does not change with x and an
    always-on unit move nothing."""
    from skefh import GRBM
    from skefh.metrics import redraw_shift

    tau, slope = 0.5, 1.5
    X = np.random.default_rng(0).normal(size=(4000, 2))
    est = _flip_model(X, tau, slope)
    working = est.range_map_.to_working(X)
    p = 1.0 / (1.0 + np.exp(-slope * working[:, 1] / tau))
    expected = 0.5 * slope * np.mean(2 * p * (1 - p))
    result = redraw_shift(est, X, random_state=0)
    standard_error = 0.5 * slope * np.sqrt(np.mean(2 * p * (1 - p)) / len(X))
    assert abs(result.mean_shift - expected) < 5 * standard_error, (result.mean_shift, expected)
    assert result.median_shift in (0.0, pytest.approx(0.5 * slope))
    assert result.conditional_spread == pytest.approx(np.sqrt(2 * tau / 2))
    half = len(X) // 2
    assert result.row_distance == pytest.approx(
        np.linalg.norm(working[:half] - working[half:], axis=1).mean(), rel=1e-5)
    assert result.n_rows == len(X)
    with torch.no_grad():  # only the coin left: it flips, but its logit is the same everywhere
        est.module_.weight[0].zero_()
    assert redraw_shift(est, X, random_state=0).mean_shift == 0.0
    with pytest.raises(ValueError, match="at least two rows"):
        redraw_shift(est, X[:1])
    with pytest.raises(ValueError, match="features"):
        redraw_shift(est, X[:, :1])
    grbm = GRBM(n_components=2, max_iter=0, device="cpu", log_partition=None, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted NNEFH"):
        redraw_shift(grbm, X)


def test_the_moving_temperature_is_where_a_redraw_moves_the_mode_by_the_row_distance():
    """With the posteriors held (logits in energy units times T' / T), the shift grows with the
    temperature and the conditional's width with its square root: the same model at the
    reported moving temperature shifts its mode by the distance between rows, with the
    reported width, and a model whose redraws move nothing never moves."""
    from skefh.metrics import redraw_shift

    tau, slope = 0.5, 1.5
    X = np.random.default_rng(1).normal(size=(2000, 2))
    base = redraw_shift(_flip_model(X, tau, slope), X, random_state=0)
    assert base.temperature == tau and 0.0 < base.mean_shift < base.row_distance
    moving = base.moving_temperature
    assert moving > tau
    hot = redraw_shift(_flip_model(X, moving, slope, scale=moving / tau), X, random_state=0)
    assert hot.mean_shift == pytest.approx(base.row_distance, rel=1e-4)
    assert hot.conditional_spread == pytest.approx(base.spread_at_moving_temperature, rel=1e-6)
    assert hot.moving_temperature == pytest.approx(moving, rel=1e-4)  # a property of the posteriors
    report = base.to_dict()
    assert report["moving_temperature"] == moving
    assert report["spread_at_moving_temperature"] == base.spread_at_moving_temperature
    still = _flip_model(X, tau, 0.0)
    frozen = redraw_shift(still, X, random_state=0)
    assert frozen.mean_shift == 0.0 and frozen.moving_temperature == np.inf
    assert frozen.spread_at_moving_temperature == np.inf


def test_logit_dimension_counts_the_directions_the_logits_vary_along():
    """Independent, equally varying logits span K directions; units that all read one direction
    of the input span one, however many of them vary; constant logits span none."""
    from skefh import GRBM
    from skefh.metrics import latent_usage

    X = np.random.default_rng(0).standard_normal((4000, 8))
    est = GRBM(n_components=8, max_iter=0, random_state=0, device="cpu", log_partition=None).fit(X)
    with torch.no_grad():  # eta_k = x_k / sigma^2 + b_k: the rows' covariance is about the identity
        est.module_.weight.copy_(torch.eye(8))
        est.module_.bias.copy_(torch.linspace(2.0, 5.0, 8))  # offsets are not directions
    independent = latent_usage(est, X).logit_dimension
    assert 7.5 < independent <= 8.0
    with torch.no_grad():  # every unit's logit a multiple of one projection of x
        est.module_.weight.copy_(torch.outer(torch.linspace(-1.0, 1.0, 8), torch.linspace(0.5, 2.0, 8)))
    one_direction = latent_usage(est, X)
    assert one_direction.varying_std > 0.5  # the units do vary ...
    assert one_direction.logit_dimension == pytest.approx(1.0, abs=1e-6)  # ... along one direction
    with torch.no_grad():
        est.module_.weight[:, :4] = torch.eye(8)[:, :4] * 3.0  # four independent units beside them
    assert 2.0 < latent_usage(est, X).logit_dimension < 5.0
    with torch.no_grad():
        est.module_.weight.zero_()
    assert latent_usage(est, X).logit_dimension == 0.0
