"""Where the sampler's speed comes from: the baseline of ``bench_sampler.py`` with the library's
changes switched on one at a time, FLOP counts, the convolution's own rate, and a profile.

    python benchmarks/sampler_ablation.py              # the changes one at a time (CPU, ~3 minutes)
    python benchmarks/sampler_ablation.py --profile    # where a library step's time goes (CPU)

``bench_sampler.py --ablation`` and ``--profile`` run this script. It takes the baseline, the
library's model and the timers from ``bench_sampler.py`` (which does not import this module).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys

import torch
import torch.nn.functional as F
from bench_sampler import (
    BATCH,
    EPS,
    TEMPERATURE,
    NaiveNNEFH,
    environment,
    library_langevin,
    library_model,
    paired_models_and_chain,
    timed,
    timed_interleaved,
    write_report,
)
from torch import nn

from skefh.nn.frozen import conv2d, dense

# -- ablation: the library's changes to the baseline, switched on one at a time -----------------
ABLATION = (
    ("baseline", {}),
    ("+ parameters frozen", {"frozen": True}),
    ("+ W^T z once per round", {"hoist": True}),
    ("+ scaled_dot_product_attention (CUDA only)", {"sdpa": True}),
    ("+ pool before activation", {"pool_first": True}),
    ("+ odd-size trim", {"trim": True}),
    ("+ channels-last", {"channels_last": True}),
    ("+ dense layer through oneDNN", {"onednn_dense": True}),
    ("+ first-layer input gradient as product + fold", {"shallow_conv": True}),
)
NET_FLAGS = ("sdpa", "pool_first", "trim", "onednn_dense", "shallow_conv")


class AblationNet(nn.Module):
    """The baseline's network and weights, with the library's changes switched on by flags."""

    def __init__(self, naive: NaiveNNEFH, sdpa=False, pool_first=False, trim=False,
                 onednn_dense=False, shallow_conv=False):
        super().__init__()
        self.net, self.sdpa, self.pool_first, self.trim = naive.net, sdpa, pool_first, trim
        self.onednn_dense, self.shallow_conv = onednn_dense, shallow_conv

    def attention(self, block, x):
        b, c, h, w = x.shape
        q = block.theta(x).flatten(2).transpose(1, 2)
        k = F.max_pool2d(block.phi(x), 2).flatten(2).transpose(1, 2)
        v = F.max_pool2d(block.g(x), 2).flatten(2).transpose(1, 2)
        if self.sdpa and x.device.type != "cpu":  # the library's choice: bmm measured faster on the CPU
            y = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        else:
            y = torch.bmm(F.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1), v)
        return block.W(y.transpose(1, 2).reshape(b, c // 2, h, w)) + x

    def stage(self, conv, x):
        h, w = x.shape[-2:]
        if self.trim and (h % 2 or w % 2):
            x = F.conv2d(F.pad(x, (1, 1 - w % 2, 1, 1 - h % 2)), conv.weight, conv.bias)
        elif self.shallow_conv:  # skefh.nn.frozen.conv2d: only the one-to-four-channel first layer changes
            x = conv2d(x, conv.weight, conv.bias, padding=conv.padding)
        else:
            x = conv(x)
        if self.pool_first:
            return F.leaky_relu(F.max_pool2d(x, 2), 0.05)
        return F.max_pool2d(F.leaky_relu(x, 0.05), 2)

    def forward(self, x):
        n = self.net
        x = self.attention(n.nl1, self.stage(n.conv1, x))
        x = self.attention(n.nl2, self.stage(n.conv2, x))
        h = self.stage(n.conv3, x).flatten(1)
        h = dense(h, n.fc.weight, n.fc.bias) if self.onednn_dense else n.fc(h)
        return F.leaky_relu(h, 0.05)


def ablation_drift(naive, net, z, hoist):
    """dE/dx of the baseline's energy, through ``net``; with ``hoist`` W^T z is formed once."""
    mu = naive.mu.detach()
    direction = (z @ naive.W.weight).detach()

    def drift(x):
        x = x.detach().requires_grad_(True)
        if hoist:
            (g,) = torch.autograd.grad(net(x), x, grad_outputs=direction)
            return 2 * (x.detach() - mu) - g
        energy = ((x - naive.mu) ** 2).sum(dim=(1, 2, 3)) - (naive.W(net(x)) * z).sum(1)
        return torch.autograd.grad(energy.sum(), x)[0]

    return drift


