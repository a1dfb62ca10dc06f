"""The replay buffer: what it draws, that chains continue across updates, and that fits carry it."""

import math
import pickle

import numpy as np
import pytest
import torch
from conftest import ZeroStatistics
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

from skefh import EBM, NNEFH
from skefh.nn import NNEFHEnergy
from skefh.samplers import GibbsLangevinSettings, ReplayBuffer, TrainingSampler

X = load_digits().data[:256]
TINY = dict(n_components=8, n_statistics=8, n_filters=4, gibbs_steps=1, langevin_steps=3, batch_size=32,
            lr_schedule="constant", random_state=0, device="cpu", log_partition=None, replay_buffer=100)


def test_draw_returns_stored_states_and_fresh_noise_at_the_stated_rate():
    buffer = ReplayBuffer(50, reinit_fraction=0.0)
    gen = torch.Generator().manual_seed(0)
    _, rows = buffer.draw(50, (2,), device="cpu", dtype=torch.float64, generator=gen)
    buffer.store(torch.arange(50), torch.arange(100.0, dtype=torch.float64).view(50, 2) + 1000)
    states, rows = buffer.draw(400, (2,), device="cpu", dtype=torch.float64, generator=gen)
    torch.testing.assert_close(states, (rows * 2).double().view(-1, 1) + torch.tensor([1000.0, 1001.0]).double())

    buffer.reinit_fraction = 0.25
    n = 20_000
    states, rows = buffer.draw(n, (2,), device="cpu", dtype=torch.float64, generator=gen)
    fresh = (states[:, 0] < 500).double()  # stored states are >= 1000; noise is N(0, 1)
    se = math.sqrt(0.25 * 0.75 / n)
    assert abs(fresh.mean().item() - 0.25) < 5 * se
    assert abs(states[fresh.bool()].std().item() - 1.0) < 0.05


def test_a_row_drawn_twice_keeps_the_last_state_stored_in_it():
    # At this size index assignment with repeated rows is multi-threaded on the CPU and keeps an
    # arbitrary one of the states, which made seeded fits with a buffer irreproducible.
    buffer = ReplayBuffer(10_000, reinit_fraction=0.0)
    buffer.draw(64, (1, 28, 28), device="cpu", dtype=torch.float32)
    rows = torch.randint(10_000, (64,), generator=torch.Generator().manual_seed(1))
    rows[[5, 17]] = rows[40].clone()  # row rows[40] is written three times, last by chain 40
    states = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    for _ in range(100):
        buffer.store(rows, states)
        torch.testing.assert_close(buffer.states[rows[40]], states[40], rtol=0, atol=0)
        torch.testing.assert_close(buffer.states[rows[[0, 63]]], states[[0, 63]], rtol=0, atol=0)
        buffer.states[rows] = 0.0


def test_buffer_rejects_bad_settings_and_shapes():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
    with pytest.raises(ValueError, match="reinit_fraction"):
        ReplayBuffer(10, reinit_fraction=1.5)
    buffer = ReplayBuffer(10)
    with pytest.raises(RuntimeError, match="before draw"):
        buffer.store(torch.arange(2), torch.zeros(2, 3))
    buffer.draw(4, (3,), device="cpu", dtype=torch.float32)
    with pytest.raises(ValueError, match="shape"):
        buffer.draw(4, (5,), device="cpu", dtype=torch.float32)


def _quadratic_model(mu):
    model = NNEFHEnergy(ZeroStatistics(3), (len(mu),), 3, 4).double()
    with torch.no_grad():
        model.mu.copy_(torch.as_tensor(mu, dtype=torch.float64))
    return model


