"""benchmarks/latent_evidence.py on a tiny NNEFH: the numbers it promises, recounted by hand."""

import json
import math

import joblib
import numpy as np
import pytest
import torch
from test_sample_quality import _benchmark_module

from skefh import NNEFH
from skefh.datasets import load_digits
from skefh.metrics import ImageJudge

N = 40


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models: a second thread only contends for the cores (50x slower on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted(_one_torch_thread):
    """Digits, a judge trained for a few epochs and an NNEFH trained for a few updates (seconds)."""
    data = load_digits()
    judge = ImageJudge(data.image_shape, 10, epochs=3).fit(data.X_train, data.y_train)
    est = NNEFH(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=2, langevin_steps=3, max_iter=3,
                random_state=0).fit(data.X_train[:256])
    return data, judge, est


@pytest.fixture
def bench(monkeypatch):
    return _benchmark_module("latent_evidence", monkeypatch)


def _finite_quality(record):
    return all(math.isfinite(record[k]) for k in ("frechet_distance", "confidence", "coverage"))


def test_redraw_and_frozen_chains_take_the_same_langevin_steps(fitted, bench):
    data, judge, est = fitted
    record, samples = bench.redraw_against_frozen(est, judge, data.X_test[:60], N, seed=0)
    redraw, frozen = record["redraw"], record["frozen"]
    # sample()'s budget from noise: one and a half times the trained rounds (the model was
    # trained without a buffer).
    assert (redraw["gibbs_steps"], redraw["langevin_steps"]) == (3, 3)
    assert (frozen["gibbs_steps"], frozen["langevin_steps"]) == (1, 9)
    assert redraw["total_langevin_steps"] == frozen["total_langevin_steps"] == 9
    assert _finite_quality(redraw) and _finite_quality(frozen)
    assert redraw["n_samples"] == frozen["n_samples"] == N
    assert samples["redraw"].shape == samples["frozen"].shape == (N, 64)
    # The same seed: the redraw chain is sample()'s own, and the two differ only by the redraws.
    np.testing.assert_array_equal(samples["redraw"], est.sample(N, init="noise", random_state=0))
    assert not np.array_equal(samples["redraw"], samples["frozen"])
    # With one round there is no redraw to freeze: the two chains are the same chain.
    one, same = bench.redraw_against_frozen(est, judge, data.X_test[:60], N, seed=0, gibbs_steps=1,
                                            langevin_steps=5)
    np.testing.assert_array_equal(same["redraw"], same["frozen"])
    assert one["redraw"]["frechet_distance"] == one["frozen"]["frechet_distance"]
    assert one["frozen"]["total_langevin_steps"] == 5


def test_the_distance_ratio_is_the_quotient_of_the_two_distances(fitted, bench):
    data, _, est = fitted
    starts = {"noise": None, "data": data.X_test[:12]}
    record = bench.chain_distances(est, 10, starts, gibbs_steps=2, langevin_steps=3, seed=0)
    assert set(record) == {"noise", "data"}
    for start, targets in record.items():
        assert set(targets) == {"marginal", "fixed_latent"}
        for d in targets.values():
            assert d["n_chains"] == (10 if start == "noise" else 12)
            assert (d["gibbs_steps"], d["langevin_steps"]) == (2, 3)
            assert d["gibbs_langevin"] > 0 and d["langevin"] > 0
            assert d["ratio"] == pytest.approx(d["gibbs_langevin"] / d["langevin"], rel=1e-12)
        # The Gibbs-Langevin chain does not depend on what Langevin alone targets.
        assert targets["marginal"]["gibbs_langevin"] == targets["fixed_latent"]["gibbs_langevin"]


def test_algorithm2_shares_match_a_recount_of_the_judged_classes(fitted, bench):
    data, judge, est = fitted
    X, y = data.X_test[:25], data.y_test[:25]  # fewer images than chains: each starts one or two
    record = bench.algorithm2_chains(est, judge, X, y, N, seed=0)
    labels, first, last = (np.array(record[k]) for k in ("labels", "first_round", "last_round"))
    np.testing.assert_array_equal(labels, y[np.arange(N) % 25])
    assert first.shape == last.shape == (N,)
    assert 0.0 <= record["class_change"] <= 1.0
    assert record["class_change"] == np.mean(first != last)
    assert record["label_agreement"] == np.mean(last == labels)
    assert 0.0 <= record["noise_label_agreement"] <= 1.0
    # One entry per round of sample()'s budget from noise (1.5 x 2 trained rounds).
    assert record["class_change_by_round"][0] == 0.0 and len(record["class_change_by_round"]) == 3
    assert record["class_change_by_round"][-1] == record["class_change"]
    assert record["label_agreement_by_round"][-1] == record["label_agreement"]
    assert record["fd_posterior_vs_noise"] >= 0 and math.isfinite(record["fd_noise_vs_noise"])
    assert _finite_quality(record["quality"]) and record["quality"]["n_samples"] == N
    # Reusing the redrawing chains of (a) as the chains from noise is the same as drawing them.
    _, samples = bench.redraw_against_frozen(est, judge, X, N, seed=0)
    reused = bench.algorithm2_chains(est, judge, X, y, N, seed=0, noise_samples=samples["redraw"])
    assert reused["fd_posterior_vs_noise"] == record["fd_posterior_vs_noise"]
    # The last round is what sample(X=...) returns (Algorithm 2 as the estimator exposes it).
    posterior = est.sample(X=X[np.arange(N) % 25], init="noise", random_state=0)
    np.testing.assert_array_equal(judge.predict(posterior), last)
    # The frozen control passes through the first-round state: only the redraws separate them.
    frozen = np.array(record["last_round_frozen"])
    assert record["class_change_frozen"] == np.mean(first != frozen)
    assert record["label_agreement_frozen"] == np.mean(frozen == labels)
    round_one = est.sample(X=X[np.arange(N) % 25], init="noise", random_state=0, gibbs_steps=1, langevin_steps=3)
    np.testing.assert_array_equal(judge.predict(round_one), first)
    # One round: the first round is the last, nothing can change.
    single = bench.algorithm2_chains(est, judge, X, y, N, seed=0, gibbs_steps=1)
    assert single["class_change"] == single["class_change_frozen"] == 0.0 and single["gibbs_steps"] == 1


def test_the_benchmark_writes_every_measurement(fitted, bench, tmp_path, capsys):
    data, judge, est = fitted
    judge.save(tmp_path / "judges" / "digits.pt")  # the cached judge: no training in main()
    joblib.dump(est, tmp_path / "tiny-nnefh.joblib")
    results = bench.main([str(tmp_path / "tiny-nnefh.joblib"), "--dataset", "digits", "--n-samples", str(N),
                          "--n-reference", "30", "--n-chains", "8", "--distance-budget", "2x3",
                          "--langevin-steps", "4", "--out-dir", str(tmp_path / "out"),
                          "--judge-dir", str(tmp_path / "judges")])
    report = json.loads((tmp_path / "out" / "tiny-nnefh.json").read_text())
    assert report == json.loads(json.dumps(results))
    assert set(report) >= {"redraw_vs_frozen", "chain_distance", "algorithm2", "latent_usage", "redraw_shift",
                           "sampler"}
    assert report["sampler"]["gibbs_steps"] == 3 and report["sampler"]["langevin_steps"] == 4
    assert report["redraw_vs_frozen"]["frozen"]["langevin_steps"] == 12
    assert report["chain_distance"]["data"]["marginal"]["n_chains"] == 8
    assert report["algorithm2"]["langevin_steps"] == 4 and report["algorithm2"]["n_chains"] == N
    usage = report["latent_usage"]
    assert usage["n_units"] == 8 and usage["n_rows"] == 30
    assert all(0.0 <= usage[k] <= 1.0 for k in ("varying", "varying_std", "always_on", "always_off"))
    shift = report["redraw_shift"]
    assert shift["n_rows"] == 30 and shift["mean_shift"] >= 0.0 and shift["median_shift"] >= 0.0
    assert shift["conditional_spread"] == pytest.approx(math.sqrt(64 * est.module_.temperature / 2))
    assert shift["temperature"] == pytest.approx(est.module_.temperature)
    assert shift["mean_shift"] > 0.0 and shift["moving_temperature"] == pytest.approx(
        shift["temperature"] * shift["row_distance"] / shift["mean_shift"])
    out = capsys.readouterr().out
    assert "z frozen after the first draw" in out and "latent usage on 30 test images" in out
    assert "a redraw of z moves the mode of p(x | z)" in out and "would move it that far at temperature" in out


def test_a_model_without_a_latent_is_refused(bench, tmp_path):
    from skefh import EBM

    data = load_digits()
    joblib.dump(EBM(n_statistics=8, n_filters=4, langevin_steps=2, max_iter=1, random_state=0)
                .fit(data.X_train[:64]), tmp_path / "ebm.joblib")
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / "ebm.joblib"), "--dataset", "digits", "--judge-dir", str(tmp_path)])


