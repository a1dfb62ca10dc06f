"""The contrastive training loop, its callbacks and checkpoints."""

import copy
import math
import statistics

import pytest
import torch
from conftest import tiny_nnefh

from skefh.nn import EBMEnergy, EnergyModel, MLPStatistics
from skefh.samplers import GibbsLangevinSettings, sample_from_noise
from skefh.training import (
    Callback,
    Checkpoint,
    CheckpointError,
    ContrastiveTrainer,
    DivergenceError,
    DivergenceMonitor,
    DivergenceWarning,
    load_checkpoint,
    lr_factor,
    save_checkpoint,
)


def _sampler(settings):
    def draw(model, x_pos, generator):
        return sample_from_noise(model, len(x_pos), settings, generator=generator)

    return draw


def _trainer(model, callbacks=(), sampler=None, seed=0, **kwargs):
    settings = GibbsLangevinSettings(2, 3, 0.1, 0.01)
    return ContrastiveTrainer(
        model,
        sampler or _sampler(settings),
        torch.optim.Adam(model.parameters(), lr=1e-2),
        generator=torch.Generator().manual_seed(seed),
        data_generator=torch.Generator().manual_seed(seed + 1),
        callbacks=callbacks,
        **kwargs,
    )


def test_contrastive_update_lowers_data_energy_and_raises_sample_energy():
    torch.manual_seed(0)
    model = EBMEnergy(MLPStatistics(2, 8), (2,), 8).double()
    x_data = torch.randn(32, 2, dtype=torch.float64) * 0.3 + 1.0
    x_samples = torch.randn(32, 2, dtype=torch.float64) * 0.3 - 1.0
    fixed = lambda model, x_pos, gen: {"x": x_samples, "z": None}  # noqa: E731
    trainer = ContrastiveTrainer(model, fixed, torch.optim.SGD(model.parameters(), lr=1e-3))
    with torch.no_grad():
        before = model.energy(x_data).mean(), model.energy(x_samples).mean()
    trainer.train_step(x_data)
    with torch.no_grad():
        after = model.energy(x_data).mean(), model.energy(x_samples).mean()
    assert after[0] < before[0]  # data energy pushed down
    assert after[1] > before[1]  # sample energy pushed up


class _ScaledSquare(EnergyModel):
    """E(x) = a ||x||^2 / 2 with one parameter a: dE/dx = a x in closed form."""

    has_latent = False

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def energy(self, x, z=None):
        return 0.5 * self.a * x.square().sum(1)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 2.0])
def test_gradient_penalty_matches_its_closed_form(gamma):
    # ||dE/dx||^2 = a^2 ||x||^2, so the loss is mean(a/2 |x_pos|^2) - mean(a/2 |x_neg|^2)
    # + gamma/2 a^2 mean |x_pos|^2 and its derivative in a is known: one SGD step checks both
    # the penalty's value and its gradient.
    a = 1.5
    model = _ScaledSquare(a)
    x_data = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2.0
    x_samples = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fixed = lambda model, x_pos, gen: {"x": x_samples, "z": None}  # noqa: E731
    lr = 0.01
    trainer = ContrastiveTrainer(model, fixed, torch.optim.SGD(model.parameters(), lr=lr),
                                 gradient_penalty=gamma)
    trainer.train_step(x_data)
    m_pos, m_neg = x_data.square().sum(1).mean().item(), x_samples.square().sum(1).mean().item()
    assert trainer.history[-1]["gradient_penalty"] == pytest.approx(0.5 * gamma * a**2 * m_pos, rel=1e-12)
    gradient = 0.5 * m_pos - 0.5 * m_neg + gamma * a * m_pos
    assert model.a.item() == pytest.approx(a - lr * gradient, rel=1e-12)


@pytest.mark.parametrize("gamma", [-0.1, math.inf, math.nan])
def test_gradient_penalty_rejects_bad_weights(gamma):
    with pytest.raises(ValueError, match="gradient_penalty"):
        ContrastiveTrainer(_ScaledSquare(1.0), _sampler(None), torch.optim.SGD([torch.zeros(1)], lr=1.0),
                           gradient_penalty=gamma)


