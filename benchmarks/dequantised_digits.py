"""A density of 8x8 digits from the tabular recipe: NNEFH and EBM on dequantised pixels.

At the image defaults the NN-EFH's and the EBM's densities are too peaked for AIS (the
likelihood page). This benchmark fits them as tables instead (``image_shape=None``: an MLP on
the 64 pixels, temperature 1, Metropolis-adjusted persistent chains, whitened rows) on digits
dequantised by uniform noise in [0, 1) added to the integer pixel values (without it, pixels
that are 0 in every image leave directions without variance, where a density is a spike). For
each model it prints and writes to ``<out>/<name>.json``: the held-out mean log-likelihood in
nats per image, log Z bracketed by forward and reverse AIS (``--steps`` each way) with the
forward run's effective sample size, and the fit time; ``GaussianMixture`` (full covariances,
components by BIC) beside them.

    python benchmarks/dequantised_digits.py                      # about 6 minutes on one thread
    python benchmarks/dequantised_digits.py --models nnefh --steps 1000,5000
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def load(seed: int, n_train: int):
    """Dequantised digits, shuffled with ``seed``: (X_train, X_test)."""
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float64)
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(X))
    X = X + rng.uniform(size=X.shape)
    return X[order[:n_train]], X[order[n_train:]]


def gaussian_mixture(X_train, X_test, components=(1, 2, 4, 8), seed=0) -> dict:
    from sklearn.mixture import GaussianMixture

    start = time.perf_counter()
    fits = [GaussianMixture(k, covariance_type="full", random_state=seed).fit(X_train) for k in components]
    best = min(fits, key=lambda g: g.bic(X_train))
    return {"log_likelihood": float(best.score(X_test)), "n_components": int(best.n_components),
            "fit_seconds": time.perf_counter() - start}


def skefh_model(name: str, X_train, X_test, steps, seed: int, max_iter=None) -> dict:
    from skefh import EBM, NNEFH

    params = dict(image_shape=None, random_state=seed, verbose=-1)
    if max_iter is not None:
        params["max_iter"] = max_iter
    est = {"nnefh": NNEFH, "ebm": EBM}[name](**params)
    start = time.perf_counter()
    est.fit(X_train)
    record = {"fit_seconds": time.perf_counter() - start, "updates": int(est.n_iter_), "brackets": []}
    for n_steps in steps:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.estimate_log_partition(n_steps=n_steps, bracket=True, random_state=seed + 1)
        lower, upper = float(est.log_partition_), est.log_partition_upper_
        record["brackets"].append({
            "steps": n_steps, "log_partition": lower, "log_partition_upper": upper,
            "width": None if upper is None else float(upper) - lower,
            "ess": float(est.log_partition_ess_), "log_likelihood": float(est.score(X_test)),
            "warnings": sorted({str(w.message) for w in caught}),
        })
    record["log_likelihood"] = record["brackets"][-1]["log_likelihood"]
    return record


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="nnefh,ebm")
    parser.add_argument("--steps", default="5000", help="AIS steps each way, comma-separated")
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--max-iter", type=int, default=None, help="updates (default: the estimators' own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="dequantised-digits")
    parser.add_argument("--out", default="results/density")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    X_train, X_test = load(args.seed, args.n_train)
    steps = [int(s) for s in args.steps.split(",")]
    results = {"name": args.name, "seed": args.seed, "n_train": len(X_train), "n_test": len(X_test),
               "models": {"gmm": gaussian_mixture(X_train, X_test, seed=args.seed)}}
    print(f"GaussianMixture ({results['models']['gmm']['n_components']} components): "
          f"{results['models']['gmm']['log_likelihood']:.2f} nats per image", flush=True)
    for name in args.models.split(","):
        record = results["models"][name] = skefh_model(name, X_train, X_test, steps, args.seed, args.max_iter)
        print(f"{name}: fit {record['fit_seconds']:.0f} s ({record['updates']} updates)", flush=True)
        for b in record["brackets"]:
            width = "n/a" if b["width"] is None else f"{b['width']:.2f}"
            print(f"  {b['steps']} steps: log Z {b['log_partition']:.2f}, bracket width {width} nats, "
                  f"effective samples {b['ess']:.1f}, held-out {b['log_likelihood']:.2f} nats per image", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / (args.name + '.json')}")
    return results


if __name__ == "__main__":
    main()
