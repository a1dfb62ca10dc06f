"""Brackets on log Z for fitted models: forward AIS (a stochastic lower bound) against reverse AIS.

For each pickled model (``benchmarks/defaults.py --save-models`` writes them) the benchmark runs
the estimator's own AIS path forwards from its base (what ``score`` uses) and backwards from
rows of the data (``skefh.samplers.reverse_annealed_importance_sampling``: bidirectional Monte
Carlo with the data standing in for the model's samples, so the upper end is a diagnostic, not a
guarantee) and from the model's own ``sample`` output. It reports each log Z with its standard
error and effective sample size, the bracket's width in nats and in bits per dimension, the
kernel lower bound, and the held-out log-likelihood each end implies. With
``--kernel-variances`` it also reports, for each kernel variance, the two estimates of log Z that
need no chain (``skefh.samplers.kernel_log_weights`` on the rows the model keeps for its bound,
truncated to its box where it has one): the Jensen bound (the mean log-weight) and the
importance-sampling estimate (the log of the mean weight); an AIS estimate below either has
missed mass near the data. With ``--kernel-ais`` it also runs forward AIS from a base of those
kernels (``skefh.samplers.GaussianMixtureBasePath`` with one component per kept row) at each of
``--steps``: chains that start at the data rather than at the estimator's base, an independent
stochastic lower bound on the same log Z; where it lands well above the estimator's forward
run, that run missed mass. ``--kernel-centres chains`` centres those kernels on the final states
of the model's training chains (its replay buffer) instead: where the model's own chains ended,
rather than where the data are. ``--steps ""`` skips AIS. Writes ``<out>/<name>.json``.

    python benchmarks/defaults.py --dataset digits --save-models
    python benchmarks/score_brackets.py results/defaults/digits-*.joblib --dataset digits
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import joblib
import numpy as np
import torch

from skefh.datasets import load_dataset
from skefh.samplers import GaussianMixtureBasePath, annealed_importance_sampling, kernel_log_weights


def bracket(est, start_rows, n_steps: int, seed: int) -> dict:
    """Forward AIS from the base and reverse AIS from ``start_rows`` (data units) on ``est``'s path."""
    clock = time.perf_counter()
    forward = est._ais(len(start_rows), n_steps, seed)
    forward_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    reverse = est._reverse_ais(len(start_rows), n_steps, seed, rows=est.range_map_.to_working(start_rows))
    reverse_seconds = time.perf_counter() - clock
    width = reverse.log_z - forward.log_z
    return {"forward": _summary(forward, forward_seconds), "reverse": _summary(reverse, reverse_seconds),
            "width_nats": width, "width_bits_per_dim": width / (math.log(2) * est.n_features_in_)}


def kernel_estimates(est, variances, n_samples: int, seed: int) -> dict:
    """Chain-free estimates of log Z from kernels on the rows ``est`` keeps for its bound."""
    dtype = next(est.module_.parameters()).dtype
    centres = est._to_tensor(est._bound_rows).to(dtype)  # in the input shape the network takes
    box = est._density_box(dtype)
    tau = est.module_.temperature
    estimates = {}
    for variance in variances:
        generator = torch.Generator(device=est.device_).manual_seed(seed)
        weights = kernel_log_weights(est._working_log_density, centres, variance * tau, n_samples,
                                     generator=generator, bounds=box)
        estimates[str(variance)] = {
            "jensen": float(weights.mean()), "jensen_std": float(weights.std() / math.sqrt(n_samples)),
            "importance": float(torch.logsumexp(weights, 0) - math.log(n_samples)),
        }
    return estimates


def kernel_centres(est, which: str) -> torch.Tensor:
    """Kernel centres in working units and the network's input shape: the training rows ``est``
    keeps for its bound ("rows"), or the states its replay buffer's chains were written back with
    ("chains")."""
    dtype = next(est.module_.parameters()).dtype
    if which == "rows":
        centres = est._to_tensor(est._bound_rows)
    else:
        buffer = est._replay_buffer_state()
        if buffer is None or buffer["states"] is None or not bool(buffer["written"].any()):
            raise SystemExit(f"--kernel-centres chains: {type(est).__name__} has no replay buffer with written states")
        centres = buffer["states"][buffer["written"]]
    return centres.to(device=est.device_, dtype=dtype).reshape(len(centres), *est.module_.input_shape)