def test_a_tabular_model_is_refused(bench, tmp_path, capsys):
    """Its rows need not be in the loader's units: judging its samples would mislead."""
    data = load_digits()
    joblib.dump(NNEFH(image_shape=None, n_components=4, n_statistics=4, max_iter=1, random_state=0)
                .fit(data.X_train[:64] * 16), tmp_path / "table.joblib")
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / "table.joblib"), "--dataset", "digits", "--judge-dir", str(tmp_path)])
    assert "tabular model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dequantised(_one_torch_thread):
    """A tiny NNEFH on digits as dequantised_pixels.py gives them (levels 0..16 plus noise), with a buffer."""
    data = load_digits()
    rng = np.random.RandomState(0)
    X = np.round(data.X_train[:256] * 16) + rng.uniform(size=(256, 64))
    est = NNEFH(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=2, langevin_steps=3, max_iter=3,
                replay_buffer=64, random_state=0).fit(X)
    return data, est


def test_a_dequantised_model_is_seen_in_the_loaders_units(dequantised, fitted, bench):
    data, est = dequantised
    view = bench.DequantisedPixels(est, 16)
    rows = data.X_test[:5]
    np.testing.assert_allclose(view.to_model(rows), rows * 16 + 0.5)
    np.testing.assert_allclose(view.to_loader(view.to_model(rows)), rows)
    raw = est.sample(6, X=rows[:2].repeat(3, 0) * 16 + 0.5, init="noise", random_state=0)
    mapped = view.sample(X=rows[:2].repeat(3, 0), init="noise", random_state=0)
    np.testing.assert_allclose(mapped, np.clip((raw - 0.5) / 16, 0, 1))
    assert mapped.min() >= 0.0 and mapped.max() <= 1.0
    frames = view.sample_chains(X=rows[:2], init="noise", random_state=0)
    np.testing.assert_allclose(frames[:, -1], view.sample(X=rows[:2], init="noise", random_state=0))
    # Levels up to 17 (16 plus the noise), against the loader's pixels in [0, 1].
    assert bench.pixel_upper_bound(est) > 16 and bench.pixel_upper_bound(fitted[2]) == pytest.approx(1)


