"""Tabular defaults that depend on the training rows: the NN-EFH's training length."""

import numpy as np

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
