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


def test_kernel_ais_starts_its_chains_at_the_kept_rows(tmp_path, monkeypatch):
    """--kernel-ais: forward AIS from kernels on the kept rows, the same estimate as
    annealed_importance_sampling on that base, and (the model's density being a Gaussian of
    known normaliser when its network is silenced) an estimate of log Z that lands on it."""
    from skefh.samplers import GaussianMixtureBasePath, annealed_importance_sampling

    bench = _benchmark_module("score_brackets", monkeypatch)
    X = load_digits().data[:200]
    est = NNEFH(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=3, batch_size=32,
                max_iter=2, temperature=1.0, coupling="paper", random_state=0, device="cpu",
                log_partition=None).fit(X)
    with torch.no_grad():  # F(x) = ||x - mu||^2 - sum_k softplus(b_k): log Z in closed form
        est.module_.weight.zero_()
    tau, dim = est.module_.temperature, est.n_features_in_
    softplus = float(torch.nn.functional.softplus(est.module_.bias.detach().double()).sum())
    exact = 0.5 * dim * math.log(math.pi * tau) + softplus / tau
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    bench.main([str(path), "--dataset", "digits", "--chains", "32", "--steps", "200", "--no-brackets",
                "--kernel-ais", "0.5", "--out-dir", str(tmp_path), "--name", "k"])
    report = json.loads((tmp_path / "k.json").read_text())["models"]["model"]
    assert report["brackets"] == {}
    run = report["kernel_ais"]["200-variance-0.5"]
    assert abs(run["log_z"] - exact) < 3 * run["std"] + 0.05
    rows = est._to_tensor(est._bound_rows).float().reshape(len(est._bound_rows), *est.module_.input_shape)
    again = annealed_importance_sampling(
        GaussianMixtureBasePath(est.module_, rows, torch.full_like(rows, 0.5 * tau)), 32, 200,
        generator=torch.Generator().manual_seed(0))
    assert run["log_z"] == pytest.approx(again.log_z)


def test_kernel_ais_can_start_its_chains_where_the_training_chains_ended(tmp_path, monkeypatch):
    """--kernel-centres chains: the kernels sit on the replay buffer's written states (not on the
    kept rows), and the estimate still lands on a closed-form log Z; a model without a buffer
    is refused by name."""
    from skefh.samplers import GaussianMixtureBasePath, annealed_importance_sampling

    bench = _benchmark_module("score_brackets", monkeypatch)
    X = load_digits().data[:200]
    settings = dict(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=3, batch_size=32,
                    max_iter=2, temperature=1.0, coupling="paper", random_state=0, device="cpu", log_partition=None)
    est = NNEFH(replay_buffer=24, **settings).fit(X)
    with torch.no_grad():  # F(x) = ||x - mu||^2 - sum_k softplus(b_k): log Z in closed form
        est.module_.weight.zero_()
    tau, dim = est.module_.temperature, est.n_features_in_
    exact = 0.5 * dim * math.log(math.pi * tau) + float(
        torch.nn.functional.softplus(est.module_.bias.detach().double()).sum()) / tau
    buffer = est._replay_buffer_state()
    states = buffer["states"][buffer["written"]]
    assert 0 < len(states) <= 24
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    bench.main([str(path), "--dataset", "digits", "--chains", "32", "--steps", "200", "--no-brackets",
                "--kernel-ais", "0.5", "--kernel-centres", "chains", "--out-dir", str(tmp_path), "--name", "c"])
    run = json.loads((tmp_path / "c.json").read_text())["models"]["model"]["kernel_ais"]["200-variance-0.5-on-chains"]
    assert abs(run["log_z"] - exact) < 3 * run["std"] + 0.05
    again = annealed_importance_sampling(
        GaussianMixtureBasePath(est.module_, states, torch.full_like(states, 0.5 * tau)), 32, 200,
        generator=torch.Generator().manual_seed(0))
    assert run["log_z"] == pytest.approx(again.log_z)
    rows = est._to_tensor(est._bound_rows).float().reshape(len(est._bound_rows), *est.module_.input_shape)
    on_rows = annealed_importance_sampling(
        GaussianMixtureBasePath(est.module_, rows, torch.full_like(rows, 0.5 * tau)), 32, 200,
        generator=torch.Generator().manual_seed(0))
    assert run["log_z"] != pytest.approx(on_rows.log_z, abs=1e-9)

    joblib.dump(NNEFH(replay_buffer=0, **settings).fit(X), path)
    with pytest.raises(SystemExit, match="no replay buffer"):
        bench.main([str(path), "--dataset", "digits", "--chains", "8", "--steps", "10", "--no-brackets",
                    "--kernel-ais", "0.5", "--kernel-centres", "chains", "--out-dir", str(tmp_path)])
