"""The example scripts end to end on digits with a tiny budget; chain distances; presets."""

import importlib.util
import json
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skefh import NNEFH
from skefh.metrics import chain_distance, linear_probe
from skefh.presets import estimator_class, make_estimator, preset_params

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
X = load_digits().data[:300]


def _load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table3_and_paper_figures_run_on_digits(tmp_path, capsys):
    table3 = _load_example("table3_linear_probe")
    table3.main(["--dataset", "digits", "--max-iter", "2", "--out", str(tmp_path), "--verbose", "0"])
    report = json.loads((tmp_path / "table3_digits_cpu.json").read_text())
    rows = {"NN-EFH U(x)", "NN-EFH eta(x)", "NN-EFH p(z|x)", "untrained network U(x)", "untrained network eta(x)",
            "untrained network p(z|x)", "EBM penultimate U(x)", "GRBM p(h|v)", "raw pixels"}
    assert set(report["accuracy"]) == rows
    assert all(0.1 < acc <= 1.0 for acc in report["accuracy"].values())
    assert report["accuracy"]["raw pixels"] > 0.9  # digits are easy for a linear model
    assert "| NN-EFH U(x) |" in capsys.readouterr().out
    for model in ("nnefh", "ebm", "grbm"):
        assert (tmp_path / f"{model}.joblib").exists()
        assert (tmp_path / f"samples_digits_{model}.png").exists()

    figures = _load_example("paper_figures")
    out = tmp_path / "figures"
    figures.main(["--models-from", str(tmp_path), "--dataset", "digits", "--gibbs-steps", "2",
                  "--langevin-steps", "3", "--out", str(out)])
    for name in ("fig3_samples_nnefh.png", "fig5a_chains.png", "fig5b_neighbours.png", "figures.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "figures.json").read_text())
    assert summary["distance_trained"]["ratio"] > 0


def test_table3_probes_a_model_fitted_elsewhere(tmp_path, capsys):
    from skefh.datasets import load_digits as load_split

    fitted = make_estimator("nnefh", "cpu", max_iter=1, random_state=0).fit(load_split().X_train)
    joblib.dump(fitted, tmp_path / "mine.joblib")
    table3 = _load_example("table3_linear_probe")
    table3.main(["--dataset", "digits", "--models", "nnefh", "--fitted", f"nnefh={tmp_path / 'mine.joblib'}",
                 "--out", str(tmp_path / "t3"), "--verbose", "0"])
    report = json.loads((tmp_path / "t3" / "table3_digits_cpu.json").read_text())
    assert "fit_nnefh" not in report["seconds"]  # nothing was trained
    assert report["fitted_elsewhere"] == {"nnefh": str(tmp_path / "mine.joblib")}
    assert report["settings"]["nnefh"]["max_iter"] == "1"
    # The untrained rows are the fitted estimator's own network (here the cpu preset's), re-initialised.
    untrained = make_estimator("nnefh", "cpu", max_iter=0, random_state=0).fit(load_split().X_train)
    expected = linear_probe(untrained.transform(load_split().X_train), load_split().y_train,
                            untrained.transform(load_split().X_test), load_split().y_test)
    assert report["accuracy"]["untrained network U(x)"] == pytest.approx(expected.accuracy)
    with pytest.raises(SystemExit):
        table3.main(["--dataset", "digits", "--fitted", "vae=x.joblib"])


def test_digits_quickstart_runs(tmp_path, capsys):
    quickstart = _load_example("digits_quickstart")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the README's main job prints no warning
        quickstart.main(["--out", str(tmp_path / "s.png"), "--max-iter", "2"])
    assert (tmp_path / "s.png").exists()
    assert "raw pixels" in capsys.readouterr().out


def _no_interaction_model():
    """W = 0: eta is constant, so the latent never changes the visible dynamics."""
    est = NNEFH(n_components=4, n_statistics=4, image_shape=None, gibbs_steps=1, langevin_steps=5,
                step_size=0.1, temperature=0.01, max_iter=0, random_state=0,
                log_partition=None, device="cpu").fit(np.random.default_rng(0).normal(size=(50, 3)))
    with torch.no_grad():
        est.module_.weight.zero_()
    return est


def test_chain_distance_is_one_when_the_latent_does_not_matter():
    est = _no_interaction_model()
    # One Gibbs round: Gibbs-Langevin is exactly L Langevin steps with the same noise.
    one = chain_distance(est, 200, gibbs_steps=1, langevin_steps=40, target="marginal", random_state=0)
    assert one.ratio == pytest.approx(1.0, abs=1e-6)
    # Several rounds: the latent draws shift the noise stream, but the law is the same.
    many = chain_distance(est, 2000, gibbs_steps=5, langevin_steps=8, target="fixed_latent", random_state=0)
    assert many.ratio == pytest.approx(1.0, abs=0.03)
    assert many.gibbs_langevin > 0 and many.n_chains == 2000


def test_chain_distance_keeps_both_chains_in_the_chain_box():
    """An image model clips its chains to the pixel box: Langevin alone must too, from the same
    clipped start, or the latent-free ratio falls below 1 (it travelled outside the box)."""
    from sklearn.datasets import load_digits

    images = load_digits().data[:40]
    est = NNEFH(n_components=4, n_statistics=4, n_filters=2, image_shape=(1, 8, 8), gibbs_steps=1,
                langevin_steps=20, step_size=0.05, temperature=1e-3, max_iter=0, random_state=0,
                log_partition=None, device="cpu").fit(images)
    assert est.sampling_settings().bounds is not None
    with torch.no_grad():
        est.module_.weight.zero_()
    result = chain_distance(est, 64, target="marginal", temperature=1e-16, random_state=0)
    assert result.ratio == pytest.approx(1.0, rel=1e-5)


def test_chain_distance_needs_a_latent_model():
    ebm = make_estimator("ebm", "cpu", n_filters=4, n_statistics=4, max_iter=0, log_partition=None).fit(X)
    with pytest.raises(ValueError, match="no latent layer"):
        chain_distance(ebm)


def test_sample_chains_shape_and_last_frame():
    est = NNEFH(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=4, langevin_steps=2, max_iter=2,
                random_state=0, log_partition=None, device="cpu").fit(X)
    chains = est.sample_chains(X=X[:4], random_state=1)
    # Trained on chains from noise (the image default), it samples from noise with one and a
    # half times the training rounds: the start, then 6 rounds.
    assert chains.shape == (4, 1 + 6, 64)
    np.testing.assert_allclose(chains[:, -1], est.sample(X=X[:4], random_state=1), rtol=1e-5, atol=1e-4)


def test_presets():
    # A fresh dict per call: changing one does not change the preset.
    preset_params("nnefh", "paper")["max_iter"] = 3
    assert preset_params("nnefh", "paper")["max_iter"] != 3
    assert make_estimator("grbm", "cpu", n_components=7).n_components == 7
    with pytest.raises(ValueError, match="unknown preset"):
        preset_params("nnefh", "gpu")
    with pytest.raises(ValueError, match="unknown model"):
        make_estimator("vae")


@pytest.mark.parametrize("model", ["nnefh", "ebm"])
def test_the_paper_presets_keep_unbounded_chains_and_the_cpu_presets_box_them(model):
    for preset in ("paper", "paper-original", "cpu-paper"):
        assert make_estimator(model, preset).chain_bounds is None, preset
    for preset in ("cpu", "cpu-short-run"):
        assert make_estimator(model, preset).chain_bounds == "auto", preset
    assert make_estimator(model, "cpu").replay_buffer > 0


@pytest.mark.parametrize("model", ["nnefh", "ebm"])
def test_the_short_run_preset_restarts_every_chain_and_anneals_the_rate(model, monkeypatch):
    """A fit with the preset (network and run shrunk) starts every training chain from noise and
    records a learning rate that falls from the preset's to near 0 (at a constant rate its
    samples collapsed onto a few classes after 3,500 updates; generation page)."""
    from skefh.samplers import replay

    starts = []
    real = replay.training_negatives

    def recording(*args, x_init=None, **kwargs):
        starts.append(x_init)
        return real(*args, x_init=x_init, **kwargs)

    monkeypatch.setattr(replay, "training_negatives", recording)
    small = dict(n_statistics=8, n_filters=4, langevin_steps=2, batch_size=16, max_iter=6, device="cpu",
                 random_state=0, log_partition=None)
    if model == "nnefh":
        small.update(n_components=8, gibbs_steps=1)
    est = make_estimator(model, "cpu-short-run", **small).fit(X[:64])
    rates = [h["lr"] for h in est.history_]
    preset_rate = make_estimator(model, "cpu-short-run").learning_rate
    assert rates[0] == pytest.approx(preset_rate) and rates[-1] < 0.1 * preset_rate
    assert all(b < a for a, b in zip(rates, rates[1:]))
    assert len(starts) == 6 and all(x is None for x in starts)  # fresh noise at every update


@pytest.mark.parametrize("model", ["nnefh", "ebm", "grbm"])
def test_the_image_defaults_train_the_short_run_recipe_and_the_paper_preset_keeps_the_papers_scale(model):
    """The defaults for 28x28 images resolve to what the ``cpu-short-run`` preset trains (the
    docs present them as that recipe), and the ``paper`` preset still pins the paper's sizes,
    which the defaults no longer give."""
    def resolved(est):
        est.image_shape_ = (1, 28, 28)
        return est._resolve_params()

    default = resolved(estimator_class(model)())
    short_run = resolved(make_estimator(model, "cpu-short-run"))
    assert default == short_run
    paper = resolved(make_estimator(model, "paper"))
    assert paper["max_iter"] == 50_000
    expected = {"nnefh": dict(n_filters=128, n_statistics=1024, n_components=2048, gibbs_steps=5, langevin_steps=60),
                "ebm": dict(n_filters=128, n_statistics=1024, langevin_steps=100),
                "grbm": dict(n_components=4096, gibbs_steps=100, batch_size=512)}[model]
    assert {k: paper[k] for k in expected} == expected
