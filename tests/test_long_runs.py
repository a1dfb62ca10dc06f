"""Checkpoints and resume, divergence handling, the command line."""

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skefh import EBM, GRBM, NNEFH
from skefh.cli import main as cli_main
from skefh.cli import parse_overrides
from skefh.training import Callback, CheckpointError, DivergenceError, DivergenceWarning

X = load_digits().data[:256]
# A constant learning rate: max_iter may then change when a fit resumes (a schedule's horizon may not).
TINY = dict(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=3, batch_size=32,
            lr_schedule="constant", random_state=0, device="cpu", log_partition=None)


class Interrupt(Callback):
    """Simulates a crash (KeyboardInterrupt) after a given update."""

    def __init__(self, at):
        self.at = at

    def on_update_end(self, trainer, record):
        if record["update"] == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "cls, extra",
    [(NNEFH, {}), (EBM, {}), (GRBM, {}), (NNEFH, {"replay_buffer": 40}), (EBM, {"replay_buffer": 40})],
)
def test_interrupted_and_resumed_fit_is_bit_identical(cls, extra, tmp_path):
    params = {**{k: v for k, v in TINY.items() if k in cls().get_params()}, **extra}
    straight = cls(max_iter=9, **params).fit(X)

    path = tmp_path / "ckpt.pt"
    interrupted = cls(max_iter=9, checkpoint_path=path, checkpoint_every=3, callbacks=[Interrupt(7)], **params)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X)
    assert torch.load(path, weights_only=True)["trainer"]["n_updates"] == 6  # the last checkpoint
    resumed = cls(max_iter=9, checkpoint_path=path, checkpoint_every=3, **params).fit(X)
    assert resumed.n_iter_ == 9 and len(resumed.history_) == 9
    for (name, a), b in zip(straight.module_.state_dict().items(), resumed.module_.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["loss"] for h in straight.history_] == [h["loss"] for h in resumed.history_]


@pytest.mark.parametrize("every", [1000, 2])  # 2: the last update was saved before the end-of-fit centring
def test_checkpoint_restores_a_fitted_estimator(tmp_path, every):
    path = tmp_path / "ckpt.pt"
    est = NNEFH(max_iter=4, checkpoint_path=path, checkpoint_every=every, **TINY).fit(X)
    loaded = NNEFH.from_checkpoint(path)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    np.testing.assert_array_equal(loaded.sample(3, random_state=0), est.sample(3, random_state=0))
    assert loaded.n_iter_ == 4
    np.testing.assert_array_equal(loaded.data_moments_, est.data_moments_)


def test_the_bounded_coupling_survives_pickles_and_checkpoints(tmp_path):
    """Its bound, gains and running mean u_bar come back: the same features and samples."""
    path = tmp_path / "ckpt.pt"
    est = NNEFH(max_iter=4, checkpoint_path=path, coupling="bounded", logit_bound=2.5, latent_gain=7.0,
                readout_gain=3.0, features="eta", **TINY).fit(X)
    for loaded in (pickle.loads(pickle.dumps(est)), NNEFH.from_checkpoint(path)):
        module = loaded.module_
        assert (module.logit_bound, module.latent_gain, module.readout_gain) == (2.5, 7.0, 3.0)
        torch.testing.assert_close(module.statistics_mean, est.module_.statistics_mean, rtol=0, atol=0)
        np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
        np.testing.assert_array_equal(loaded.sample(3, random_state=0), est.sample(3, random_state=0))
    assert np.abs(est.transform(X)).max() <= 2.5


def test_a_fitted_model_does_not_keep_its_callbacks():
    """Callbacks act during fit; with ``callbacks=None`` set afterwards the pickle carries none
    (one defined where it cannot be pickled, as a class in a script, must not stop the model
    from being saved), and the sampler of the last fit is unchanged."""

    class Counter(Callback):  # a local class: pickle cannot save its instances
        def __init__(self):
            self.updates = 0

        def on_update_end(self, trainer, record):
            self.updates += 1

    counter = Counter()
    est = NNEFH(max_iter=3, callbacks=[counter], **TINY).fit(X)
    assert counter.updates == 3
    settings = est.sampling_settings()
    loaded = pickle.loads(pickle.dumps(est.set_params(callbacks=None)))
    assert loaded.sampling_settings() == settings
    np.testing.assert_array_equal(loaded.sample(3, random_state=0), est.sample(3, random_state=0))


