"""benchmarks/density.py and dequantised_pixels.py end to end, quick: the fields they promise."""

import json
import math

import joblib
import numpy as np
import pytest
from test_sample_quality import _benchmark_module


def _finite_or_raises(value):
    return value == "raises" or (isinstance(value, float) and math.isfinite(value))


def test_the_density_benchmark_reports_every_model_on_a_2d_set(tmp_path, monkeypatch):
    bench = _benchmark_module("density", monkeypatch)
    bench.main(["--quick", "--datasets", "moons", "--models", "gmm,kde,nnefh", "--out", str(tmp_path),
                "--name", "t", "--set", "nnefh:max_iter=3", "--set", "n_statistics=16", "--set", "n_components=16",
                "--set", "langevin_steps=5", "--set", "gibbs_steps=1", "--n-samples", "150", "--n-grid", "60",
                "--n-permutations", "30"])
    report = json.loads((tmp_path / "t.json").read_text())
    moons = report["datasets"]["moons"]
    assert (moons["n_features"], set(moons["models"])) == (2, {"gmm", "kde", "nnefh"})
    for model, record in moons["models"].items():
        assert "error" not in record, (model, record.get("error"))
        assert _finite_or_raises(record["log_likelihood"]), (model, record["log_likelihood"])
        if record["log_likelihood"] == "raises":
            assert record["log_likelihood_error"]
        assert math.isfinite(record["mmd"]) and record["fit_seconds"] > 0
        agreement = record["agreement"]
        for key in ("mmd", "p_value", "log_density_gap", "border_mass", "samples_outside"):
            assert math.isfinite(agreement[key]), (model, key, agreement[key])
        assert agreement["n_samples"] == 150 and agreement["n_grid"] == 60
    assert moons["models"]["nnefh"]["updates"] == 3
    assert 1 <= moons["models"]["gmm"]["n_components"] <= 4  # quick: BIC over 1..4
    # Scikit-learn's models sample what they score.
    assert moons["models"]["kde"]["agreement"]["p_value"] > 0.01
    assert (tmp_path / "t-moons.png").stat().st_size > 0
    assert "| KernelDensity |" in report["table"]


def test_a_failing_model_is_recorded_not_fatal(tmp_path, monkeypatch):
    bench = _benchmark_module("density", monkeypatch)
    report = bench.main(["--quick", "--datasets", "blobs", "--models", "gmm,ebm", "--out", str(tmp_path),
                         "--set", "ebm:max_iter=-1"])
    assert "error" in report["datasets"]["blobs"]["models"]["ebm"]
    assert math.isfinite(report["datasets"]["blobs"]["models"]["gmm"]["log_likelihood"])


def test_per_model_overrides_reach_only_their_model(monkeypatch):
    bench = _benchmark_module("density", monkeypatch)
    common, per_model = bench.split_overrides(["max_iter=5", "grbm:max_iter=2", "nnefh:temperature=1.0"])
    assert common == {"max_iter": 5} and per_model == {"grbm": {"max_iter": 2}, "nnefh": {"temperature": 1.0}}
    with pytest.raises(SystemExit, match="gmm"):
        bench.split_overrides(["gmm:n_components=3"])


def test_bracket_records_both_ends_of_log_z_for_estimated_models_only(tmp_path, monkeypatch):
    bench = _benchmark_module("density", monkeypatch)
    report = bench.main(["--quick", "--datasets", "blobs", "--models", "ebm,grbm", "--out", str(tmp_path),
                         "--set", "max_iter=3", "--set", "ebm:n_statistics=8", "--set", "ebm:langevin_steps=3",
                         "--set", "grbm:n_components=4", "--bracket", "20"])
    ebm, grbm = (report["datasets"]["blobs"]["models"][m] for m in ("ebm", "grbm"))
    assert ebm["bracket_steps"] == 20 and 1.0 <= ebm["bracket_ess"] <= 64.0
    assert ebm["bracket_width"] == pytest.approx(ebm["log_partition_upper"] - ebm["log_partition_lower"])
    assert "bracket_steps" not in grbm  # 4 hidden units: log Z is exact, there is nothing to bracket
    assert "log Z bracket width" in report["table"]