def test_chains_from_the_buffer_continue_to_the_stationary_law():
    """U = 0 leaves E = ||x - mu||^2, an AR(1) chain with a known law. Five steps from noise stay
    far from it; a buffer that really carries states over reaches it after enough updates."""
    mu = [0.5, -1.0]
    eps, temperature = 0.05, 0.05
    model = _quadratic_model(mu)
    settings = GibbsLangevinSettings(1, 5, eps, temperature)
    x_pos = torch.zeros(500, 2, dtype=torch.float64)
    a = 1.0 - 2.0 * eps
    var = 2.0 * eps * temperature / (1.0 - a * a)
    gen = torch.Generator().manual_seed(3)

    fresh = TrainingSampler(settings)(model, x_pos, gen)["x"]
    assert (fresh.mean(0) - torch.tensor(mu, dtype=torch.float64)).abs().max() > 0.1  # a^5 = 0.59

    sampler = TrainingSampler(settings, buffer=ReplayBuffer(2000, reinit_fraction=0.0))
    for _ in range(120):  # each row is drawn ~30 times: ~150 steps, a^150 ~ 1e-7
        sampler(model, x_pos, gen)
    states = sampler.buffer.states
    assert torch.all((states.mean(0) - torch.tensor(mu, dtype=torch.float64)).abs() < 5 * math.sqrt(var / 2000))
    torch.testing.assert_close(states.var(0), torch.full((2,), var, dtype=torch.float64), rtol=0.15, atol=0)


def test_training_sampler_state_round_trip():
    model = _quadratic_model([0.0, 0.0])
    settings = GibbsLangevinSettings(1, 2, 0.1, 0.01)
    sampler = TrainingSampler(settings, buffer=ReplayBuffer(20))
    sampler(model, torch.zeros(8, 2, dtype=torch.float64), torch.Generator().manual_seed(0))
    other = TrainingSampler(settings, buffer=ReplayBuffer(20))
    other.load_state_dict(sampler.state_dict())
    assert torch.equal(other.buffer.states, sampler.buffer.states)
    assert torch.equal(other.buffer.written, sampler.buffer.written)
    # A buffer saved before visits were recorded counts every row as visited.
    old = {**sampler.state_dict()["replay_buffer"]}
    del old["written"]
    other.load_state_dict({"replay_buffer": old})
    assert bool(other.buffer.written.all())
    with pytest.raises(ValueError, match="capacity"):
        TrainingSampler(settings, buffer=ReplayBuffer(21)).load_state_dict(sampler.state_dict())
    assert TrainingSampler(settings).state_dict() == {"replay_buffer": None}


