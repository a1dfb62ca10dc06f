"""When parameters act: scikit-learn's convention, stated in the docstrings and checked here.

A parameter changed with ``set_params`` takes effect at the next ``fit``; what ``fit`` and
``partial_fit`` read for training (rates, penalties, the training sampler) is read again by each
call; ``sample`` draws with the sampler the model was last trained with, and its own keyword
arguments are how to change that at sample time. Arguments a method cannot use raise.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

from skefh import EBM, GRBM, NNEFH
from skefh.estimators import LikelihoodError
from skefh.training import Callback

X = load_digits().data[:128]
TINY = dict(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=3, batch_size=32,
            max_iter=2, random_state=0, device="cpu", log_partition=None)
TINY_EBM = {k: v for k, v in TINY.items() if k not in ("n_components", "gibbs_steps")}


class CountUpdates(Callback):
    def __init__(self):
        self.n = 0

    def on_update_end(self, trainer, record):
        self.n += 1


@pytest.mark.parametrize(
    "make",
    [lambda cb: NNEFH(**{**TINY, "log_partition": "exact"}, callbacks=[cb]),
     lambda cb: EBM(**{**TINY_EBM, "log_partition": "exact"}, callbacks=[cb]),
     lambda cb: GRBM(n_components=21, gibbs_steps=1, langevin_steps=2, batch_size=32, max_iter=2,
                     device="cpu", log_partition="exact", callbacks=[cb])],
    ids=["nnefh", "ebm", "grbm"],
)
def test_an_intractable_exact_log_partition_is_refused_before_any_update(make):
    counter = CountUpdates()
    est = make(counter)
    with pytest.raises(ValueError, match="log_partition='exact' is not tractable"):
        est.fit(X)
    assert counter.n == 0
    with pytest.raises(ValueError, match="log_partition='exact' is not tractable"):
        make(counter).partial_fit(X)
    assert counter.n == 0


def test_exact_log_partition_of_a_small_grbm_is_computed_by_fit():
    est = GRBM(n_components=6, gibbs_steps=1, langevin_steps=2, batch_size=32, max_iter=2, device="cpu",
               random_state=0, log_partition="exact").fit(X)
    assert np.isfinite(est.log_partition_) and est.log_partition_std_ == 0.0


@pytest.mark.parametrize("name", ["nnefh", "ebm"])
def test_sampler_parameters_set_after_fit_act_at_the_next_fit(name):
    """temperature, step_size, latent_temperature and chain_bounds, set after fit, change neither
    sample, transform nor score_samples until the next fit; sample's own arguments act now."""
    make = {"nnefh": lambda **kw: NNEFH(**{**TINY, **kw}), "ebm": lambda **kw: EBM(**{**TINY_EBM, **kw})}[name]
    est = make().fit(X)
    before = est.sample(4, init="noise", random_state=1)
    features, scores = est.transform(X[:8]), est.score_samples(X[:8])
    changed = dict(temperature=0.5, step_size=0.2, chain_bounds=None)
    if name == "nnefh":
        changed["latent_temperature"] = 1.0
        est.set_params(features="mean")
        means = est.transform(X[:8])
        est.set_params(features="U")
    est.set_params(**changed)
    np.testing.assert_array_equal(est.sample(4, init="noise", random_state=1), before)
    np.testing.assert_array_equal(est.transform(X[:8]), features)
    np.testing.assert_array_equal(est.score_samples(X[:8]), scores)
    if name == "nnefh":
        np.testing.assert_array_equal(est.set_params(features="mean").transform(X[:8]), means)
        est.set_params(features="U")
    # At sample time, sample's keyword arguments are the way to change the sampler.
    assert not np.array_equal(est.sample(4, init="noise", random_state=1, step_size=0.2), before)
    # A new fit reads the new values.
    refit = est.fit(X)
    assert refit.module_.temperature == 0.5
    assert not np.array_equal(refit.sample(4, init="noise", random_state=1), before)


