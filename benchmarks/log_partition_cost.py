"""What estimating log Z at the end of ``fit`` costs, against the fit itself.

    OMP_NUM_THREADS=1 python benchmarks/log_partition_cost.py --out results/log_partition_cost.json

Fits an NN-EFH without a log-partition estimate, then times, on the fitted model, the two things
an end-of-fit estimate does: the kernel lower bound on log Z (512 training rows, three kernel
variances) and one AIS estimate with the default budget (64 chains, 1,000 steps). Two models:
the README's quickstart NN-EFH on the digits training split (8x8), and the ``cpu`` preset's
NN-EFH on a 10,000-image slice of Fashion-MNIST (28x28) with a shorter fit.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from skefh import NNEFH
from skefh.datasets import load_digits, load_fashion_mnist
from skefh.presets import preset_params

QUICKSTART = dict(n_components=512, n_statistics=256, n_filters=32, gibbs_steps=2, langevin_steps=15)


def measure(name, est, X):
    start = time.perf_counter()
    est.fit(X)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    bound = est._kernel_lower_bound(X)
    bound_s = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.estimate_log_partition()
    ais_s = time.perf_counter() - start
    row = {
        "model": name, "n_train": len(X), "updates": est.n_iter_, "fit_seconds": fit_s,
        "bound_seconds": bound_s, "ais_seconds": ais_s,
        "overhead": (bound_s + ais_s) / fit_s, "log_z": est.log_partition_, "ess": est.log_partition_ess_,
        "bound": bound, "warnings": [str(w.message)[:80] for w in caught],
        "threads": torch.get_num_threads(),
    }
    print(f"{name}: fit {fit_s:.1f} s ({est.n_iter_} updates), bound {bound_s:.1f} s, AIS {ais_s:.1f} s "
          f"(+{100 * row['overhead']:.0f} %); log Z {est.log_partition_:.1f}, ESS {est.log_partition_ess_:.1f}/64",
          flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--digits-updates", type=int, default=300)
    parser.add_argument("--fashion-updates", type=int, default=200)
    args = parser.parse_args(argv)
    rows = []
    digits = load_digits()
    rows.append(measure("digits quickstart", NNEFH(**QUICKSTART, max_iter=args.digits_updates, random_state=0,
                                                   log_partition=None), digits.X_train))
    fashion = load_fashion_mnist()
    params = {**preset_params("nnefh", "cpu"), "max_iter": args.fashion_updates}
    rows.append(measure("fashion-mnist cpu preset", NNEFH(**params, random_state=0, log_partition=None),
                        fashion.X_train[:10_000]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
