"""Tabular defaults of the NN-EFH: its training length (from the rows) and its temperature."""

import numpy as np
import torch

from skefh import NNEFH

SMALL = dict(n_components=16, n_statistics=16, n_filters=4, gibbs_steps=1, langevin_steps=3,
             max_iter=3, batch_size=32, random_state=0, device="cpu", ais_chains=8, ais_steps=50)


def test_the_nnefh_trains_tables_for_a_hundred_passes_at_most_two_thousand_updates():
    """max_iter="auto" on tabular data: 100 passes over the training rows (a small table
    overfits with more), at most 2,000 updates, with the rate annealed along a cosine."""
    rng = np.random.default_rng(0)
    for n_rows, batch_size, expected in [(118, 64, 185), (379, 64, 593), (5000, 64, 2000), (118, 16, 738)]:
        est = NNEFH(**{**SMALL, "max_iter": 0, "batch_size": batch_size}).fit(rng.normal(size=(n_rows, 3)))
        resolved = est.set_params(max_iter="auto", lr_schedule="auto")._resolve_params()
        assert (resolved["max_iter"], resolved["lr_schedule"]) == (expected, "cosine"), n_rows


def test_from_checkpoint_resolves_the_tabular_training_length_from_the_rows_trained_on(tmp_path):
    """max_iter="auto" on a table counts passes over the training rows: a model rebuilt from its
    checkpoint resolves it as the fit did, not from the one placeholder row it is built with."""
    rows = np.random.default_rng(0).normal(size=(90, 3))
    params = {**SMALL, "max_iter": "auto", "batch_size": 60, "checkpoint_every": 50}
    est = NNEFH(**params, checkpoint_path=tmp_path / "ckpt.pt").fit(rows)
    assert est._trained_params["max_iter"] == est.n_iter_ == 150  # 100 passes of 90 rows, 60 a batch
    loaded = NNEFH.from_checkpoint(tmp_path / "ckpt.pt")
    assert loaded._trained_params["max_iter"] == 150 and loaded.n_iter_ == 150


def test_the_nnefh_base_on_a_table_is_the_whitened_rows_gaussian():
    """At the tabular temperature the quadratic term alone, exp(-||w - mu||^2 / tau), is
    N(mu, tau / 2 I): with W = 0 and mu = 0 the model scores whitened rows exactly as the rows'
    own Gaussian N(mean, covariance) in the units of X (temperature 1 would halve the variance)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3)) @ np.array([[2.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 0.3, 1.5]]) + 4.0
    est = NNEFH(**{**SMALL, "max_iter": 0}, log_partition=None).fit(X)
    assert est.range_map_.kind == "whiten" and est.module_.temperature == 2.0
    with torch.no_grad():
        est.module_.weight.zero_()
        est.module_.bias.fill_(-50.0)  # sum softplus(eta / tau) ~ 0: the quadratic term alone
        est.module_.mu.zero_()
    gaussian = multivariate_normal(X.mean(0), np.cov(X.T, bias=True))
    unnormalised = est.score_samples(X[:20])
    # Normalised up to a constant: differences between rows match the Gaussian's exactly.
    np.testing.assert_allclose(np.diff(unnormalised), np.diff(gaussian.logpdf(X[:20])), rtol=1e-4, atol=1e-4)