def test_partial_fit_reads_the_training_parameters_set_before_it():
    """weight_decay set after fit acts in the next partial_fit (the optimizer state, which holds the
    old value, must not restore it)."""
    base = NNEFH(**{**TINY, "learning_rate": 1e-3, "data_noise": 0.0}).fit(X)
    plain, decayed = clone(base).fit(X), clone(base).fit(X)
    decayed.set_params(weight_decay=100.0)  # AdamW: every update multiplies the weights by 0.9
    plain.partial_fit(X)
    decayed.partial_fit(X)

    def norm(est):
        return float(torch.linalg.vector_norm(est.module_.weight.detach()))

    assert norm(decayed) < 0.7 * norm(plain)


def test_a_cosine_fit_anneals_the_rate_and_partial_fit_runs_at_learning_rate():
    est = NNEFH(**{**TINY, "max_iter": 6, "lr_schedule": "cosine", "learning_rate": 1e-3}).fit(X)
    rates = [h["lr"] for h in est.history_]
    assert rates[0] == pytest.approx(1e-3) and all(b < a for a, b in zip(rates, rates[1:]))
    assert rates[-1] < 0.1 * rates[0]
    est.partial_fit(X)  # documented: partial_fit runs at the constant learning_rate
    assert {h["lr"] for h in est.history_[6:]} == {1e-3}


def test_ebm_sample_refuses_x_it_cannot_use():
    est = EBM(**TINY_EBM).fit(X)
    for method in (est.sample, est.sample_chains):
        with pytest.raises(ValueError, match="EBM has no latent layer.*X"):
            method(X=X[:3])


def test_a_likelihood_error_does_not_outlive_new_ais_settings(monkeypatch):
    """The on-demand log Z is re-estimated when ais_chains or ais_steps change."""
    from skefh.estimators import _likelihood

    budgets = []
    real = _likelihood.annealed_importance_sampling

    def recording(path, *, n_chains, n_steps, generator, **kwargs):
        budgets.append((n_chains, n_steps))
        return real(path, n_chains=n_chains, n_steps=n_steps, generator=generator, **kwargs)

    monkeypatch.setattr(_likelihood, "annealed_importance_sampling", recording)
    # A network (the paper's max-pooling and two attention blocks) whose log Z this tiny AIS
    # budget cannot estimate reliably, so that every score raises.
    est = EBM(**{**TINY_EBM, "log_partition": "auto"}, attention=True, downsample="maxpool", ais_chains=4,
              ais_steps=5).fit(X)
    with pytest.raises(LikelihoodError, match="4 chains, 5 steps"):
        est.score(X[:4])
    with pytest.raises(LikelihoodError):
        est.score(X[:4])
    assert budgets == [(4, 5)]  # kept: scoring again does not rerun AIS
    est.set_params(ais_steps=6)
    with pytest.raises(LikelihoodError, match="4 chains, 6 steps"):
        est.score(X[:4])
    assert budgets == [(4, 5), (4, 6)]


def test_the_likelihood_verdict_does_not_depend_on_the_rows_scored_first(monkeypatch):
    """The lower bound that an on-demand AIS estimate is checked against uses the same rows
    whichever rows are scored."""
    from skefh.estimators import _likelihood

    centres = []
    real = _likelihood.kernel_lower_bound

    def recording(log_density, rows, variance, **kwargs):
        centres.append(rows.clone())
        return real(log_density, rows, variance, **kwargs)

    monkeypatch.setattr(_likelihood, "kernel_lower_bound", recording)
    params = {**TINY, "log_partition": "auto", "ais_chains": 4, "ais_steps": 5, "temperature": 1.0}
    first, second = NNEFH(**params).fit(X), NNEFH(**params).fit(X)
    outcomes = []
    for est, rows in ((first, X[:5]), (second, X[60:70])):
        try:
            outcomes.append(est.score(rows) is not None)
        except LikelihoodError:
            outcomes.append(False)
    assert len(centres) == 2 * 3  # three kernel variances each
    for a, b in zip(centres[:3], centres[3:]):
        assert torch.equal(a, b)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_the_lower_bound_of_a_density_in_a_box_is_computed_in_that_box(cls, monkeypatch):
    """A density restricted to the chains' box is checked against a kernel bound whose kernels
    are truncated to that box (its samples would otherwise bound the unrestricted density); an
    unboxed one against plain kernels."""
    from skefh.estimators import _likelihood

    boxes = []
    real = _likelihood.kernel_lower_bound

    def recording(log_density, rows, variance, **kwargs):
        boxes.append(kwargs.get("bounds"))
        return real(log_density, rows, variance, **kwargs)

    monkeypatch.setattr(_likelihood, "kernel_lower_bound", recording)
    params = {**(TINY if cls is NNEFH else TINY_EBM), "temperature": 1.0, "step_size": 0.01}
    boxed = cls(**params, metropolis=True, chain_bounds="auto").fit(X)
    bound = boxed._kernel_lower_bound()
    low, high = boxed._density_box()
    assert len(boxes) == 3 and all(b is not None for b in boxes)
    for b in boxes:
        assert torch.equal(b[0], low) and torch.equal(b[1], high)
    assert bound is not None and math.isfinite(bound)
    boxes.clear()
    cls(**params, metropolis=False, chain_bounds=None).fit(X)._kernel_lower_bound()
    assert boxes == [None, None, None]


