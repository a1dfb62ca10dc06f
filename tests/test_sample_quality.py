"""The sample-quality judge: a classifier trained on the data, and the numbers it reports."""

import numpy as np
import pytest

from skefh.datasets import load_digits
from skefh.metrics import ImageJudge
from skefh.metrics.sample_quality import class_coverage, mean_confidence, sample_quality


def test_coverage_counts_the_classes_the_predictions_spread_over():
    one_class = np.tile([0.1, 0.7, 0.2], (50, 1))
    assert class_coverage(one_class) == 1.0
    even = np.eye(5)[np.arange(100) % 5] * 0.9 + 0.02
    assert class_coverage(even) == pytest.approx(5.0)
    skewed = np.eye(2)[[0] * 90 + [1] * 10]
    assert 1.0 < class_coverage(skewed) < 2.0


def test_confidence_is_the_mean_largest_probability():
    assert mean_confidence([[0.6, 0.4], [0.1, 0.9]]) == pytest.approx(0.75)


@pytest.mark.parametrize("bad, message", [
    (np.ones((3, 1)), "n_classes >= 2"), (np.full((2, 2), 0.7), "sum to 1"),
    (np.array([[np.nan, 1.0]]), "finite"), (np.array([[-0.5, 1.5]]), "non-negative"),
])
def test_probabilities_are_validated(bad, message):
    with pytest.raises(ValueError, match=message):
        class_coverage(bad)


def test_sample_quality_needs_one_feature_row_per_probability_row():
    with pytest.raises(ValueError, match="one row per row"):
        sample_quality(np.zeros((4, 3)), np.full((5, 2), 0.5), np.zeros((6, 3)))


@pytest.fixture(scope="module")
def digits_judge():
    data = load_digits()
    return data, ImageJudge(data.image_shape, 10, epochs=40).fit(data.X_train, data.y_train)


def test_the_judge_puts_real_images_near_the_floor_and_noise_near_the_ceiling(digits_judge):
    data, judge = digits_judge
    assert judge.accuracy(data.X_test, data.y_test) > 0.93
    reference = data.X_test[:225]
    real = judge.evaluate(data.X_test[225:450], reference)
    noise = judge.evaluate(np.random.default_rng(0).uniform(0, 1, (225, 64)), reference)
    assert real.frechet_distance < 0.1 * noise.frechet_distance
    assert real.confidence > 0.9 and noise.confidence < real.confidence - 0.15
    assert real.coverage > 9.0
    repeated = judge.evaluate(np.repeat(data.X_test[:1], 225, axis=0), reference)
    assert repeated.coverage == 1.0 and repeated.class_counts.count(0) == 9
    assert repeated.frechet_distance > 5 * real.frechet_distance


def test_the_judge_clips_inputs_to_the_training_range_and_validates_shapes(digits_judge, tmp_path):
    data, judge = digits_judge
    x = data.X_test[:5]
    np.testing.assert_allclose(judge.predict_proba(x * 0 + 7.0), judge.predict_proba(x * 0 + 1.0))
    with pytest.raises(ValueError, match=r"shape \(n, 64\)"):
        judge.features(np.zeros((2, 63)))
    with pytest.raises(ValueError, match="NaN"):
        judge.features(np.full((2, 64), np.nan))
    with pytest.raises(RuntimeError, match="not trained"):
        ImageJudge((1, 8, 8), 10).features(x)
    loaded = ImageJudge.load(judge.save(tmp_path / "judge.pt"))
    np.testing.assert_allclose(loaded.features(x), judge.features(x), rtol=1e-6)