def test_the_dequantised_pixels_benchmark_brackets_log_z(tmp_path, monkeypatch):
    bench = _benchmark_module("dequantised_pixels", monkeypatch)
    report = bench.main(["--models", "nnefh,ebm", "--steps", "20", "--n-train", "300", "--max-iter", "3",
                         "--search", "4,8", "--out", str(tmp_path), "--name", "t", "--save-models"])
    X_train, X_test = bench.load(0, 300)
    assert report["n_test"] == len(X_test) == 1797 - 300
    assert not np.array_equal(X_train, np.round(X_train))  # dequantised: no integer pixels left
    for name in ("nnefh", "ebm"):
        (bracket,) = report["models"][name]["brackets"]
        assert bracket["steps"] == 20 and 1.0 <= bracket["ess"] <= 64.0 and math.isfinite(bracket["log_likelihood"])
        assert bracket["width"] == pytest.approx(bracket["log_partition_upper"] - bracket["log_partition"])
    assert math.isfinite(report["models"]["gmm"]["log_likelihood"])
    search = report["grid_search"]
    assert search["n_components"] == [4, 8] and search["best"] in (4, 8)
    assert search["best"] == [4, 8][int(np.argmax(search["mean_test_score"]))]
    assert json.loads((tmp_path / "t.json").read_text())["models"].keys() == {"gmm", "nnefh", "ebm"}
    saved = joblib.load(tmp_path / "t-nnefh.joblib")  # the model as fitted, before its log Z estimates
    assert saved.n_iter_ == 3 and saved.image_shape_ is None and saved.log_partition_ is None



def test_the_dequantised_pixels_search_without_its_refit_keeps_the_fold_scores(tmp_path, monkeypatch):
    bench = _benchmark_module("dequantised_pixels", monkeypatch)
    report = bench.main(["--models", "", "--n-train", "300", "--max-iter", "2", "--set", "ais_steps=20",
                         "--search", "4,8", "--no-refit", "--out", str(tmp_path), "--name", "t"])
    search = report["grid_search"]
    assert search["best_held_out"] is None  # no refit, so no test-row score
    assert all(len(fold) == 2 and all(math.isfinite(v) for v in fold) for fold in search["fold_scores"])
    assert search["best"] == [4, 8][int(np.argmax(search["mean_test_score"]))]

def test_the_dequantised_pixels_benchmark_fits_a_presets_image_models(tmp_path, monkeypatch):
    bench = _benchmark_module("dequantised_pixels", monkeypatch)
    report = bench.main(["--preset", "density", "--models", "nnefh", "--steps", "20", "--n-train", "300",
                         "--max-iter", "3", "--set", "n_filters=4", "--out", str(tmp_path), "--name", "t",
                         "--save-models"])
    assert (report["preset"], report["set"]) == ("density", ["n_filters=4"])
    saved = joblib.load(tmp_path / "t-nnefh.joblib")
    assert saved.image_shape_ == (1, 8, 8) and saved.spectral_norm and saved.n_iter_ == 3
    assert saved.n_filters == 4  # --set overrides the preset
    rates = report["models"]["nnefh"]["chain_acceptance"]  # the preset's chains are Metropolis-adjusted
    assert len(rates) == 3 and all(0.0 <= a <= 1.0 for a in rates)
    assert np.mean(rates) == pytest.approx(np.mean([r["acceptance"] for r in saved.history_]))
    (bracket,) = report["models"]["nnefh"]["brackets"]
    assert math.isfinite(bracket["log_likelihood"]) and math.isfinite(bracket["log_partition_upper"])
