"""Inputs whose magnitudes overflow the models' float32 arithmetic are refused by name."""

import numpy as np
import pytest

from skefh import EBM, GRBM, NNEFH

MODELS = {"nnefh": NNEFH, "ebm": EBM, "grbm": GRBM}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_magnitudes_that_overflow_the_model_are_refused_by_name_not_returned_as_nan(name):
    X = np.random.default_rng(0).normal(size=(60, 3))
    est = MODELS[name](max_iter=2, log_partition=None, random_state=0).fit(X)
    far = np.array([[1e300, 0.0, 0.0], [0.1, 0.2, 0.3]])
    for method in (est.score_samples, est.transform):
        with pytest.raises(ValueError, match="magnitude up to 1e[+]300"):
            method(far)
    assert np.all(np.isfinite(est.score_samples(np.array([[1e6, 0.0, 0.0]]))))
    with pytest.raises(ValueError, match="beyond float32's range"):
        MODELS[name](max_iter=1).fit(np.vstack([X, far]))
