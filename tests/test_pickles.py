"""Pickled estimators: across devices, without the optimizer's state, with parametrized modules."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skefh import EBM, NNEFH
from skefh.estimators import DeviceWarning

SMALL = dict(n_components=16, n_statistics=16, n_filters=4, gibbs_steps=1, langevin_steps=3,
             max_iter=3, batch_size=32, random_state=0, device="cpu", ais_chains=8, ais_steps=50)
X = load_digits().data[:200]


def _small(cls, **params):
    return cls(**{k: v for k, v in {**SMALL, **params}.items() if k in cls().get_params()})


def _assert_continues_as_the_original(est, copy):
    """The original, continued with its optimizer reset, is what the copy continues as."""
    est._trainer_state = {**est._trainer_state, "optimizer": None}
    est.partial_fit(X)
    copy.partial_fit(X)
    for a, b in zip(est.module_.state_dict().values(), copy.module_.state_dict().values()):
        assert torch.equal(a, b)


def test_pickle_asks_for_cuda_on_a_cpu_machine(monkeypatch):
    est = NNEFH(**SMALL).fit(X)
    blob = pickle.dumps(est)
    est_cuda = pickle.loads(blob)
    est_cuda.device = "cuda"  # as if it had been fitted with device="cuda" on a GPU machine
    blob = pickle.dumps(est_cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning, match="CUDA is not available"):
        loaded = pickle.loads(blob)
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


def test_a_pickle_samples_as_before_and_partial_fit_continues_with_a_fresh_optimizer():
    est = NNEFH(**{**SMALL, "log_partition": None}).fit(X)
    copy = pickle.loads(pickle.dumps(est))
    # The weights are stored once (in module_), the optimizer's moments not at all.
    assert copy._trainer_state["model"] is None and copy._trainer_state["optimizer"] is None
    np.testing.assert_array_equal(copy.sample(8, random_state=3), est.sample(8, random_state=3))
    _assert_continues_as_the_original(est, copy)


@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_a_spectrally_normalised_model_pickles_and_continues_as_the_original(cls):
    # torch refuses to pickle a parametrized module; the estimator must still pickle.
    est = _small(cls, spectral_norm=True, log_partition=None).fit(X)
    est.set_params(n_filters=8)  # acts at the next fit: the pickle keeps the fitted network
    copy = pickle.loads(pickle.dumps(est))
    assert torch.nn.utils.parametrize.is_parametrized(copy.module_.statistics.fc)
    np.testing.assert_array_equal(copy.transform(X), est.transform(X))
    np.testing.assert_array_equal(copy.free_energy(X[:10]), est.free_energy(X[:10]))
    # Far outside the training range, where the EBM's containment term (not a weight) acts.
    far = 3 * X[:10] - 2 * X.max()
    np.testing.assert_array_equal(copy.free_energy(far), est.free_energy(far))
    np.testing.assert_array_equal(copy.sample(4, random_state=3), est.sample(4, random_state=3))
    est.set_params(n_filters=SMALL["n_filters"])
    copy.set_params(n_filters=SMALL["n_filters"])
    _assert_continues_as_the_original(est, copy)  # the power-iteration vectors travel too


def test_a_whitened_model_pickles_with_its_running_statistics_and_continues_as_the_original():
    est = NNEFH(**{**SMALL, "coupling": "bounded", "whiten_statistics": True, "log_partition": None}).fit(X)
    whitener = est.module_.whitener.clone()
    assert not torch.allclose(whitener, torch.eye(len(whitener)))  # the running whitener was set
    copy = pickle.loads(pickle.dumps(est))
    assert torch.equal(copy.module_.whitener, whitener)
    assert torch.equal(copy.module_.statistics_covariance, est.module_.statistics_covariance)
    est.set_params(features="eta")
    copy.set_params(features="eta")
    np.testing.assert_array_equal(copy.transform(X), est.transform(X))
    _assert_continues_as_the_original(est, copy)
