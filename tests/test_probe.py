"""The linear-probe protocol and the paired comparison of two probes."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skefh.metrics import ProbeResult, linear_probe, paired_accuracy_test, probe_predictions, probe_table

HYPOTHESIS = settings(max_examples=40, deadline=None)


def test_linear_probe_separable_data():
    rng = np.random.default_rng(6)
    n_per, d = 100, 10
    centres = rng.normal(size=(3, d)) * 10
    y = np.repeat(np.arange(3), n_per)
    x = centres[y] + rng.normal(size=(3 * n_per, d))
    x = np.hstack([x, np.full((len(x), 1), 7.0)])  # constant column must be harmless
    perm = rng.permutation(len(x))
    tr, te = perm[:200], perm[200:]
    res = linear_probe(x[tr], y[tr], x[te], y[te])
    assert isinstance(res, ProbeResult)
    assert res.accuracy == 1.0 and res.train_accuracy == 1.0
    assert (res.n_train, res.n_test, res.n_features) == (200, 100, d + 1)
    assert res.seconds >= 0
    assert set(res.to_dict()) == {
        "accuracy", "train_accuracy", "n_train", "n_test", "n_features", "seconds"
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.accuracy = 0.0


def test_linear_probe_reports_test_not_train_accuracy():
    rng = np.random.default_rng(13)
    y = np.tile([0, 1], 40)
    x = rng.normal(size=(80, 4)) + 6.0 * y[:, None]
    res = linear_probe(x[:40], y[:40], x[40:], 1 - y[40:])  # test labels flipped
    assert res.train_accuracy == 1.0
    assert res.accuracy == 0.0


def test_linear_probe_noise_labels_near_chance():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1600, 20))
    y = np.tile([0, 1], 800)
    res = linear_probe(x[:800], y[:800], x[800:], y[800:], n_jobs=1)
    assert 0.3 < res.accuracy < 0.7


def test_linear_probe_string_labels_and_tensors():
    rng = np.random.default_rng(8)
    y = np.array(["cat", "dog"] * 30)
    x = rng.normal(size=(60, 3)) + 5.0 * (y == "dog")[:, None]
    res = linear_probe(torch.tensor(x[:40]), y[:40], x[40:], y[40:])
    assert res.accuracy == 1.0


def test_linear_probe_validation():
    x = np.random.default_rng(9).normal(size=(20, 3))
    y = np.tile([0, 1], 10)
    with pytest.raises(ValueError, match="columns"):
        linear_probe(x, y, x[:, :2], y)
    with pytest.raises(ValueError, match="labels for"):
        linear_probe(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="labels for"):
        linear_probe(x, y, x, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        linear_probe(x, np.zeros(20), x, y)
    with pytest.raises(ValueError, match="2-D"):
        linear_probe(x[:, 0], y, x, y)
    with pytest.raises(ValueError, match="1-D"):
        linear_probe(x, y[:, None], x, y)
    bad = x.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        linear_probe(x, y, bad, y)


def test_probe_predictions_give_the_linear_probe_accuracy():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, size=400)
    x = rng.normal(size=(400, 6)) + 1.2 * np.eye(6)[y]  # overlapping classes: accuracy well below 1
    result = linear_probe(x[:250], y[:250], x[250:], y[250:])
    predictions = probe_predictions(x[:250], y[:250], x[250:])
    assert predictions.shape == (150,)
    assert 0.4 < result.accuracy < 0.95
    assert np.mean(predictions == y[250:]) == result.accuracy
    with pytest.raises(ValueError, match="columns"):
        probe_predictions(x[:250], y[:250], x[250:, :3])


def _mcnemar_brute_force(only_a, only_b):
    """Two-sided exact p-value by enumerating every split of the discordant items."""
    from math import comb

    n = only_a + only_b
    probabilities = [comb(n, k) / 2**n for k in range(n + 1)]
    observed = probabilities[only_a]
    return min(1.0, sum(p for p in probabilities if p <= observed + 1e-15))


@HYPOTHESIS
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_paired_accuracy_test_against_enumeration(outcomes):
    y = np.zeros(len(outcomes), dtype=int)
    a = np.array([0 if right else 1 for right, _ in outcomes])
    b = np.array([0 if right else 2 for _, right in outcomes])
    r = paired_accuracy_test(a, b, y)
    only_a = sum(ra and not rb for ra, rb in outcomes)
    only_b = sum(rb and not ra for ra, rb in outcomes)
    assert (r.only_a, r.only_b, r.n) == (only_a, only_b, len(outcomes))
    assert r.accuracy_a == np.mean([ra for ra, _ in outcomes])
    assert r.difference == pytest.approx(r.accuracy_b - r.accuracy_a)
    assert r.p_value == pytest.approx(_mcnemar_brute_force(only_a, only_b), rel=1e-9)


def test_paired_accuracy_test_known_values_and_validation():
    y = np.zeros(30, dtype=int)
    a = np.zeros(30, dtype=int)
    b = np.r_[np.ones(10, dtype=int), np.zeros(20, dtype=int)]  # b wrong on 10 items a gets right
    assert paired_accuracy_test(a, b, y).p_value == pytest.approx(2 * 0.5**10)
    assert paired_accuracy_test(a, a, y).p_value == 1.0
    with pytest.raises(ValueError, match="same length"):
        paired_accuracy_test(a, b[:-1], y)
    with pytest.raises(ValueError, match="1-D"):
        paired_accuracy_test(a[:, None], b, y)
    with pytest.raises(ValueError, match="no test items"):
        paired_accuracy_test([], [], [])


def test_probe_table_rows():
    r1 = ProbeResult(accuracy=0.91234, train_accuracy=1.0, n_train=5, n_test=5, n_features=784,
                     seconds=0.1)
    r2 = ProbeResult(accuracy=0.5, train_accuracy=0.6, n_train=5, n_test=5, n_features=64,
                     seconds=0.1)
    table = probe_table({"pixels": r1, "NN-EFH h": r2})
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| features")
    assert lines[2] == "| pixels | 91.2 | 784 |"
    assert lines[3] == "| NN-EFH h | 50.0 | 64 |"
    with pytest.raises(TypeError):
        probe_table({"x": 0.5})
