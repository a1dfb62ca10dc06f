"""One fitted estimator used from several threads, and shared by a parallel cross-validation.

``transform``, ``sample``, ``score_samples`` and ``partial_fit`` evaluate or train one torch
module; freezing it for sampling (``skefh.nn.base.sampling_mode``) used to save and restore its
parameters' ``requires_grad`` flags without a lock, so two threads could leave every parameter
frozen and the next ``partial_fit`` raised "element 0 of tensors does not require grad".
"""

import threading
import time

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skefh import EBM, GRBM, NNEFH
from skefh.nn.base import sampling_mode

X, Y = load_digits(return_X_y=True)
X, Y = X[:200], Y[:200]
TINY = dict(gibbs_steps=1, langevin_steps=3, batch_size=32, max_iter=2, random_state=0, device="cpu")
MAKERS = {
    "nnefh": lambda: NNEFH(n_components=8, n_statistics=8, n_filters=4, log_partition=None, **TINY),
    "ebm": lambda: EBM(n_statistics=8, n_filters=4, log_partition=None,
                       **{k: v for k, v in TINY.items() if k != "gibbs_steps"}),
    "grbm": lambda: GRBM(n_components=6, log_partition="exact", **TINY),
}


def _run_in_threads(jobs, n_rounds=3):
    """Run every job ``n_rounds`` times, all at once, from one thread each; re-raise any error."""
    errors, results = [], {}
    barrier = threading.Barrier(len(jobs))

    def worker(name, job):
        try:
            barrier.wait()
            results[name] = [job() for _ in range(n_rounds)]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _frozen_state(module):
    return [p.requires_grad for p in module.parameters()], module.training


@pytest.mark.parametrize("name", MAKERS)
def test_threads_reading_one_estimator_get_the_single_threaded_results(name):
    est = MAKERS[name]().fit(X)
    flags = _frozen_state(est.module_)
    jobs = {
        "transform": lambda: est.transform(X[:50]),
        "sample": lambda: est.sample(8, random_state=3),
        "score_samples": lambda: est.score_samples(X[:20]),
        "transform again": lambda: est.transform(X[50:100]),
    }
    if name != "ebm":
        jobs["sample from data"] = lambda: est.sample(X=X[:4], random_state=4)
    expected = {key: job() for key, job in jobs.items()}
    results = _run_in_threads(jobs)
    for key, outputs in results.items():
        for output in outputs:
            np.testing.assert_array_equal(output, expected[key], err_msg=key)
    assert _frozen_state(est.module_) == flags
    est.partial_fit(X)  # still trainable


def test_partial_fit_in_threads_beside_readers_trains_as_in_sequence():
    est = MAKERS["nnefh"]().fit(X)
    reference = clone(est).fit(X)
    for _ in range(2):
        reference.partial_fit(X)
    jobs = {
        "train a": lambda: est.partial_fit(X),
        "train b": lambda: est.partial_fit(X),
        "transform": lambda: est.transform(X[:50]),
        "sample": lambda: est.sample(8, random_state=3),
        "score": lambda: est.score_samples(X[:20]),
    }
    results = _run_in_threads(jobs, n_rounds=1)
    assert all(p.requires_grad for p in est.module_.parameters())
    assert est.n_iter_ == reference.n_iter_
    for a, b in zip(est.module_.state_dict().values(), reference.module_.state_dict().values()):
        assert torch.equal(a, b)
    assert np.all(np.isfinite(results["score"][0]))
    est.partial_fit(X)


def test_sampling_mode_nested_across_threads_restores_the_flags():
    module = torch.nn.Linear(3, 2)
    module.bias.requires_grad_(False)  # one flag that is not the default
    entered, release = threading.Event(), threading.Event()

    def hold():
        with sampling_mode(module):
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    done = threading.Event()

    def second():
        with sampling_mode(module):
            assert not module.weight.requires_grad
        done.set()

    other = threading.Thread(target=second)
    other.start()
    time.sleep(0.2)  # the second thread asks while the first holds the module frozen
    release.set()
    holder.join()
    other.join()
    assert done.is_set()
    assert module.weight.requires_grad and not module.bias.requires_grad and module.training


def _fold_score(est, train, test):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    clf.fit(est.transform(X[train]), Y[train])
    return clf.score(est.transform(X[test]), Y[test])


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_a_fitted_model_shared_by_a_parallel_cross_validation(backend):
    est = MAKERS["nnefh"]().fit(X)
    folds = list(KFold(4, shuffle=True, random_state=0).split(X))
    sequential = [_fold_score(est, train, test) for train, test in folds]
    with joblib.parallel_backend(backend, n_jobs=2):
        parallel = joblib.Parallel()(joblib.delayed(_fold_score)(est, train, test) for train, test in folds)
    assert parallel == sequential
    assert sum(sequential) / len(sequential) > 0.3  # the features carry the digit (chance 0.1)
    est.partial_fit(X)
