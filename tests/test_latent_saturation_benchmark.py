"""benchmarks/latent_saturation.py end to end, on a shrunk network: its rows against a recount."""

import json

import numpy as np
from test_sample_quality import _benchmark_module

from skefh.metrics import latent_usage

# A network small enough for a test: the benchmark's --set flags
SMALL = ["--set", "n_filters=4", "--set", "n_statistics=16", "--set", "n_components=32", "--set", "langevin_steps=2"]


def test_the_saturation_benchmark_measures_the_untrained_and_listed_updates(tmp_path, monkeypatch, one_torch_thread):
    bench = _benchmark_module("latent_saturation", monkeypatch)
    bench.main(["--updates", "3", "--at", "1", "--out", str(tmp_path), "--name", "t", *SMALL])
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


def test_init_scale_scales_the_initial_coupling_once(tmp_path, monkeypatch, one_torch_thread):
    bench = _benchmark_module("latent_saturation", monkeypatch)
    scaled = []  # the largest |W| once the training fit's callback has run
    apply = bench.ScaledInitialWeights.on_fit_begin

    def apply_and_record(self, trainer):
        apply(self, trainer)
        scaled.append(float(trainer.model.weight.detach().abs().max()))

    monkeypatch.setattr(bench.ScaledInitialWeights, "on_fit_begin", apply_and_record)
    # W = 0: every bounded logit is tanh(0) = 0, so the untrained row has no unit that varies
    bench.main(["--updates", "1", "--at", "", "--init-scale", "0", "--out", str(tmp_path), "--name", "z", *SMALL])
    record = json.loads((tmp_path / "z.json").read_text())
    assert record["init_scale"] == 0.0
    assert record["rows"]["0"]["mean_abs_logit"] == 0.0 and record["rows"]["0"]["varying"] == 0.0
    assert scaled == [0.0]  # the trained model started from the scaled weights too

    from types import SimpleNamespace

    import torch

    trainer = SimpleNamespace(model=SimpleNamespace(weight=torch.ones(3, 2)))
    callback = bench.ScaledInitialWeights(0.5)
    callback.on_fit_begin(trainer)
    callback.on_fit_begin(trainer)  # a second fit call continues from the trained weights
    assert torch.equal(trainer.model.weight, torch.full((3, 2), 0.5))
