"""Sampler speed: skefh's Gibbs-Langevin against a straightforward implementation.

Measures, for the paper's network (n_filters=128, U 1024, z 2048) at 1x28x28 and 3x32x32, batch 64:
Langevin steps per second, posterior evaluations per second, full training updates per second
(M=5, L=60 and a short M=2, L=15 setting), peak memory, and memory growth over many short
updates; on the CPU (2 threads by default) and on CUDA when present. The same run contains a
baseline written the way a newcomer would write Algorithm 1 in PyTorch (energy summed,
``torch.autograd.grad`` with the parameters still requiring grad, NCHW tensors, attention as
plain bmm/softmax, the W matmul at every step), checks that both compute the same energy
gradients on the same inputs and weights, and prints the ratio.

    python benchmarks/bench_sampler.py --quick          # CPU Langevin steps only, < 1 minute
    python benchmarks/bench_sampler.py --quick --device cuda --compile   # GPU: fp32/bf16, eager/compiled
    python benchmarks/bench_sampler.py --quick --shape 3x32x32
    python benchmarks/bench_sampler.py                  # everything (CPU: ~5 minutes)
    python benchmarks/bench_sampler.py --device cuda    # GPU figures (a few minutes)
    python benchmarks/bench_sampler.py --ablation       # the library's changes one at a time (CPU)
    python benchmarks/bench_sampler.py --profile        # where a library step's time goes (CPU)

``--ablation`` and ``--profile`` run ``sampler_ablation.py``, which builds on the helpers here.

``--quick`` ends with the line ``speedup: X.XX`` (library steps/s over baseline steps/s).
Results are written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from skefh.nn import ConvStatistics, NNEFHEnergy
from skefh.nn.base import compiled
from skefh.samplers import GibbsLangevinSettings, langevin, sampling_mode
from skefh.training import ContrastiveTrainer

EPS, TEMPERATURE, BATCH = 1.0, 5e-5, 64


# -- the straightforward baseline ------------------------------------------------------------------
class NaiveNonLocal(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.theta, self.phi, self.g = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c, c // 2, 1), nn.Conv2d(c, c // 2, 1)
        self.W = nn.Conv2d(c // 2, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        theta = self.theta(x).view(b, c // 2, -1).permute(0, 2, 1)
        phi = F.max_pool2d(self.phi(x), 2).view(b, c // 2, -1)
        g = F.max_pool2d(self.g(x), 2).view(b, c // 2, -1).permute(0, 2, 1)
        attn = F.softmax(torch.bmm(theta, phi), dim=-1)
        y = torch.bmm(attn, g).permute(0, 2, 1).contiguous().view(b, c // 2, h, w)
        return self.W(y) + x


class NaiveNet(nn.Module):
    def __init__(self, c, h, w, nf=128, n_out=1024):
        super().__init__()
        self.conv1 = nn.Conv2d(c, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, 2 * nf, 3, 1, 1)
        self.conv3 = nn.Conv2d(2 * nf, 4 * nf, 3, 1, 1)
        self.nl1, self.nl2 = NaiveNonLocal(nf), NaiveNonLocal(2 * nf)
        self.fc = nn.Linear(4 * nf * (h // 8) * (w // 8), n_out)

    def forward(self, x):
        x = F.max_pool2d(F.leaky_relu(self.conv1(x), 0.05), 2)
        x = self.nl1(x)
        x = F.max_pool2d(F.leaky_relu(self.conv2(x), 0.05), 2)
        x = self.nl2(x)
        x = F.max_pool2d(F.leaky_relu(self.conv3(x), 0.05), 2)
        return F.leaky_relu(self.fc(x.view(x.shape[0], -1)), 0.05)


class NaiveNNEFH(nn.Module):
    def __init__(self, shape, nf=128, n_u=1024, n_z=2048):
        super().__init__()
        self.net = NaiveNet(*shape, nf=nf, n_out=n_u)
        self.W = nn.Linear(n_u, n_z)
        self.mu = nn.Parameter(torch.zeros(shape))

    def energy(self, x, z):
        return ((x - self.mu) ** 2).sum(dim=(1, 2, 3)) - (self.W(self.net(x)) * z).sum(1)

    def posterior(self, x):
        return torch.sigmoid(self.W(self.net(x)))


def naive_langevin(model, x, z, n_steps):
    """Algorithm 1's inner loop as a newcomer writes it (energy / batch size, as in the paper)."""
    for _ in range(n_steps):
        x = x.detach().requires_grad_(True)
        energy = model.energy(x, z).sum() / x.shape[0]
        grad = torch.autograd.grad(energy, x)[0]
        x = x - EPS * grad + math.sqrt(2 * EPS * TEMPERATURE) * torch.randn_like(x)
    return x.detach()


