"""Sample quality against the sampling budget, for one fitted model.

Draws ``--n-samples`` samples of a model that ``benchmarks/sample_quality.py --save-models``
wrote, once per budget (``GIBBSxLANGEVIN``, e.g. ``10x60``: 10 Gibbs rounds of 60 Langevin steps)
and per start (``noise``; ``buffer``: the persistent training chains; ``data``: Algorithm 2,
latent chains from the posterior of test images), and judges each set as ``sample_quality.py``
does. Answers: how many steps does a chain started from noise need to reach the model?

    python benchmarks/sample_budget.py results/sample_quality/f4-cpu-nnefh-nnefh.joblib \\
        --budgets 2x15,10x30,20x60 --inits noise,data

``--anneal-from T0`` runs the Gibbs rounds of each budget from noise on a geometric temperature
ladder from T0 down to the model's temperature (one rung per round) instead of at one temperature.

Writes ``results/sample_budget/<name>.json`` and one PNG grid per row.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from sample_quality import draw, load_judge

from skefh.datasets import load_dataset
from skefh.plotting import save_image_grid
from skefh.samplers import gibbs_langevin


def parse_budget(text: str) -> tuple:
    gibbs, langevin = text.lower().split("x")
    return int(gibbs), int(langevin)


def annealed_from_noise(est, n: int, gibbs: int, langevin: int, start_temperature: float, seed: int):
    """``n`` chains from N(0, I), one Gibbs round of ``langevin`` steps per rung of a geometric
    temperature ladder from ``start_temperature`` down to the model's own."""
    if type(est).__name__ == "GRBM":  # its samples are conditional means, not the chains' states
        raise SystemExit("--anneal-from supports NNEFH and EBM models")
    settings = est.sampling_settings(langevin_steps=langevin)
    device = next(est.module_.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((n, *est.module_.input_shape), generator=generator, device=device)
    z = None
    ladder = np.geomspace(start_temperature, est.module_.temperature, gibbs) if gibbs > 1 else [est.module_.temperature]
    for temperature in ladder:
        rung = settings.with_(n_gibbs=1, temperature=float(temperature), latent_temperature=float(temperature))
        out = gibbs_langevin(est.module_, x, z, rung, generator=generator)
        x, z = out["x"], out["z"]
    return est.range_map_.to_data(x.reshape(n, -1).cpu().numpy().astype(np.float64), np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a fitted model pickled by sample_quality.py --save-models")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--budgets", default="2x15,4x30,10x30,10x60",
                        help="comma-separated GIBBSxLANGEVIN budgets")
    parser.add_argument("--inits", default="noise", help="comma-separated starts: noise, buffer, data")
    parser.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the model's)")
    parser.add_argument("--step-size", type=float, default=None)
    parser.add_argument("--anneal-from", type=float, default=None, metavar="T0",
                        help="from noise, cool from T0 to the model's temperature over the Gibbs rounds")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-reference", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-dir", default="results/sample_budget")
    parser.add_argument("--judge-dir", default="results/judge")
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    judge = load_judge(args.dataset, data, args.judge_dir)
    reference = data.X_test[: args.n_reference]
    est = joblib.load(args.model)
    model = type(est).__name__.lower()
    name = args.name or Path(args.model).stem + (f"-anneal{args.anneal_from:g}" if args.anneal_from else "")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    low, high = float(data.X_train.min()), float(data.X_train.max())
    options = {k: v for k, v in (("temperature", args.temperature), ("step_size", args.step_size)) if v is not None}
    if args.anneal_from is not None and options:
        parser.error("--anneal-from sets the temperatures itself; drop --temperature and --step-size")
    results = {"model": args.model, "dataset": args.dataset, "n_samples": args.n_samples, "options": options,
               "anneal_from": args.anneal_from, "rows": []}
    for init in [s.strip() for s in args.inits.split(",") if s.strip()]:
        for budget in [b.strip() for b in args.budgets.split(",") if b.strip()]:
            gibbs, langevin = parse_budget(budget)
            start = time.perf_counter()
            if args.anneal_from is not None:
                if init != "noise":
                    parser.error("--anneal-from starts chains from noise: use --inits noise")
                samples = annealed_from_noise(est, args.n_samples, gibbs, langevin, args.anneal_from, args.seed)
            else:
                samples = draw(est, init, args.n_samples, reference, args.seed, gibbs_steps=gibbs,
                               langevin_steps=langevin, **options)
            seconds = time.perf_counter() - start
            quality = judge.evaluate(samples, reference)
            grid = save_image_grid(out_dir / f"{name}-{init}-{budget}.png", samples[:100], data.image_shape,
                                   value_range=(low, high))
            free_energy = float(est.free_energy(samples).mean()) if hasattr(est, "free_energy") else None
            results["rows"].append({"init": init, "gibbs_steps": gibbs, "langevin_steps": langevin,
                                    "seconds": seconds, "mean_free_energy": free_energy, "grid": str(grid),
                                    **quality.to_dict()})
            print(f"{model} {init:<6} {budget:>7}: FD {quality.frechet_distance:7.1f} conf {quality.confidence:.3f} "
                  f"cov {quality.coverage:5.2f}  F {free_energy if free_energy is None else round(free_energy, 2)}"
                  f"  ({seconds:.0f} s)", flush=True)
            (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out_dir / (name + '.json')}")


if __name__ == "__main__":
    main()