def test_history_records_the_documented_fields():
    model = tiny_nnefh(3, 4, 5).float()
    trainer = _trainer(model, data_noise=0.03, max_grad_norm=1.0)
    trainer.fit(torch.randn(40, 3), n_updates=3, batch_size=16)
    assert [r["update"] for r in trainer.history] == [1, 2, 3]
    for key in ("energy_data", "energy_samples", "energy_gap", "grad_norm", "seconds",
                "langevin_grad_norm", "chain_min", "chain_max", "posterior_data", "lr", "loss"):
        assert key in trainer.history[0]
    record = trainer.history[-1]
    assert record["energy_gap"] == pytest.approx(record["energy_data"] - record["energy_samples"])
    assert 0.0 <= record["posterior_data"] <= 1.0
    # Unadjusted chains have no acceptance to report.
    assert all(math.isnan(r["acceptance"]) and math.isnan(r["jump_acceptance"]) for r in trainer.history)


@pytest.mark.parametrize("data_bounds", [None, (-1.0, 1.0), (torch.full((4,), -1.0), torch.full((4,), 1.0))])
def test_noisy_positives_are_reflected_into_the_density_box(data_bounds):
    # Data at the box's faces, noise of a quarter of its width: without bounds about half the noisy
    # positives leave the box; with them none do, and those inside are left as they were.
    seen = []

    def draw(model, x_pos, generator):
        seen.append(x_pos.clone())
        return sample_from_noise(model, len(x_pos), GibbsLangevinSettings(1, 1, 0.1, 0.01), generator=generator)

    data = torch.tensor([[-1.0, 1.0, 0.0, 3.0]]).repeat(400, 1)
    trainer = _trainer(tiny_nnefh(4, 4, 5).float(), sampler=draw, data_noise=0.5, data_bounds=data_bounds)
    trainer.fit(data, n_updates=4, batch_size=200)
    x = torch.cat(seen)  # 800 noisy rows: the means below have standard errors of 0.01 to 0.02
    outside = ((x < -1) | (x > 1))[:, :3].float().mean(0)
    if data_bounds is None:
        assert 0.4 < float(outside[0]) < 0.6 and 0.4 < float(outside[1]) < 0.6
    else:
        assert float(outside.max()) == 0.0
        # Reflection at the face: the noisy -1 column is |noise| above it, a half-normal of mean 0.5 sqrt(2 / pi).
        assert float((x[:, 0] + 1).mean()) == pytest.approx(0.5 * math.sqrt(2 / math.pi), abs=0.05)
    # The middle column's noise stays symmetric and untouched either way (its faces are two sds
    # away), and a value outside the box before the noise is left where the noise puts it.
    assert float(x[:, 2].std()) == pytest.approx(0.5, abs=0.06)
    assert float(x[:, 3].mean()) == pytest.approx(3.0, abs=0.08)
    assert float(x[:, 3].std()) == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("step_size, low, high", [(1e-3, 0.6, 1.0), (30.0, 0.0, 0.2)])
def test_history_records_the_training_chains_acceptance(step_size, low, high):
    # Metropolis-adjusted chains accept most small steps and refuse most huge ones, and the
    # record is the sampler's own figure.
    model = tiny_nnefh(3, 4, 5).double()
    settings = GibbsLangevinSettings(2, 3, step_size, 1.0, metropolis=True)
    reported = []

    def draw(model, x_pos, generator):
        out = sample_from_noise(model, len(x_pos), settings, generator=generator)
        reported.append(float(out["acceptance"]))
        return out

    trainer = _trainer(model, sampler=draw)
    trainer.fit(torch.randn(64, 3, dtype=torch.float64), n_updates=3, batch_size=32)
    recorded = [r["acceptance"] for r in trainer.history]
    assert recorded == pytest.approx(reported)
    assert all(low <= a <= high for a in recorded)


def test_trainer_state_resumes_bit_identically():
    data = torch.randn(50, 3)
    straight = _trainer(tiny_nnefh(3, 4, 5).float())
    straight.fit(data, 7, 16)

    first = _trainer(tiny_nnefh(3, 4, 5).float())
    first.fit(data, 4, 16)
    state = copy.deepcopy(first.state_dict())
    resumed = _trainer(tiny_nnefh(3, 4, 5, seed=99).float(), seed=123)  # other init, other seeds
    resumed.load_state_dict(state)
    resumed.fit(data, 3, 16)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_lr_schedules():
    assert lr_factor("constant", 5, 10) == 1.0
    assert lr_factor("cosine", 0, 10) == pytest.approx(1.0)
    assert lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert lr_factor("linear", 5, 10) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lr_factor("step", 0, 10)