def bench_ablation(shape, device, n_steps, repeats):
    """Langevin steps/s as the library's changes are added to the baseline one by one.

    Every variant gets its own copy of the baseline's weights (memory format and frozen flags are
    per variant) and the variants are timed in turn, so that they all see the same machine.
    """
    model, naive, x0, z = paired_models_and_chain(shape, device)
    reference = ablation_drift(naive, naive.net, z, hoist=False)(x0)
    flags, chains, errors = {}, {}, {}
    for name, change in ABLATION:
        flags.update(change)
        variant = copy.deepcopy(naive)
        net = AblationNet(variant, **{k: flags.get(k, False) for k in NET_FLAGS})
        fmt = torch.channels_last if flags.get("channels_last") else torch.contiguous_format
        variant.to(memory_format=fmt)
        for p in variant.parameters():
            p.requires_grad_(not flags.get("frozen", False))
        drift = ablation_drift(variant, net, z, hoist=flags.get("hoist", False))
        x = x0.contiguous(memory_format=fmt)
        errors[name] = float((drift(x) - reference).abs().max() / reference.abs().max())
        if errors[name] > 1e-3:
            raise RuntimeError(
                f"ablation step {name!r} changed the energy gradient (relative error {errors[name]:.1e})"
            )

        def chain(drift=drift, x=x):
            xt = x
            for _ in range(n_steps):
                xt = xt - (EPS / BATCH) * drift(xt) + math.sqrt(2 * EPS * TEMPERATURE) * torch.randn_like(xt)
            return xt

        chains[name] = chain
    chains["library"] = lambda: library_langevin(model, x0, z, n_steps)
    errors["library"] = None
    seconds = timed_interleaved(chains, device, repeats)
    base = n_steps / seconds["baseline"]
    return [
        {"variant": name, "steps_per_s": n_steps / t, "gradient_rel_error": errors[name],
         "speedup": n_steps / t / base}
        for name, t in seconds.items()
    ]


def conv_gflop_per_s(repeats=5):
    """The rate of the network's largest convolution alone (128 -> 256 channels, 3x3, 14x14, batch
    64, channels-last, forward only, no autograd): a practical ceiling for a whole Langevin step."""
    x = torch.randn(BATCH, 128, 14, 14).contiguous(memory_format=torch.channels_last)
    conv = nn.Conv2d(128, 256, 3, padding=1).to(memory_format=torch.channels_last)
    flop = 2 * BATCH * 14 * 14 * 256 * 128 * 9
    with torch.no_grad():
        return flop / timed(lambda: conv(x), torch.device("cpu"), repeats) / 1e9


def profile_langevin(shape, n_steps):
    """Where a library Langevin step spends its time, per operator and input shape."""
    from torch.profiler import ProfilerActivity, profile

    model = library_model(shape, torch.device("cpu"))
    x = torch.randn(BATCH, *shape)
    z = torch.bernoulli(torch.full((BATCH, 2048), 0.5))
    library_langevin(model, x, z, 2)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        library_langevin(model, x, z, n_steps)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{total / n_steps / 1e3:.1f} ms of operator time per step; the largest:")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]:
        share = e.self_cpu_time_total / total
        print(f"  {100 * share:5.1f} %  {e.key:38s} {str(e.input_shapes[:2])[:70]}")


def forward_gflop(shape):
    """Forward-pass GFLOP of the library's and the baseline's networks on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    model, naive = library_model(shape, torch.device("cpu")), NaiveNNEFH(shape)
    x = torch.randn(BATCH, *shape)
    counts = {}
    for name, fn in (("library", lambda: model.statistics(x)), ("baseline", lambda: naive.W(naive.net(x)))):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
        counts[name] = counter.get_total_flops() / 1e9
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true",
                        help="print a torch.profiler table of the library's Langevin steps at 1x28x28")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", default="results/bench_sampler.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.profile:
        profile_langevin((1, 28, 28), n_steps=4)
        return 0
    report = {**environment(), "quick": False, "results": {}}
    for shape in [(1, 28, 28), (3, 32, 32)]:
        key = "x".join(map(str, shape))
        rows = bench_ablation(shape, torch.device("cpu"), n_steps=3, repeats=7)
        gflop = forward_gflop(shape)
        report["results"][f"ablation_{key}"] = {"rows": rows, "forward_gflop": gflop}
        print(f"{key}: forward GFLOP per batch of {BATCH}: library {gflop['library']:.2f}, "
              f"baseline {gflop['baseline']:.2f}")
        for row in rows:
            err = "" if row["gradient_rel_error"] is None else f"  grad rel. err {row['gradient_rel_error']:.1e}"
            print(f"  {row['variant']:48s} {row['steps_per_s']:6.2f} steps/s  {row['speedup']:.2f}x{err}")
        # A Langevin step is a forward pass and an input gradient of about the same cost.
        rates = {"baseline": 2 * gflop["baseline"] * rows[0]["steps_per_s"],
                 "library": 2 * gflop["library"] * rows[-1]["steps_per_s"]}
        report["results"][f"ablation_{key}"]["approx_gflop_per_s"] = rates
        print(f"  about {rates['baseline']:.0f} GFLOP/s (baseline) and {rates['library']:.0f} GFLOP/s (library)")
    ceiling = conv_gflop_per_s()
    report["results"]["conv_ceiling_gflop_per_s"] = ceiling
    print(f"the largest convolution alone, forward only: {ceiling:.0f} GFLOP/s")
    for key, result in report["results"].items():
        if key.startswith("ablation_"):
            # Even at the convolution's own rate a step costs two forward passes' worth of FLOPs.
            result["ceiling_steps_per_s"] = ceiling / (2 * result["forward_gflop"]["library"])
            print(f"  {key[9:]}: at that rate at most {result['ceiling_steps_per_s']:.2f} steps/s "
                  f"(2x the baseline: {2 * result['rows'][0]['steps_per_s']:.2f})")
    speedup = report["results"]["ablation_1x28x28"]["rows"][-1]["speedup"]
    write_report(report, args.out, speedup)


if __name__ == "__main__":
    sys.exit(main())
