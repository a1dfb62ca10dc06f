"""DistributedDataParallel on CPU with gloo: two processes, a file rendezvous."""

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import tiny_nnefh

from skefh import NNEFH
from skefh.training import ContrastiveTrainer
from skefh.training.distributed import distributed_context

WORLD = 2


def _init(rank, init_file):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)


def _shutdown():
    # A rank that tears gloo down while its peer still holds the connection can make the peer
    # abort (std::terminate in gloo's I/O thread); meet at a barrier first.
    dist.barrier()
    dist.destroy_process_group()


def _fit_worker(rank, init_file, out_dir):
    _init(rank, init_file)
    try:
        X = np.random.default_rng(0).normal(size=(64, 6))
        est = NNEFH(n_components=4, n_statistics=5, gibbs_steps=1, langevin_steps=2, max_iter=4,
                    batch_size=8, random_state=0, device="cpu", log_partition=None).fit(X)
        torch.save({k: v.clone() for k, v in est.module_.state_dict().items()}, f"{out_dir}/rank{rank}.pt")
    finally:
        _shutdown()


def _fixed_batches(rank):
    gen = torch.Generator().manual_seed(100 + rank)
    x_pos = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    x_neg = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    z_neg = torch.bernoulli(torch.full((6, 4), 0.5, dtype=torch.float64), generator=gen)
    return x_pos, x_neg, z_neg


def _one_step(model, forward_model, x_pos, x_neg, z_neg, **options):
    trainer = ContrastiveTrainer(
        model, lambda m, x, g: {"x": x_neg, "z": z_neg}, torch.optim.SGD(model.parameters(), lr=0.1),
        latent_statistics="mean", forward_model=forward_model, **options,
    )
    trainer.train_step(x_pos)
    return model


#: The gradient penalty differentiates the input gradient of a DDP forward a second time.
PENALISED = {"gradient_penalty": 0.5}


def _step_worker(rank, init_file, out_dir, options=None):
    _init(rank, init_file)
    try:
        model = tiny_nnefh(3, 4, 5, seed=0)
        ddp = distributed_context(model, torch.device("cpu"))
        _one_step(model, ddp.forward_model, *_fixed_batches(rank), **(options or {}))
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, f"{out_dir}/step{rank}.pt")
    finally:
        _shutdown()


def _penalised_step_worker(rank, init_file, out_dir):
    _step_worker(rank, init_file, out_dir, PENALISED)


def _divergence_worker(rank, init_file, out_dir):
    """Only rank 1's chains blow up; both ranks must stop, or rank 0 would hang in the next
    all-reduce."""
    from skefh.training import DivergenceError, DivergenceMonitor

    _init(rank, init_file)
    try:
        record = {"update": 5, "loss": 1.0, "energy_data": 0.0, "energy_samples": 0.0, "grad_norm": 1.0,
                  "chain_min": -1.0, "chain_max": 1e4 if rank == 1 else 1.0}
        try:
            DivergenceMonitor().on_update_end(None, record)
            outcome = "continued"
        except DivergenceError as exc:
            outcome = exc.reason
        with open(f"{out_dir}/divergence{rank}.txt", "w") as f:
            f.write(outcome)
    finally:
        _shutdown()


@pytest.fixture
def spawn(tmp_path):
    def run(worker):
        try:
            mp.spawn(worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD, join=True)
        except mp.ProcessExitedException as exc:
            # gloo's teardown can still abort a rank after the barrier ("terminate called without
            # an active exception" in its I/O thread; seen once in seven CI runs). That happens
            # after the workers wrote their results, which the tests then check: a rank that
            # died before writing leaves its file missing and the test fails on it.
            if exc.signal_name != "SIGABRT":
                raise
        return tmp_path

    return run


def test_ddp_fit_ends_with_identical_parameters_on_every_rank(spawn):
    out = spawn(_fit_worker)
    states = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


@pytest.mark.parametrize("worker, options", [(_step_worker, {}), (_penalised_step_worker, PENALISED)])
def test_ddp_step_equals_a_single_process_step_on_the_union_batch(spawn, worker, options):
    """Deterministic latents and fixed negatives: averaging the two ranks' gradients is the
    gradient of the mean loss over the union batch, so one SGD step must agree (with the
    gradient penalty too, a mean over the batch like the energies)."""
    out = spawn(worker)
    parts = [_fixed_batches(r) for r in range(WORLD)]
    union = [torch.cat([p[i] for p in parts]) for i in range(3)]
    single = _one_step(tiny_nnefh(3, 4, 5, seed=0), None, *union, **options)
    for rank in range(WORLD):
        state = torch.load(out / f"step{rank}.pt", weights_only=True)
        for key, value in single.state_dict().items():
            torch.testing.assert_close(state[key], value, rtol=1e-10, atol=1e-12)


def test_a_divergence_on_one_rank_stops_every_rank(spawn):
    out = spawn(_divergence_worker)
    reasons = [(out / f"divergence{r}.txt").read_text() for r in range(WORLD)]
    assert "another process" in reasons[0]
    assert "beyond the limit" in reasons[1]
