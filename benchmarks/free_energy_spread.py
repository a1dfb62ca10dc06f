"""How sharply a fitted model's density ranks real images: the spread of F(x) / tau over test data.

A model's density is exp(-F_tau(x) / tau). When the free energies of the test images differ by
thousands of tau, that density puts nearly all of its mass near the lowest-energy images, and a
sampler that reaches equilibrium returns those few kinds of image however varied the data are.
This script prints, for each model, the mean and spread of F over the test images, the spread in
units of tau (nats of log-density), the mean F per class, and the classes of the lowest-F images::

    python benchmarks/free_energy_spread.py results/sample_quality/f4-cpu-nnefh-nnefh.joblib \\
        results/sample_quality/f6-cpu-ebm-lr2e-4-ebm.joblib

Writes ``results/free_energy_spread/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np

from skefh.datasets import load_dataset


def spread(est, X: np.ndarray, y: np.ndarray, n_lowest: int) -> dict:
    """Free-energy statistics of ``est`` over the rows ``X`` with labels ``y``."""
    free_energy = np.asarray(est.free_energy(X), dtype=np.float64)
    temperature = float(est.module_.temperature)
    lowest = np.argsort(free_energy)[:n_lowest]
    classes = np.unique(y)
    return {
        "temperature": temperature,
        "mean": float(free_energy.mean()),
        "std": float(free_energy.std()),
        "min": float(free_energy.min()),
        "max": float(free_energy.max()),
        "std_over_temperature": float(free_energy.std() / temperature),
        "class_mean": {int(c): float(free_energy[y == c].mean()) for c in classes},
        "lowest_classes": {int(c): int((y[lowest] == c).sum()) for c in classes},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="fitted models pickled by sample_quality.py --save-models")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-lowest", type=int, default=100)
    parser.add_argument("--name", default="spread")
    parser.add_argument("--out-dir", default="results/free_energy_spread")
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    X, y = data.X_test[: args.n_test], np.asarray(data.y_test[: args.n_test])
    results = {"dataset": args.dataset, "n_test": len(X), "models": {}}
    for path in args.models:
        stats = spread(joblib.load(path), X, y, args.n_lowest)
        results["models"][path] = stats
        by_class = sorted(stats["class_mean"].items(), key=lambda item: item[1])
        print(f"{Path(path).stem}: F mean {stats['mean']:.1f}, std {stats['std']:.1f} "
              f"(min {stats['min']:.1f}, max {stats['max']:.1f}); std / tau = {stats['std_over_temperature']:.0f} nats")
        print("  mean F by class, lowest first: " + ", ".join(f"{c}: {f:.1f}" for c, f in by_class))
        print(f"  classes of the {args.n_lowest} lowest-F images: "
              + ", ".join(f"{c}: {n}" for c, n in stats["lowest_classes"].items() if n))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out_dir / (args.name + '.json')}")


if __name__ == "__main__":
    main()