def test_the_benchmark_reads_a_dequantised_model_from_its_buffer(dequantised, fitted, bench, tmp_path):
    data, est = dequantised
    _, judge, _ = fitted
    judge.save(tmp_path / "judges" / "digits.pt")
    joblib.dump(est, tmp_path / "deq.joblib")
    common = ["--dataset", "digits", "--n-samples", "20", "--n-reference", "30", "--n-chains", "8",
              "--distance-budget", "2x3", "--judge-dir", str(tmp_path / "judges"), "--out-dir", str(tmp_path / "out")]
    # Its pixels are levels up to 17, not the loader's [0, 1]: judged as they are, they would mislead.
    with pytest.raises(SystemExit):
        bench.main([str(tmp_path / "deq.joblib"), *common])
    results = bench.main([str(tmp_path / "deq.joblib"), "--dequantised", "--init", "buffer", *common])
    assert results["init"] == "buffer" and results["dequantised"]
    # (a) runs sample()'s budget from the buffer: M x L redrawn against one round of M * L.
    settings = est.sampling_settings(init="buffer")
    redraw, frozen = results["redraw_vs_frozen"]["redraw"], results["redraw_vs_frozen"]["frozen"]
    assert (redraw["gibbs_steps"], redraw["langevin_steps"]) == (settings.n_gibbs, settings.n_langevin)
    assert frozen["total_langevin_steps"] == settings.n_gibbs * settings.n_langevin
    # The metrics on the fitted model get the test images in its own units.
    rows = data.X_test[:30] * 16 + 0.5
    assert results["redraw_shift"]["row_distance"] == pytest.approx(
        bench.redraw_shift(est, rows, random_state=0).row_distance)
    assert results["latent_usage"] == bench.latent_usage(est, rows).to_dict()
    # Both chains of (a) start from the buffer, the redrawing one as sample() does.
    view = bench.DequantisedPixels(est, 16)
    _, samples = bench.redraw_against_frozen(view, judge, data.X_test[:30], 20, 0, init="buffer")
    np.testing.assert_array_equal(samples["redraw"], view.sample(20, init="buffer", random_state=0))
