"""benchmarks/latent_saturation.py end to end, on a shrunk network: its rows against a recount."""

import json

import numpy as np
from test_sample_quality import _benchmark_module

from skefh.metrics import latent_usage


def test_the_saturation_benchmark_measures_the_untrained_and_listed_updates(tmp_path, monkeypatch, one_torch_thread):
    bench = _benchmark_module("latent_saturation", monkeypatch)
    small = ["--set", "n_filters=4", "--set", "n_statistics=16", "--set", "n_components=32",
             "--set", "langevin_steps=2"]
    bench.main(["--updates", "3", "--at", "1", "--out", str(tmp_path), "--name", "t", *small])
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert sorted(rows, key=int) == ["0", "1", "3"]
    for row in rows.values():
        for key in ("varying", "always_on", "always_off", "sign_varying"):
            assert 0.0 <= row[key] <= 1.0
        assert row["always_on"] + row["always_off"] <= 1.0 + 1e-12
        assert row["u_spread"] > 0 and row["mean_abs_logit"] > 0


def test_snapshot_agrees_with_latent_usage_and_a_recount(monkeypatch):
    bench = _benchmark_module("latent_saturation", monkeypatch)
    from sklearn.datasets import load_digits

    from skefh.presets import make_estimator

    X = load_digits().data[:300]
    est = make_estimator("nnefh", "cpu-short-run", n_filters=4, n_statistics=16, n_components=32, max_iter=0,
                         random_state=0, log_partition=None).fit(X)
    row = bench.snapshot(est, X)
    usage = latent_usage(est, X)
    assert row["varying"] == usage.varying_std and row["always_on"] == usage.always_on
    u = est.set_params(features="U").transform(X)
    np.testing.assert_allclose(row["u_spread"], u.std(0).mean(), rtol=1e-4)
    np.testing.assert_allclose(row["u_mean_rms"], np.sqrt((u.mean(0) ** 2).mean()), rtol=1e-4)
    logits = est.set_params(features="eta").transform(X)
    share = (logits > 0).mean(0)
    np.testing.assert_allclose(row["sign_varying"], ((share > 0.05) & (share < 0.95)).mean())