def test_corrupt_or_mismatched_checkpoints_give_clear_errors(tmp_path):
    path = tmp_path / "ckpt.pt"
    NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X)
    with pytest.raises(CheckpointError, match=r"other parameters \(n_components: 8 -> 16\)"):
        NNEFH(max_iter=4, checkpoint_path=path, **{**TINY, "n_components": 16}).fit(X)
    with pytest.raises(CheckpointError, match="holds a NNEFH model, not a EBM"):
        EBM.from_checkpoint(path)
    with pytest.raises(CheckpointError, match="trained on 64 features"):
        NNEFH(max_iter=4, checkpoint_path=path, **TINY).fit(np.hstack([X, X]))
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        NNEFH(max_iter=4, checkpoint_path=path, **TINY).fit(X)


def test_a_checkpoint_is_not_resumed_on_other_data(tmp_path):
    """A finished checkpoint must not pass for a fit on new data (a refit, another CV fold)."""
    path = tmp_path / "ckpt.pt"
    NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X)
    again = NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X)  # same data: resumes, 0 updates left
    assert again.n_iter_ == 2
    with pytest.raises(CheckpointError, match="other data"):
        NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X[::-1] * 0.5)


def test_max_iter_may_change_on_resume_only_without_a_schedule(tmp_path):
    path = tmp_path / "ckpt.pt"
    NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X)
    assert NNEFH(max_iter=3, checkpoint_path=path, **TINY).fit(X).n_iter_ == 3
    for schedule in ("cosine", "auto"):  # "auto" is a cosine for images
        annealed = {**TINY, "lr_schedule": schedule}
        cosine = tmp_path / f"{schedule}.pt"
        NNEFH(max_iter=2, checkpoint_path=cosine, **annealed).fit(X)
        with pytest.raises(CheckpointError, match="max_iter: 2 -> 3"):
            NNEFH(max_iter=3, checkpoint_path=cosine, **annealed).fit(X)