def _exploding_sampler(at_update, value, calls_that_explode=None):
    """A sampler whose chains are ``value`` from its ``at_update``-th call on, or on the calls
    listed only."""
    settings = GibbsLangevinSettings(1, 2, 0.1, 0.01)
    calls = {"n": 0}

    def draw(model, x_pos, generator):
        calls["n"] += 1
        out = sample_from_noise(model, len(x_pos), settings, generator=generator)
        if calls["n"] in calls_that_explode if calls_that_explode is not None else calls["n"] >= at_update:
            out["x"] = out["x"] * 0 + value
        return out

    return draw


@pytest.mark.parametrize("value, reason", [(float("nan"), "is nan"), (1e6, "reached |x|")])
def test_divergence_stops_the_fit_at_the_right_update(value, reason):
    model = tiny_nnefh(3, 4, 5).float()
    trainer = _trainer(model, callbacks=[DivergenceMonitor(advice="lower the learning rate")],
                       sampler=_exploding_sampler(4, value))
    with pytest.raises(DivergenceError, match=f"diverged at update 4: .*{reason}") as info:
        trainer.fit(torch.randn(40, 3), 10, 8)
    assert info.value.update == 4
    assert "lower the learning rate" in str(info.value)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was not applied


def test_divergence_restore_rolls_back_and_lowers_the_learning_rate():
    model = tiny_nnefh(3, 4, 5).float()
    monitor = DivergenceMonitor(on_divergence="restore", snapshot_every=2, max_restores=2)
    trainer = _trainer(model, callbacks=[monitor], sampler=_exploding_sampler(5, float("nan")))
    with pytest.raises(DivergenceError, match="rolled back 2 times, down to 0.25 times"), \
            pytest.warns(DivergenceWarning) as caught:
        trainer.fit(torch.randn(40, 3), 10, 8)
    assert [str(w.message).split("(")[-1] for w in caught] == ["restore 1 of at most 2).", "restore 2 of at most 2)."]
    assert monitor.n_restores == 2
    assert trainer.lr_scale == pytest.approx(0.25)
    assert [r.get("event") for r in trainer.history].count("restored") == 2


def test_each_further_restore_goes_one_snapshot_further_back():
    # Snapshots every 2 updates. The 5th sampler call (update 5) blows up: back to 4. The 7th
    # (update 6): one snapshot further, to 2. Updates 3 to 5 then run again and the 11th call
    # (update 6) blows up: update 4, run again before the update that last diverged, was not
    # trusted as a snapshot, so the third restore goes back to the fit's first state.
    monitor = DivergenceMonitor(on_divergence="restore", snapshot_every=2, max_restores=3)
    sampler = _exploding_sampler(None, float("nan"), calls_that_explode={5, 7, 11})
    trainer = _trainer(tiny_nnefh(3, 4, 5).float(), callbacks=[monitor], sampler=sampler)
    with pytest.warns(DivergenceWarning):
        trainer.fit(torch.randn(40, 3), 10, 8)
    assert [(e["update"], e["restored_to"]) for e in monitor.events] == [(5, 4), (6, 2), (6, 0)]
    assert trainer.n_updates == 10


def _gap_records(gaps):
    """Training records that are sane in every value but the gap between data and sample energies."""
    return [
        {"update": i + 1, "loss": gap, "energy_data": -500.0, "energy_samples": -500.0 - gap, "grad_norm": 1.0,
         "chain_min": -1.0, "chain_max": 1.0}
        for i, gap in enumerate(gaps)
    ]


def _runaway_gaps(healthy=1000, growth=1.05, total=1400):
    """A steady gap of 50 that then grows geometrically, as when short-run chains lose the model."""
    return [50.0 if i < healthy else 50.0 * growth ** (i - healthy + 1) for i in range(total)]


def test_divergence_monitor_stops_energies_that_separate():
    monitor = DivergenceMonitor(advice="lower the learning rate")
    with pytest.raises(DivergenceError, match="energies separated") as info:
        for record in _gap_records(_runaway_gaps()):
            monitor.on_update_end(None, record)
    # The window's median passes 10 x 50 once half of its 100 gaps have grown tenfold: 47 updates
    # of growth (1.05 ** 47 > 10) plus 50.
    assert 1090 <= info.value.update <= 1100
    monitor = DivergenceMonitor(gap_limit=math.inf)
    for record in _gap_records(_runaway_gaps()):
        monitor.on_update_end(None, record)


def test_divergence_monitor_ignores_energies_growing_from_zero_and_single_spikes():
    rng = torch.Generator().manual_seed(0)
    noise = torch.rand(4000, generator=rng).tolist()
    gaps = [50.0 * min(i / 300, 1.0) * (0.5 + n) for i, n in enumerate(noise)]
    gaps = [g * 1000 if i % 7 == 0 else g for i, g in enumerate(gaps)]  # one batch in seven is wild
    monitor = DivergenceMonitor()
    for record in _gap_records(gaps):
        monitor.on_update_end(None, record)