def kernel_ais(est, variance: float, n_chains: int, n_steps: int, seed: int, centres: str = "rows") -> dict:
    """Forward AIS on ``est``'s density from a mixture of Gaussian kernels (variance ``variance``
    times the temperature) on ``kernel_centres(est, centres)``, truncated to its box."""
    dtype = next(est.module_.parameters()).dtype
    means = kernel_centres(est, centres)
    path = GaussianMixtureBasePath(est.module_, means, torch.full_like(means, variance * est.module_.temperature),
                                   bounds=est._density_box(dtype))
    clock = time.perf_counter()
    result = annealed_importance_sampling(path, n_chains, n_steps,
                                          generator=torch.Generator(device=est.device_).manual_seed(seed))
    return _summary(result, time.perf_counter() - clock)


def _summary(result, seconds) -> dict:
    return {"log_z": result.log_z, "std": result.log_z_std, "ess": result.ess, "n_chains": result.n_chains,
            "acceptance": result.acceptance, "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="pickled fitted estimators")
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--steps", default="1000", help="comma-separated AIS step counts")
    parser.add_argument("--kernel-variances", default="",
                        help="comma-separated kernel variances (times the temperature) for chain-free estimates")
    parser.add_argument("--kernel-samples", type=int, default=512)
    parser.add_argument("--no-brackets", action="store_true",
                        help="at --steps, run only the --kernel-ais runs (no forward and reverse brackets)")
    parser.add_argument("--kernel-ais", default="",
                        help="comma-separated kernel variances (times the temperature) of AIS bases on the kept rows")
    parser.add_argument("--kernel-centres", default="rows", choices=["rows", "chains"],
                        help="centre the --kernel-ais kernels on the kept training rows or on the final states "
                             "of the training chains (the replay buffer)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-dir", default="results/score_brackets")
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    rng = np.random.default_rng(args.seed)
    train_rows = data.X_train[rng.choice(len(data.X_train), args.chains, replace=False)]
    held_out = data.X_test[:500]
    results = {"dataset": args.dataset, "chains": args.chains, "models": {}}
    for path in args.models:
        est = joblib.load(path)
        name = Path(path).stem
        steps = [int(s) for s in args.steps.split(",") if s]
        brackets = not args.no_brackets
        own = est.sample(args.chains, random_state=args.seed) if steps and brackets else None  # reverse starts only
        unnormalised = est.set_params(log_partition=None).score_samples(held_out).mean()
        rows = {"kernel_lower_bound": est._kernel_lower_bound(), "held_out_unnormalised": float(unnormalised),
                "brackets": {}}
        if args.kernel_variances:
            variances = [float(v) for v in args.kernel_variances.split(",")]
            rows["kernel_estimates"] = kernel_estimates(est, variances, args.kernel_samples, args.seed)
            for variance, k in rows["kernel_estimates"].items():
                print(f"{name}: kernel variance {variance}: Jensen bound {k['jensen']:.2f} ± {k['jensen_std']:.2f}, "
                      f"importance estimate {k['importance']:.2f}", flush=True)
        for n_steps in steps:
            for variance in [float(v) for v in args.kernel_ais.split(",") if v]:
                k = kernel_ais(est, variance, args.chains, n_steps, args.seed, args.kernel_centres)
                key = f"{n_steps}-variance-{variance}" + ("" if args.kernel_centres == "rows" else "-on-chains")
                rows.setdefault("kernel_ais", {})[key] = k
                print(f"{name}: {n_steps} steps from kernels of variance {variance} on the {args.kernel_centres}: "
                      f"log Z {k['log_z']:.2f} "
                      f"± {k['std']:.2f} (ESS {k['ess']:.1f})", flush=True)
            for start_name, start in (("data", train_rows), ("samples", own)) if brackets else ():
                b = bracket(est, start, n_steps, args.seed)
                b["held_out_score"] = {end: float(unnormalised - b[end]["log_z"]) for end in ("forward", "reverse")}
                rows["brackets"][f"{n_steps}-from-{start_name}"] = b
                print(f"{name}: {n_steps} steps, reverse from {start_name}: forward log Z {b['forward']['log_z']:.2f} "
                      f"± {b['forward']['std']:.2f} (ESS {b['forward']['ess']:.1f}), reverse "
                      f"{b['reverse']['log_z']:.2f} ± {b['reverse']['std']:.2f} (ESS {b['reverse']['ess']:.1f}); "
                      f"width {b['width_nats']:.2f} nats = {b['width_bits_per_dim']:.3f} bits/dim; held-out "
                      f"score {b['held_out_score']['forward']:.2f} .. {b['held_out_score']['reverse']:.2f}; "
                      f"kernel bound {rows['kernel_lower_bound']}", flush=True)
        results["models"][name] = rows
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{args.name or args.dataset}.json"
    target.write_text(json.dumps(results, indent=1))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