@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_partial_fit_after_pickling_continues_the_buffer(cls):
    params = {k: v for k, v in TINY.items() if k in cls().get_params()}
    est = cls(max_iter=4, **params).fit(X)
    buffer = est._trainer_state["sampler"]["replay_buffer"]["states"]
    assert buffer.shape == (100, 1, 8, 8)
    assert buffer.abs().max() < 50  # written back chains, in working units
    copy = pickle.loads(pickle.dumps(est))
    # A pickle leaves the optimizer's moments out: the original continues as the copy does once
    # its optimizer is reset; the buffer's chains are carried.
    est._trainer_state = {**est._trainer_state, "optimizer": None}
    est.partial_fit(X)
    copy.partial_fit(X)
    for a, b in zip(est.module_.state_dict().values(), copy.module_.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(est.transform(X[:5]), copy.transform(X[:5]))


def test_the_buffer_is_used_and_bad_values_are_named(monkeypatch):
    """With a buffer, every update after the first starts its chains from states earlier updates
    stored (reinit 0: no fresh noise); without one, every update starts from noise."""
    from skefh.samplers import replay as replay_module

    starts = []
    real = replay_module.training_negatives

    def recording(*args, x_init=None, **kwargs):
        out = real(*args, x_init=x_init, **kwargs)
        starts.append((None if x_init is None else x_init.clone(), out["x"].clone()))
        return out

    monkeypatch.setattr(replay_module, "training_negatives", recording)
    params = {k: v for k, v in TINY.items() if k != "replay_buffer"}
    NNEFH(max_iter=6, replay_buffer=0, **params).fit(X)
    assert len(starts) == 6 and all(x_init is None for x_init, _ in starts)
    starts.clear()
    NNEFH(max_iter=6, replay_buffer=64, replay_reinit=0.0, **params).fit(X)
    ended = starts[0][1].flatten(1).double()
    later = starts[1][0].flatten(1).double()
    # Update 2 draws rows of a 64-row buffer; those update 1 wrote hold its chains' final states.
    continued = torch.cdist(later, ended).min(1).values < 1e-5
    assert int(continued.sum()) >= 5, int(continued.sum())
    with pytest.raises(InvalidParameterError, match="replay_reinit"):
        NNEFH(replay_reinit=1.5, **params).fit(X)
    with pytest.raises(InvalidParameterError, match="replay_buffer"):
        NNEFH(replay_buffer=-1, **params).fit(X)


def test_checkpoint_of_an_earlier_version_resumes_when_new_parameters_are_at_default(tmp_path):
    # Written without a buffer, as every fit was before the parameter existed (its default is
    # a buffer now: a checkpoint without the key is read as having had none).
    # Likewise its chains had no box.
    params = {**{k: v for k, v in TINY.items() if k != "replay_buffer"}, "replay_buffer": 0, "chain_bounds": None}
    path = tmp_path / "ckpt.pt"
    NNEFH(max_iter=2, checkpoint_path=path, **params).fit(X)
    state = torch.load(path, weights_only=True)
    for key in ("replay_buffer", "replay_reinit", "chain_bounds"):  # as written before these existed
        del state["comparable_params"][key]
    del state["trainer"]["sampler"]
    torch.save(state, path)
    assert NNEFH(max_iter=3, checkpoint_path=path, **params).fit(X).n_iter_ == 3
    with pytest.raises(Exception, match=r"replay_buffer: 0 -> 16"):
        NNEFH(max_iter=4, checkpoint_path=path, **{**params, "replay_buffer": 16}).fit(X)
    with pytest.raises(Exception, match=r"chain_bounds: None -> 'auto'"):
        NNEFH(max_iter=4, checkpoint_path=path, **{**params, "chain_bounds": "auto"}).fit(X)


def test_the_buffer_records_which_rows_chains_visited_and_samples_start_only_there():
    buffer = ReplayBuffer(50, reinit_fraction=0.0)
    buffer.draw(4, (2,), device="cpu", dtype=torch.float64)
    assert not bool(buffer.written.any())
    buffer.store(torch.tensor([3, 7, 7]), torch.ones(3, 2, dtype=torch.float64))
    assert buffer.written.nonzero().flatten().tolist() == [3, 7]

    # Three updates of 32 chains visit at most 96 of 1,000 rows: samples start from those only.
    est = NNEFH(max_iter=3, **{**TINY, "replay_buffer": 1000}).fit(X)
    state = est._trainer_state["sampler"]["replay_buffer"]
    visited = state["states"][state["written"]].numpy()
    assert 0 < len(visited) <= 96
    starts = est.sample_chains(200, init="buffer", random_state=0)[:, 0]
    visited = est.range_map_.to_data(visited.reshape(len(visited), -1).astype(np.float64), np.float64)
    distances = ((starts[:, None, :] - visited[None]) ** 2).sum(-1).min(1)
    assert np.all(distances < 1e-8)


def test_partial_fit_uses_the_reinit_fraction_set_after_the_fit():
    est = NNEFH(max_iter=2, **{**TINY, "replay_reinit": 0.0}).fit(X)
    est.set_params(replay_reinit=1.0).partial_fit(X[:64])
    assert est._trainer_state["sampler"]["replay_buffer"]["reinit_fraction"] == 1.0
    with pytest.raises(ValueError, match="capacity 100"):
        est.set_params(replay_buffer=50).partial_fit(X[:64])
