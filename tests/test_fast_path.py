"""The library's sampler against the straightforward baseline in benchmarks/bench_sampler.py."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_sampler import NaiveNNEFH, copy_weights, naive_langevin  # noqa: E402
from sampler_ablation import ABLATION, NET_FLAGS, AblationNet, ablation_drift  # noqa: E402

from skefh.nn import ConvStatistics, NNEFHEnergy  # noqa: E402
from skefh.samplers import langevin, sampling_mode  # noqa: E402


def _pair(shape, n_filters=8, n_u=32, n_z=16):
    torch.manual_seed(0)
    model = NNEFHEnergy(ConvStatistics(shape, n_u, n_filters), shape, n_u, n_z)
    with torch.no_grad():  # exercise the attention path too (its output is zero at init)
        for block in (model.statistics.attn1, model.statistics.attn2):
            block.out.weight.normal_(0, 0.1)
        model.mu.normal_(0, 0.1)
    naive = NaiveNNEFH(shape, nf=n_filters, n_u=n_u, n_z=n_z)
    copy_weights(model, naive)
    return model.to(memory_format=torch.channels_last), naive


def test_fast_energy_gradients_equal_the_baseline():
    for shape in [(1, 28, 28), (3, 16, 16)]:
        model, naive = _pair(shape)
        x = torch.randn(5, *shape)
        z = torch.bernoulli(torch.full((5, 16), 0.5))
        with sampling_mode(model):
            fast = model.conditional_grad(z)(x)
        xr = x.clone().requires_grad_(True)
        (slow,) = torch.autograd.grad(naive.energy(xr, z).sum(), xr)
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


def test_fast_langevin_chain_equals_the_baseline_chain():
    """Same noise, same steps: the two chains agree to float tolerance after 5 steps."""
    model, naive = _pair((1, 12, 12))
    x0 = torch.randn(4, 1, 12, 12)
    z = torch.bernoulli(torch.full((4, 16), 0.5))
    torch.manual_seed(7)
    slow = naive_langevin(naive, x0, z, 5)  # draws its noise with torch.randn_like
    noise_generator = torch.Generator().manual_seed(7)
    with sampling_mode(model):
        fast = langevin(model.conditional_grad(z), x0, step_size=1.0, n_steps=5, temperature=5e-5,
                        energy_scale=1 / 4, generator=noise_generator)["x"]
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


def test_every_ablation_variant_computes_the_library_gradient():
    """``bench_sampler.py --ablation`` times the baseline with the library's changes added one by
    one; every variant must compute the same drift, or the timings compare different functions."""
    for shape in [(1, 28, 28), (3, 16, 16)]:  # 28 -> 14 -> 7: the odd third stage is trimmed
        model, naive = _pair(shape)
        x = torch.randn(5, *shape)
        z = torch.bernoulli(torch.full((5, 16), 0.5))
        with sampling_mode(model):
            expected = model.conditional_grad(z)(x)
        flags = {}
        for name, change in ABLATION:
            flags.update(change)
            net = AblationNet(naive, **{k: flags.get(k, False) for k in NET_FLAGS})
            fmt = torch.channels_last if flags.get("channels_last") else torch.contiguous_format
            for p in naive.parameters():
                p.requires_grad_(not flags.get("frozen", False))
            drift = ablation_drift(naive.to(memory_format=fmt), net, z, hoist=flags.get("hoist", False))
            got = drift(x.contiguous(memory_format=fmt))
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