def naive_training_update(model, opt, x_data, n_gibbs, n_langevin):
    z = torch.bernoulli(model.posterior(x_data)).detach()
    x_hat = torch.randn_like(x_data)
    z_hat = torch.bernoulli(model.posterior(x_hat)).detach()
    for _ in range(n_gibbs):
        x_hat = naive_langevin(model, x_hat, z_hat, n_langevin)
        z_hat = torch.bernoulli(model.posterior(x_hat)).detach()
    loss = model.energy(x_data, z).mean() - model.energy(x_hat, z_hat).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def copy_weights(library: NNEFHEnergy, naive: NaiveNNEFH) -> None:
    """Give the baseline exactly the library model's parameters."""
    s, n = library.statistics, naive.net
    with torch.no_grad():
        for a, b in [(s.conv1, n.conv1), (s.conv2, n.conv2), (s.conv3, n.conv3), (s.fc, n.fc)]:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        for a, b in [(s.attn1, n.nl1), (s.attn2, n.nl2)]:
            for name_a, name_b in [("theta", "theta"), ("phi", "phi"), ("g", "g"), ("out", "W")]:
                getattr(b, name_b).weight.copy_(getattr(a, name_a).weight)
                getattr(b, name_b).bias.copy_(getattr(a, name_a).bias)
        naive.W.weight.copy_(library.weight)
        naive.W.bias.copy_(library.bias)
        naive.mu.copy_(library.mu)


# -- the library ---------------------------------------------------------------------------------
def library_model(shape, device, nf=128):
    torch.manual_seed(0)
    model = NNEFHEnergy(ConvStatistics(shape, 1024, nf), shape, 1024, 2048)
    with torch.no_grad():  # non-zero attention outputs, so the check exercises the attention path
        for block in (model.statistics.attn1, model.statistics.attn2):
            block.out.weight.normal_(0, 0.02)
        model.mu.normal_(0, 0.1)
    return model.to(device).to(memory_format=torch.channels_last)


def paired_models_and_chain(shape, device):
    """The library's model, the baseline with the same weights, a chain state x and a latent z."""
    model = library_model(shape, device)
    naive = NaiveNNEFH(shape).to(device)
    copy_weights(model, naive)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(BATCH, *shape, device=device, generator=gen)
    z = torch.bernoulli(torch.full((BATCH, 2048), 0.5, device=device), generator=gen)
    return model, naive, x, z


def library_langevin(model, x, z, n_steps, precision="float32", compile_mode=False):
    with sampling_mode(model), compiled(model.statistics, compile_mode), \
            torch.autocast(x.device.type, torch.bfloat16, enabled=precision == "bfloat16"):
        return langevin(model.conditional_grad(z), x, step_size=EPS, n_steps=n_steps,
                        temperature=TEMPERATURE, energy_scale=1.0 / x.shape[0])["x"]


