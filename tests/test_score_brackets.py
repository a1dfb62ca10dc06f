"""benchmarks/score_brackets.py: the chain-free kernel estimates it reports."""

import json
import math

import joblib
import pytest
import torch
from sklearn.datasets import load_digits
from test_sample_quality import _benchmark_module

from skefh import NNEFH
from skefh.samplers import kernel_lower_bound


@pytest.mark.parametrize("boxed", [True, False])
def test_kernel_estimates_are_reported_for_boxed_and_unboxed_models(boxed, tmp_path, monkeypatch):
    """--kernel-variances without AIS (--steps ""): per variance a Jensen bound with its standard
    error and an importance estimate, which is never below it (log mean exp >= mean); the bound
    is kernel_lower_bound's on the rows the model keeps, in the model's box where it has one."""
    bench = _benchmark_module("score_brackets", monkeypatch)
    X = load_digits().data[:200]
    est = NNEFH(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=3, batch_size=32,
                max_iter=3, temperature=1.0, step_size=0.01, metropolis=True,
                chain_bounds="auto" if boxed else None, random_state=0, device="cpu", log_partition=None).fit(X)
    assert (est._density_box() is not None) == boxed
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    bench.main([str(path), "--dataset", "digits", "--chains", "4", "--steps", "", "--kernel-variances", "0.05,0.25",
                "--kernel-samples", "64", "--out-dir", str(tmp_path), "--name", "k"])
    report = json.loads((tmp_path / "k.json").read_text())["models"]["model"]
    assert report["brackets"] == {}
    estimates = report["kernel_estimates"]
    assert set(estimates) == {"0.05", "0.25"}
    for record in estimates.values():
        assert math.isfinite(record["jensen"]) and record["jensen_std"] > 0
        assert record["importance"] >= record["jensen"]
    centres = est._to_tensor(est._bound_rows).float()
    expected, _ = kernel_lower_bound(est._working_log_density, centres, 0.25 * est.module_.temperature, 64,
                                     generator=torch.Generator().manual_seed(0), bounds=est._density_box())
    assert estimates["0.25"]["jensen"] == pytest.approx(expected)