class _CountingTrainer:
    """The part of ContrastiveTrainer that DivergenceMonitor's restore touches."""

    def __init__(self):
        self.n_updates, self.lr_scale, self.history = 0, 1.0, []

    def state_dict(self):
        return {"n_updates": self.n_updates}

    def load_state_dict(self, state):
        self.n_updates = state["n_updates"]


def test_divergence_restore_goes_back_to_before_the_energies_began_to_separate():
    gaps = _runaway_gaps()
    monitor = DivergenceMonitor(on_divergence="restore", snapshot_every=5)
    trainer = _CountingTrainer()
    monitor.on_fit_begin(trainer)
    with pytest.warns(DivergenceWarning, match="energies separated.*Went back to update"):
        for record in _gap_records(gaps):
            trainer.n_updates = record["update"]
            monitor.on_update_end(trainer, record)
            if monitor.events:
                break
    event = monitor.events[0]
    assert "energies separated" in event["reason"] and trainer.lr_scale == pytest.approx(0.5)
    # The last snapshot is the last multiple of 5 at which the window's median gap was within a
    # third of the limit (its median before is 50): a later one would restore a state already
    # separating.
    window_medians = [statistics.median(gaps[max(0, u - 100):u]) for u in range(1, len(gaps) + 1)]
    last_calm = max(u for u in range(5, event["update"], 5) if window_medians[u - 1] <= 50 * 10 / 3)
    assert 1000 < last_calm < event["update"] - 5
    assert event["restored_to"] == trainer.n_updates == last_calm
    # The discarded updates' gaps are forgotten: the updates run again are judged against the
    # gaps up to the snapshot, and one wild batch is not a window's median.
    assert len(monitor._gap_log) == last_calm and len(monitor._earlier_gaps) == last_calm - 100
    rerun = _gap_records(gaps)[last_calm:]
    rerun[0]["energy_samples"] = -1e6
    # The rerun diverges as before: the second restore goes one good snapshot further back,
    # because none is taken between the first snapshot and the update that diverged.
    with pytest.warns(DivergenceWarning, match="restore 2 of at most 3"):
        for record in rerun:
            trainer.n_updates = record["update"]
            monitor.on_update_end(trainer, record)
            if len(monitor.events) == 2:
                break
    assert monitor.events[1]["update"] == event["update"]
    assert monitor.events[1]["restored_to"] == trainer.n_updates == last_calm - 5


def test_callbacks_can_stop_training():
    class StopAtTwo(Callback):
        def on_update_end(self, trainer, record):
            if record["update"] == 2:
                trainer.stop_training = True

    trainer = _trainer(tiny_nnefh(3, 4, 5).float(), callbacks=[StopAtTwo()])
    trainer.fit(torch.randn(40, 3), 10, 8)
    assert trainer.n_updates == 2


def test_checkpoint_round_trip_and_errors(tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    state = {"weights": torch.arange(3.0), "history": [{"loss": 1.0}], "name": "x"}
    save_checkpoint(state, path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["weights"], state["weights"]) and loaded["history"] == state["history"]
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed away

    path.write_bytes(path.read_bytes()[:40])  # truncated: corrupt
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a skefh checkpoint"):
        load_checkpoint(other)


def test_checkpoint_callback_keeps_the_last_good_state(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_nnefh(3, 4, 5).float()
    trainer = _trainer(model, sampler=_exploding_sampler(6, float("nan")))
    trainer.callbacks = [DivergenceMonitor(), Checkpoint(path, 2, trainer.state_dict)]
    with pytest.raises(DivergenceError):
        trainer.fit(torch.randn(40, 3), 10, 8)
    assert load_checkpoint(path)["n_updates"] == 4  # saved at 2 and 4; not the diverged 6


def test_latent_batch_usage_counts_varying_and_constant_units():
    from skefh.training.loop import latent_batch_usage

    rows = torch.tensor([0.0, 1.0, 0.0, 1.0])[:, None]
    probabilities = torch.cat([
        rows,                                # varies: std 0.5
        0.6 + 0.05 * rows,                   # on for every row, std 0.025: not varying
        torch.full((4, 1), 0.01),            # off for every row
        torch.full((4, 1), 0.99),            # on for every row
    ], 1)
    varying, on, off = (float(v) for v in latent_batch_usage(probabilities))
    assert (varying, on, off) == (0.25, 0.5, 0.25)
