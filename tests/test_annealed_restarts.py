"""Annealed restarts: persistent chains fed with importance-weighted draws from AIS runs."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import far_mode_nnefh
from sklearn.utils._param_validation import InvalidParameterError

from skefh import EBM, NNEFH
from skefh.samplers import GaussianMixtureBasePath, ReplayBuffer
from skefh.training import AnnealedRestarts


def _far_mode_setup(capacity=8):
    """far_mode_nnefh (e^10 of its mass at w / 2, the rest at mu), a base with a component on
    each mode, and a buffer whose chains all sit at mu, where local chains would stay."""
    model, w, exact = far_mode_nnefh()
    means = torch.stack([model.mu.detach(), w / 2])
    variances = torch.full_like(means, 0.5)
    buffer = ReplayBuffer(capacity, reinit_fraction=0.0)
    buffer.draw(1, model.input_shape, device="cpu", dtype=torch.float64)
    buffer.states.zero_()  # mu
    trainer = SimpleNamespace(n_updates=0, generator=torch.Generator().manual_seed(0),
                              negative_sampler=SimpleNamespace(buffer=buffer))
    return model, w, exact, (lambda: GaussianMixtureBasePath(model, means, variances)), buffer, trainer


def test_restarts_move_buffer_chains_to_where_the_mass_is():
    model, w, exact, path, buffer, trainer = _far_mode_setup()
    restarts = AnnealedRestarts(path, n_states=200, every=3, n_chains=64, n_steps=100)
    trainer.n_updates = 3
    record = {}
    restarts.on_update_end(trainer, record)
    to_far = (buffer.states - w / 2).norm(dim=1)
    to_mu = (buffer.states - model.mu.detach()).norm(dim=1)
    # Half the AIS chains end at mu, but they carry e^-10 of the weight: drawn by weight, every
    # overwritten row (200 draws over 8 rows: all of them) lies at the far mode.
    assert bool(torch.all(to_far < to_mu)) and bool(buffer.written.all())
    assert record["restart_ess"] > 1.0
    assert abs(record["restart_log_z"] - exact) < 0.5


def test_restarts_run_only_every_n_updates():
    _, _, _, path, buffer, trainer = _far_mode_setup()
    restarts = AnnealedRestarts(path, n_states=4, every=3, n_chains=8, n_steps=10)
    before = buffer.states.clone()
    for n in (1, 2, 4, 5):
        trainer.n_updates = n
        record = {}
        restarts.on_update_end(trainer, record)
        assert record == {} and torch.equal(buffer.states, before)
    trainer.n_updates = 6
    restarts.on_update_end(trainer, record)
    assert "restart_ess" in record and not torch.equal(buffer.states, before)


def test_restarts_need_a_buffer_and_sane_settings():
    _, _, _, path, _, trainer = _far_mode_setup()
    trainer.negative_sampler = SimpleNamespace(buffer=None)
    trainer.n_updates = 5
    with pytest.raises(ValueError, match="replay buffer"):
        AnnealedRestarts(path, n_states=2, every=5).on_update_end(trainer, {})
    for bad in (dict(n_states=0, every=1), dict(n_states=2, every=0), dict(n_states=2, every=1, n_chains=1),
                dict(n_states=2, every=1, n_steps=0), dict(n_states=1.5, every=1)):
        with pytest.raises(ValueError):
            AnnealedRestarts(path, **bad)


@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_estimators_restart_their_chains_and_record_it(cls):
    X = np.random.default_rng(0).normal(size=(80, 2))
    est = cls(n_statistics=8, max_iter=4, batch_size=32, replay_buffer=64, annealed_restarts=4,
              annealed_restart_every=2, annealed_restart_steps=5, ais_chains=8, random_state=0, device="cpu").fit(X)
    records = [r for r in est.history_ if "event" not in r]
    assert [("restart_ess" in r) for r in records] == [False, True, False, True]
    assert all(np.isfinite(r["restart_log_z"]) for r in records[1::2])
    plain = cls(n_statistics=8, max_iter=4, batch_size=32, replay_buffer=64, random_state=0, device="cpu").fit(X)
    assert not any("restart_ess" in r for r in plain.history_)


def test_estimators_refuse_restarts_without_a_buffer_or_with_bad_settings():
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="replay_buffer"):
        NNEFH(max_iter=2, replay_buffer=0, annealed_restarts=4, random_state=0, device="cpu").fit(X)
    for bad in (dict(annealed_restarts=-1), dict(annealed_restart_every=0), dict(annealed_restart_steps=0)):
        with pytest.raises(InvalidParameterError):
            EBM(max_iter=2, random_state=0, device="cpu", **bad).fit(X)