def test_a_checkpoint_from_another_device_resumes_deterministically(tmp_path):
    """CPU and CUDA generator states differ in size; a run moved between devices must continue."""
    path = tmp_path / "ckpt.pt"
    NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X)
    state = torch.load(path, weights_only=True)
    state["trainer"]["generator"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA state
    state["trainer"]["generator_device"] = "cuda"
    torch.save(state, path)
    runs = []
    for _ in range(2):
        moved = tmp_path / f"moved{len(runs)}.pt"
        moved.write_bytes(path.read_bytes())
        runs.append(NNEFH(max_iter=4, checkpoint_path=moved, **TINY).fit(X))
    assert runs[0].n_iter_ == 4
    for a, b in zip(runs[0].module_.state_dict().values(), runs[1].module_.state_dict().values()):
        assert torch.equal(a, b)


def test_unstable_configuration_raises_at_the_update_it_diverges(tmp_path):
    """A unit step on the per-sample energy (the paper's step without its batch-size scaling)
    reflects the chain at every step; a large learning rate makes the energy landscape steep
    within a few updates."""
    # Unbounded chains (chain_bounds=None): the box would keep them from running away.
    est = NNEFH(max_iter=200, step_size=1.0, learning_rate=0.05, max_grad_norm=None, data_noise=0.0, energy_l2=0.0,
                chain_bounds=None, checkpoint_path=tmp_path / "ckpt.pt", checkpoint_every=1,
                **{**TINY, "langevin_steps": 10})
    with pytest.raises(DivergenceError) as info:
        est.fit(X)
    update = info.value.update
    assert est.history_[update - 1]["update"] == update
    bad = est.history_[update - 1]
    assert not np.isfinite(bad["loss"]) or max(abs(bad["chain_min"]), abs(bad["chain_max"])) > 100
    assert all(max(abs(h["chain_min"]), abs(h["chain_max"])) <= 100 and np.isfinite(h["loss"])
               for h in est.history_[: update - 1])
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert saved["trainer"]["n_updates"] == update - 1  # the last good state was kept
    assert "lower learning_rate" in str(info.value) or "learning_rate" in str(info.value)


def test_divergence_restore_lowers_the_learning_rate_and_finishes():
    # The paper's coupling: a configuration known to diverge within the first updates.
    est = NNEFH(max_iter=30, step_size=1.0, learning_rate=0.05, max_grad_norm=None, data_noise=0.0, energy_l2=0.0,
                chain_bounds=None, on_divergence="restore", coupling="paper", **{**TINY, "langevin_steps": 10})
    with pytest.warns(DivergenceWarning, match="Went back to update"):
        est.fit(X)  # a DivergenceError here fails the test: the restores must carry the fit through
    events = [h for h in est.history_ if h.get("event") == "restored"]
    assert events, "the configuration no longer diverges: the test needs another one"
    assert events[0]["lr_scale"] == 0.5
    assert est.n_iter_ == 30
    after = [h["lr"] for h in est.history_[est.history_.index(events[0]) + 1:] if "event" not in h]
    assert after and max(after) <= 0.5 * 0.05 * (1 + 1e-9)  # the updates after it ran at half the rate


def test_a_restored_fit_still_performs_max_iter_updates():
    """A restore rewinds the model to a snapshot; the discarded updates are run again, and the
    history says what happened (asked 20, the loop used to stop after 11)."""
    est = NNEFH(max_iter=20, step_size=1.0, learning_rate=0.05, max_grad_norm=None, data_noise=0.0, energy_l2=0.0,
                chain_bounds=None, replay_buffer=10_000, attention=True, downsample="maxpool", coupling="paper",
                on_divergence="restore", **{**TINY, "langevin_steps": 10})
    with pytest.warns(DivergenceWarning):
        est.fit(X)
    events = [h for h in est.history_ if h.get("event") == "restored"]
    updates = [h["update"] for h in est.history_ if "event" not in h]
    assert events, "the configuration no longer diverges: the test needs another one"
    assert est.n_iter_ == 20 and updates == list(range(1, 21))
    for event in events:
        assert event["restored_to"] < event["update"] and event["discarded"] == event["update"] - event["restored_to"]
    assert [e["lr_scale"] for e in events] == [0.5**k for k in range(1, len(events) + 1)]


def test_cli_train_interrupted_says_how_to_resume(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    common = ["train", "--model", "grbm", "--dataset", "digits", "--out", str(run), "--checkpoint-every", "2",
              "--set", "n_components=4", "--set", "log_partition=None"]
    assert cli_main(common + ["--max-iter", "2"]) == 0

    def interrupted_fit(self, X, y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(GRBM, "fit", interrupted_fit)
    assert cli_main(common + ["--max-iter", "4"]) == 130
    assert "the checkpoint holds update 2. Run the same command again to resume." in capsys.readouterr().err


def test_cli_train_resume_sample_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    common = ["train", "--model", "nnefh", "--dataset", "digits", "--out", str(run), "--checkpoint-every", "2",
              "--set", "n_filters=4", "--set", "n_statistics=8", "--set", "n_components=8",
              "--set", "gibbs_steps=1", "--set", "langevin_steps=2", "--set", "ais_steps=5", "--set", "ais_chains=4"]
    assert cli_main(common + ["--max-iter", "3"]) == 0
    assert (run / "checkpoint.pt").exists() and (run / "samples.png").exists()
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "nnefh" and config["params"]["n_filters"] == 4
    capsys.readouterr()
    assert cli_main(common + ["--max-iter", "5"]) == 0  # resumes: two more updates
    assert "resuming from the checkpoint at update 3" in capsys.readouterr().out
    lines = (run / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["update"] for line in lines] == [1, 2, 3, 4, 5]
    assert cli_main(["sample", str(run), "-n", "8", "--from-data", "--npy", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (8, 64)
    assert cli_main(["sample", str(run), "-n", "4", "--init", "noise", "--gibbs-steps", "3", "--langevin-steps",
                     "2", "--npy", str(tmp_path / "longer.npy")]) == 0
    assert not np.allclose(np.load(tmp_path / "longer.npy"), np.load(tmp_path / "s.npy")[:4])
    with pytest.raises(SystemExit, match="gibbs_steps must be a positive integer"):
        cli_main(["sample", str(run), "--gibbs-steps", "0"])
    capsys.readouterr()
    assert cli_main(["evaluate", str(run), "--probe-size", "300", "--n-samples", "100"]) == 0
    report = json.loads((run / "evaluation.json").read_text())
    assert 0.1 < report["probe_pixels"] <= 1.0 and "probe_U" in report and "frechet_pixels" in report


def test_a_resumed_fit_counts_its_progress_from_the_checkpoint(tmp_path, capsys):
    path = tmp_path / "ckpt.pt"
    NNEFH(max_iter=2, checkpoint_path=path, **TINY).fit(X)
    capsys.readouterr()
    NNEFH(max_iter=4, checkpoint_path=path, **{**TINY, "verbose": 1}).fit(X)
    err = capsys.readouterr().err
    assert "2/4" in err and "4/4" in err


def test_set_options_read_literals_and_keep_other_values_as_strings():
    assert parse_overrides(None) == {}
    parsed = parse_overrides(["replay_buffer=10000", "learning_rate=1e-3", "lr_schedule='cosine'",
                              "device=cuda", "checkpoint_path=runs/a.pt", "spectral_norm=True"])
    assert parsed == {"replay_buffer": 10000, "learning_rate": 1e-3, "lr_schedule": "cosine",
                      "device": "cuda", "checkpoint_path": "runs/a.pt", "spectral_norm": True}
    with pytest.raises(SystemExit, match="key=value"):
        parse_overrides(["replay_buffer"])


def _benchmark_script(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_resumed_stability_run_keeps_the_probes_made_before_it_stopped(tmp_path):
    stability = _benchmark_script("stability")
    args = ["--dataset", "digits", "--model", "ebm", "--probe-every", "2", "--probe-size", "60",
            "--out-dir", str(tmp_path), "--name", "run", "--set", "langevin_steps=2",
            "--set", f"checkpoint_path={tmp_path / 'run.pt'}", "--set", "checkpoint_every=2"]
    stability.main(args + ["--updates", "4"])
    first = json.loads((tmp_path / "run.json").read_text())
    assert [p["update"] for p in first["probe"]] == [2, 4]
    # A probe past the checkpoint (a run that went on after its last checkpoint) must be dropped.
    sidecar = tmp_path / "run.probes.json"
    sidecar.write_text(json.dumps(first["probe"] + [{"update": 5, "accuracy": 0.0, "seconds": 0.0}]))

    stability.main(args + ["--updates", "6"])
    resumed = json.loads((tmp_path / "run.json").read_text())
    assert [p["update"] for p in resumed["probe"]] == [2, 4, 6]
    assert resumed["probe"][:2] == first["probe"]
    assert resumed["updates_run"] == 6 and resumed["updates_this_process"] == 2
    assert [h["update"] for h in resumed["history"]] == [1, 2, 3, 4, 5, 6]

    # A fresh run under the same name does not inherit the old probes.
    (tmp_path / "run.pt").unlink()
    stability.main(args + ["--updates", "2"])
    fresh = json.loads((tmp_path / "run.json").read_text())
    assert [p["update"] for p in fresh["probe"]] == [2] and fresh["updates_this_process"] == 2


@pytest.mark.parametrize("option", ["--probe-every", "--updates", "--probe-size"])
def test_the_stability_script_rejects_a_count_below_one(option, capsys):
    stability = _benchmark_script("stability")
    with pytest.raises(SystemExit) as exc:
        stability.main(["--dataset", "digits", option, "0"])
    assert exc.value.code == 2
    assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


def test_the_paired_probe_comparison_of_two_checkpoints(tmp_path):
    from skefh.datasets import load_dataset
    from skefh.metrics import linear_probe

    compare = _benchmark_script("probe_difference")
    data = load_dataset("digits")
    short, long = tmp_path / "short.pt", tmp_path / "long.pt"
    NNEFH(max_iter=2, checkpoint_path=short, **TINY).fit(data.X_train)
    NNEFH(max_iter=6, checkpoint_path=long, **{**TINY, "random_state": 1}).fit(data.X_train)
    out = tmp_path / "difference.json"
    compare.main([str(short), str(long), "--dataset", "digits", "--probe-size", "200",
                  "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["updates"] == [2, 6]
    for accuracy, path in zip(result["accuracy"], (short, long)):
        est = NNEFH.from_checkpoint(path)
        expected = linear_probe(est.transform(data.X_train[:200]), data.y_train[:200],
                                est.transform(data.X_test[:200]), data.y_test[:200])
        assert accuracy == expected.accuracy
    assert result["difference"] == pytest.approx(result["accuracy"][1] - result["accuracy"][0])
    assert (result["only_b"] - result["only_a"]) == round(200 * result["difference"])
    assert result["only_a"] + result["only_b"] > 0 and 0 < result["p_value"] <= 1

    compare.main([str(long), str(long), "--dataset", "digits", "--probe-size", "200",
                  "--out", str(out)])
    same = json.loads(out.read_text())
    assert (same["only_a"], same["only_b"], same["p_value"]) == (0, 0, 1.0)

    # A joblib file of the same model (as the Table 3 script writes them) compares the same way.
    import joblib

    joblib.dump(NNEFH.from_checkpoint(long), tmp_path / "long.joblib")
    compare.main([str(short), str(tmp_path / "long.joblib"), "--dataset", "digits", "--probe-size", "200",
                  "--out", str(out)])
    from_joblib = json.loads(out.read_text())
    assert from_joblib["estimators"] == ["NNEFH", "NNEFH"]
    assert {k: from_joblib[k] for k in ("accuracy", "only_a", "only_b", "p_value")} == {
        k: result[k] for k in ("accuracy", "only_a", "only_b", "p_value")}