@pytest.mark.parametrize(
    "cls, params",
    [(GRBM, {"batch_size": 0}), (GRBM, {"optimizer": "rmsprop"}), (GRBM, {"features": "U"}),
     (EBM, {"replay_reinit": 1.5}), (EBM, {"n_filters": 0}), (EBM, {"statistics": "resnet"}),
     (NNEFH, {"negative_init": 1.5}), (NNEFH, {"compile": "fast"}), (NNEFH, {"latent_statistics": "mode"}),
     (NNEFH, {"max_grad_norm": 0.0}), (GRBM, {"log_partition": "quadrature"}), (EBM, {"checkpoint_every": 0})],
)
def test_constraints_reject_bad_values(cls, params):
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of {cls.__name__} must be"):
        cls(**params).fit(X)


@pytest.mark.parametrize(
    "cls, params, trained, from_noise",
    [(NNEFH, {"gibbs_steps": 2, "langevin_steps": 4}, (2, 4), (3, 4)),
     (NNEFH, {"gibbs_steps": 4, "langevin_steps": 3}, (4, 3), (6, 3)),
     (NNEFH, {"gibbs_steps": 3, "langevin_steps": 2}, (3, 2), (3, 3)),
     (EBM, {"langevin_steps": 30}, (1, 30), (1, 45)),
     (EBM, {"langevin_steps": 5}, (1, 5), (1, 8))],
)
def test_sampling_settings_report_the_budget_sample_runs_from_noise(cls, params, trained, from_noise):
    """A model trained on chains from noise samples from noise with one and a half times its
    training steps (more rounds where the training rounds are even, else longer rounds);
    sampling_settings(init=...) says so, an explicit budget overrides it, and an unknown start
    is refused."""
    small = {"n_components": 4} if cls is NNEFH else {}
    est = cls(**small, n_statistics=4, n_filters=2, max_iter=1, verbose=-1, random_state=0, **params).fit(
        np.random.default_rng(0).random((16, 64)))
    settings = est.sampling_settings()
    assert (settings.n_gibbs, settings.n_langevin) == trained
    for init in ("noise", "auto"):
        settings = est.sampling_settings(init=init)
        assert (settings.n_gibbs, settings.n_langevin) == from_noise
    assert est.sample_chains(2).shape == (2, 1 + from_noise[0], 64)
    explicit = est.sampling_settings(init="noise", gibbs_steps=5)
    assert (explicit.n_gibbs, explicit.n_langevin) == (5, trained[1])
    explicit = est.sampling_settings(init="noise", langevin_steps=7)
    assert (explicit.n_gibbs, explicit.n_langevin) == (from_noise[0], 7)
    with pytest.raises(ValueError, match="init must be"):
        est.sampling_settings(init="buffr")


@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_metropolis_chains_sample_with_twenty_times_the_training_rounds(cls):
    """Metropolis-adjusted chains (the tabular default) only get nearer to the model's density
    with more steps: sample() runs twenty times the training rounds from either start."""
    est = cls(n_statistics=4, max_iter=2, replay_buffer=32, verbose=-1, random_state=0).fit(
        np.random.default_rng(0).normal(size=(40, 2)))
    trained = est.sampling_settings()
    assert trained.metropolis
    for init in ("auto", "buffer", "noise"):
        assert est.sampling_settings(init=init).n_gibbs == 20 * trained.n_gibbs
    assert est.sampling_settings(init="noise", gibbs_steps=3).n_gibbs == 3