# -- measurement helpers ---------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats):
    """Median wall time of ``repeats`` calls after a warm-up (shared machines are noisy)."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_interleaved(fns, device, repeats):
    """Median wall time of each of ``fns`` (a dict), the calls taken in turn (a, b, a, b, ...).

    Timing one implementation after the other let the state left by the first (for one, glibc's
    malloc thresholds, which move with the sizes freed so far) speed up or slow down the second:
    the same comparison measured 1.4x to 1.9x in different orders. In turn, both see the same
    machine.
    """
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def environment() -> dict:
    """Where the figures were measured, for the head of a JSON report."""
    return {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_threads": torch.get_num_threads()}


def write_report(report: dict, out: str, speedup: float) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    print(f"speedup: {speedup:.2f}")


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def check_same_gradients(model, naive, x, z):
    """The library's per-sample dE/dx against the baseline's autograd of the summed energy."""
    with sampling_mode(model):
        fast = model.conditional_grad(z)(x)
    xr = x.detach().clone().contiguous().requires_grad_(True)
    (slow,) = torch.autograd.grad(naive.energy(xr, z).sum(), xr)
    err = float((fast - slow).abs().max() / slow.abs().max())
    return err


def bench_langevin(shape, device, n_steps, repeats, with_bf16=True, with_compile=False):
    model, naive, x, z = paired_models_and_chain(shape, device)
    result = {"shape": list(shape), "batch": BATCH, "gradient_rel_error": check_same_gradients(model, naive, x, z)}
    chains = {
        "baseline": lambda: naive_langevin(naive, x, z, n_steps),
        "library": lambda: library_langevin(model, x, z, n_steps),
    }
    if with_bf16:
        chains["bfloat16"] = lambda: library_langevin(model, x, z, n_steps, "bfloat16")
    if with_compile:
        # torch.compile of the statistics net (the estimators' compile=True), after its warm-up
        # compilation (timed_interleaved calls every chain once before timing).
        chains["compiled"] = lambda: library_langevin(model, x, z, n_steps, compile_mode=True)
        if with_bf16:
            chains["bfloat16_compiled"] = lambda: library_langevin(model, x, z, n_steps, "bfloat16", True)
    seconds = {name: t / n_steps for name, t in timed_interleaved(chains, device, repeats).items()}
    for name in ("compiled", "bfloat16_compiled"):
        if name in seconds:
            result[f"library_{name}_steps_per_s"] = 1 / seconds[name]
            result[f"speedup_{name}"] = seconds["baseline"] / seconds[name]
    t_naive, t_lib = seconds["baseline"], seconds["library"]
    result.update(baseline_steps_per_s=1 / t_naive, library_steps_per_s=1 / t_lib, speedup=t_naive / t_lib)
    if with_bf16:
        with sampling_mode(model), torch.autocast(device.type, torch.bfloat16):
            g16 = model.conditional_grad(z)(x)
        with sampling_mode(model):
            g32 = model.conditional_grad(z)(x)
        t_bf16 = seconds["bfloat16"]
        result.update(
            library_bf16_steps_per_s=1 / t_bf16,
            speedup_bf16=t_naive / t_bf16,
            bf16_gradient_rel_error=float((g16 - g32).norm() / g32.norm()),
        )
    return result


def bench_posterior(shape, device, repeats):
    model = library_model(shape, device)
    naive = NaiveNNEFH(shape).to(device)
    copy_weights(model, naive)
    x = torch.randn(BATCH, *shape, device=device)

    def baseline():
        with torch.no_grad():
            naive.posterior(x)

    def library():
        with sampling_mode(model), torch.inference_mode():
            torch.sigmoid(model.posterior_logits(x))

    seconds = timed_interleaved({"baseline": baseline, "library": library}, device, repeats)
    t_naive, t_lib = seconds["baseline"], seconds["library"]
    return {"baseline_posteriors_per_s": BATCH / t_naive, "library_posteriors_per_s": BATCH / t_lib}


def bench_update(shape, device, n_gibbs, n_langevin, repeats):
    model = library_model(shape, device)
    naive = NaiveNNEFH(shape).to(device)
    copy_weights(model, naive)
    data = torch.randn(BATCH, *shape, device=device)
    settings = GibbsLangevinSettings(n_gibbs, n_langevin, EPS, TEMPERATURE, energy_scale=1.0 / BATCH)
    gen = torch.Generator(device=device).manual_seed(0)
    from skefh.samplers import sample_from_noise

    trainer = ContrastiveTrainer(
        model, lambda m, x, g: sample_from_noise(m, len(x), settings, generator=g),
        torch.optim.Adam(model.parameters(), 1e-4), generator=gen,
    )
    opt = torch.optim.Adam(naive.parameters(), 1e-4)
    seconds = timed_interleaved(
        {"baseline": lambda: naive_training_update(naive, opt, data, n_gibbs, n_langevin),
         "library": lambda: trainer.train_step(data)},
        device, repeats,
    )
    t_naive, t_lib = seconds["baseline"], seconds["library"]
    return {"gibbs_steps": n_gibbs, "langevin_steps": n_langevin, "baseline_s_per_update": t_naive,
            "library_s_per_update": t_lib, "speedup": t_naive / t_lib}


def resident_mb() -> float:
    """Current resident memory of this process (Linux), not the all-time peak."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def bench_memory_growth(device, n_updates=1000):
    """Memory must not grow with the number of updates: a small model, many short updates."""
    torch.manual_seed(0)
    shape = (1, 12, 12)
    model = NNEFHEnergy(ConvStatistics(shape, 32, 8), shape, 32, 64).to(device)
    settings = GibbsLangevinSettings(2, 3, EPS, TEMPERATURE, energy_scale=1.0 / BATCH)
    from skefh.samplers import sample_from_noise

    trainer = ContrastiveTrainer(
        model, lambda m, x, g: sample_from_noise(m, len(x), settings, generator=g),
        torch.optim.Adam(model.parameters(), 1e-4), generator=torch.Generator(device=device).manual_seed(0),
    )
    data = torch.randn(BATCH, *shape, device=device)
    measure = (lambda: torch.cuda.memory_allocated(device) / 2**20) if device.type == "cuda" else resident_mb
    marks = {}
    for i in range(1, n_updates + 1):
        trainer.train_step(data)
        trainer.history.clear()  # the per-update records are the only intended growth
        if i in (10, 100, n_updates):
            marks[i] = measure()
    return {"memory_mb_after": marks, "growth_mb_10_to_end": marks[n_updates] - marks[10]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="Langevin-step comparison only, on --device (cpu: < 1 min)")
    parser.add_argument("--compile", action="store_true",
                        help="with --quick, also time the torch.compile'd statistics net (float32 and bf16)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "all"])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--shape", default="1x28x28", choices=["1x28x28", "3x32x32"],
                        help="input shape of --quick")
    parser.add_argument("--ablation", action="store_true",
                        help="CPU steps/s as the library's changes are added to the baseline one by one")
    parser.add_argument("--profile", action="store_true",
                        help="print a torch.profiler table of the library's Langevin steps at 1x28x28")
    parser.add_argument("--out", default="results/bench_sampler.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA is not available; skipping the GPU figures")
        devices = [d for d in devices if d != "cuda"]
        if not devices:
            return 1
    if args.profile or args.ablation:
        # sampler_ablation.py imports this module's helpers; it runs as its own script, so that
        # neither module imports the other back.
        script = Path(__file__).with_name("sampler_ablation.py")
        forwarded = ["--profile"] if args.profile else []
        return subprocess.call([sys.executable, str(script), *forwarded, "--threads", str(args.threads),
                                "--out", args.out])
    report = {**environment(), "quick": args.quick, "results": {}}
    if args.quick:
        shape = tuple(int(n) for n in args.shape.split("x"))
        device = torch.device(devices[0])
        r = bench_langevin(shape, device, n_steps=2 if device.type == "cpu" else 10, repeats=5,
                           with_compile=args.compile)
        report["results"][device.type] = {f"langevin_{args.shape}": r}
        print(json.dumps(r, indent=2))
        speedup = r["speedup"]
    else:
        for name in devices:
            device = torch.device(name)
            repeats = 5
            res = {}
            for shape in [(1, 28, 28), (3, 32, 32)]:
                key = "x".join(map(str, shape))
                n_steps = 10 if name == "cuda" else 3
                res[f"langevin_{key}"] = bench_langevin(shape, device, n_steps=n_steps, repeats=repeats)
                res[f"posterior_{key}"] = bench_posterior(shape, device, repeats=10)
                res[f"update_short_{key}"] = bench_update(shape, device, 2, 15, repeats=1)
                print(json.dumps({key: res[f"langevin_{key}"]}, indent=2), flush=True)
            res["update_paper_1x28x28"] = bench_update((1, 28, 28), device, 5, 60, repeats=1)
            res["peak_memory_mb"] = peak_memory_mb(device)
            res["memory_growth"] = bench_memory_growth(device, n_updates=1000)
            report["results"][name] = res
            print(json.dumps(res, indent=2), flush=True)
        speedup = report["results"][devices[0]]["langevin_1x28x28"]["speedup"]
    write_report(report, args.out, speedup)


if __name__ == "__main__":
    sys.exit(main())
