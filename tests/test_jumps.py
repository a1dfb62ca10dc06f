"""Mode-jumping moves (KernelJump): they carry chains between far-apart modes in the right
proportions, where local Langevin moves never do."""

import math

import numpy as np
import pytest
import torch
from conftest import far_mode_nnefh

from skefh import EBM, NNEFH
from skefh.samplers import GibbsLangevinSettings, KernelJump, TrainingSampler, metropolis_langevin


def _two_modes(p_far=0.5):
    """The far-mode NN-EFH in 2-D at temperature 1 with modes N(mu, I/2) and N(mu + w/2, I/2),
    8.4 apart, the far one holding ``p_far`` of the mass; exact draws from either mode."""
    half_norm_squared = 70.0
    model, w, _ = far_mode_nnefh(dim=2, bias=-half_norm_squared + math.log(p_far / (1 - p_far)))
    model.temperature = 1.0

    def draw(n, far, generator):
        mean = model.mu.detach() + far[:, None] * (w / 2)
        return mean + math.sqrt(0.5) * torch.randn((n, w.numel()), generator=generator, dtype=w.dtype)

    def in_far_mode(x):
        return ((x - model.mu.detach()) @ (w / w.norm())) > w.norm() / 4

    return model, draw, in_far_mode


@pytest.mark.parametrize("p_far", [0.5, 0.2])
def test_jumps_bring_chains_from_one_mode_to_the_model_proportions(p_far):
    model, draw, in_far_mode = _two_modes(p_far)
    gen = torch.Generator().manual_seed(0)
    # Kernel rows 80 % in the far mode, whatever p_far: the Metropolis-Hastings ratio, not the
    # proposal's balance, must set the proportions.
    rows = draw(400, torch.rand(400, generator=gen, dtype=torch.float64) < 0.8, gen)
    n = 2000
    start = draw(n, torch.zeros(n, dtype=torch.float64), gen)  # every chain in the near mode
    def marginal(x):  # the free energy and its gradient: MALA on the marginal of x
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            free_energy = model.free_energy(xg)
            (grad,) = torch.autograd.grad(free_energy.sum(), xg)
        return free_energy.detach(), grad

    local = metropolis_langevin(marginal, start.clone(), step_size=0.1, n_steps=30, generator=gen)["x"]
    assert float(in_far_mode(local).double().mean()) < 0.01  # local moves stay where they began
    jump, x, rates = KernelJump(rows), start.clone(), []
    for _ in range(30):
        moved = jump(model, x, gen)
        x, rates = moved["x"], rates + [moved["acceptance"]]
    share = float(in_far_mode(x).double().mean())
    assert abs(share - p_far) < 4 * math.sqrt(p_far * (1 - p_far) / n) + 0.01
    assert 0.05 < np.mean(rates) < 0.95


def test_a_jump_redraws_the_latent_and_refuses_bad_rows():
    model, draw, _ = _two_modes()
    gen = torch.Generator().manual_seed(1)
    rows = draw(50, torch.ones(50, dtype=torch.float64), gen)
    out = KernelJump(rows)(model, rows[:7], gen)
    assert out["x"].shape == (7, 2) and out["z"].shape == (7, 1)
    with pytest.raises(ValueError, match="two rows"):
        KernelJump(rows[:1])
    with pytest.raises(ValueError, match="bandwidth"):
        KernelJump(rows, bandwidth=0.0)
    with pytest.raises(ValueError, match="finite"):
        KernelJump(torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="keep='last'"):
        TrainingSampler(GibbsLangevinSettings(1, 1, 0.1), keep="all", jump=KernelJump(rows))


def test_a_jump_with_bounds_keeps_the_chains_in_the_box():
    """The far mode lies outside the box: bounded jumps never go there, unbounded ones do."""
    model, draw, in_far_mode = _two_modes()
    gen = torch.Generator().manual_seed(2)
    rows = draw(400, torch.rand(400, generator=gen, dtype=torch.float64) < 0.5, gen)
    start = draw(500, torch.zeros(500, dtype=torch.float64), gen)
    low, high = start.min(0).values, start.max(0).values
    free, bounded = start.clone(), start.clone()
    for _ in range(10):
        free = KernelJump(rows)(model, free, gen)["x"]
        bounded = KernelJump(rows, bounds=(low, high))(model, bounded, gen)["x"]
    assert float(in_far_mode(free).double().mean()) > 0.2
    assert bool(((bounded >= low) & (bounded <= high)).all())
    assert not torch.equal(bounded, start)  # jumps within the box are still accepted


@pytest.mark.parametrize("cls", [NNEFH, EBM], ids=lambda c: c.__name__)
def test_mode_jumps_put_a_kernel_jump_in_the_training_chains(monkeypatch, cls):
    """mode_jumps: every training update moves its chains once (the kernel on the kept training
    rows); "auto" does so for tables, and False adds no move."""
    X = np.random.default_rng(0).normal(size=(120, 2))
    calls = []
    original = KernelJump.__call__
    monkeypatch.setattr(KernelJump, "__call__", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    params = dict(n_statistics=8, max_iter=5, batch_size=32, random_state=0, device="cpu")
    if cls is NNEFH:
        params["n_components"] = 4
    cls(**params, mode_jumps=False).fit(X)
    assert calls == []
    est = cls(**params).fit(X)
    assert len(calls) == 5 and est._training_jump().rows.shape == (120, 2)
    images = cls(**params, n_filters=4).fit(np.random.default_rng(0).random((40, 64)))  # 8x8 images
    assert images._training_jump() is None and len(calls) == 5
