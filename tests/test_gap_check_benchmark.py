"""benchmarks/gap_check.py: the replay of saved fits' histories through the energy-gap check."""

import json

import joblib
from test_sample_quality import _benchmark_module


class _Fitted:
    """Stands in for a pickled estimator: only ``history_`` is read."""

    def __init__(self, gaps):
        self.history_ = [{"update": i + 1, "loss": g, "energy_data": 0.0, "energy_samples": -g, "grad_norm": 1.0,
                          "chain_min": -1.0, "chain_max": 1.0} for i, g in enumerate(gaps)]


def test_replay_finds_where_a_runaway_would_stop_and_lets_a_steady_fit_run(tmp_path, monkeypatch, capsys):
    bench = _benchmark_module("gap_check", monkeypatch)
    steady = [40.0 + (i % 7) for i in range(800)]
    runaway = steady[:500] + [40.0 * 1.1 ** k for k in range(1, 301)]
    outcome = bench.replay(_Fitted(runaway).history_, gap_limit=10.0, gap_window=100)
    # The window's median passes 10 x ~43 once over half of its gaps have grown by more than 10:
    # 1.1 ** 26 > 10, so at about 500 + 26 + 50.
    assert 570 <= outcome["stopped_at"] <= 580 and outcome["largest_ratio"] > 10
    assert bench.replay(_Fitted(steady).history_, 10.0, 100)["stopped_at"] is None

    folder = tmp_path / "fits"
    folder.mkdir()
    joblib.dump(_Fitted(runaway), folder / "runaway.joblib")
    joblib.dump(_Fitted(steady), folder / "steady.joblib")
    bench.main([str(folder), "--out-dir", str(tmp_path / "out"), "--name", "t"])
    table = capsys.readouterr().out
    assert "runaway.joblib" in table and "steady.joblib" in table
    results = json.loads((tmp_path / "out" / "t.json").read_text())
    assert results["fits"][str(folder / "runaway.joblib")]["stopped_at"] == outcome["stopped_at"]
    assert results["fits"][str(folder / "steady.joblib")]["stopped_at"] is None
