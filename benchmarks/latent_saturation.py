"""How an NN-EFH's latent layer evolves over the first updates: U's mean against its spread, and
the share of units that vary across held-out inputs (issue 29's diagnosis).

One fit of ``--updates`` updates on digits; after each update listed in ``--at`` (and before the
first), on held-out digits:

- ``|u_mean|``: the root-mean-square over the N statistics of U's mean over the inputs;
- ``u_spread``: the mean over the statistics of U's standard deviation across the inputs;
- ``varying``: the share of units whose posterior mean has a standard deviation of at least 0.1
  across the inputs (``skefh.metrics.latent_usage``), ``always_on``, ``always_off``;
- ``sign_varying``: the share of units whose logit eta_k(x) is positive for more than 5 % and
  less than 95 % of the inputs;
- ``mean |eta/tau|``: the mean magnitude of the posterior's logits;
- ``logit dimension``: how many directions the units' logits span over the inputs
  (``latent_usage``'s participation ratio): one when every unit moves along the same direction.

``--init-scale F`` multiplies the coupling's initial weights W by F before the first update (and
in the untrained row), everything else as the preset: whether the units' spread over the inputs
is learned or kept from the random initial logits.

    python benchmarks/latent_saturation.py --preset cpu-short-run --updates 100
    python benchmarks/latent_saturation.py --preset cpu-short-run --updates 100 --set coupling=centred
    python benchmarks/latent_saturation.py --preset cpu-short-run --updates 1000 --at 1,10,100 --init-scale 0.1

Prints a table and writes ``<out>/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from skefh.cli import parse_overrides
from skefh.metrics import latent_usage
from skefh.nn.base import sampling_mode
from skefh.presets import PRESETS, make_estimator
from skefh.training import Callback, LambdaCallback


class ScaledInitialWeights(Callback):
    """Multiply the coupling's weights W by ``factor`` once, before the first update."""

    def __init__(self, factor: float):
        self.factor = float(factor)
        self.applied = False

    def on_fit_begin(self, trainer):
        if not self.applied:
            scale_coupling(trainer.model, self.factor)
            self.applied = True


def scale_coupling(module, factor: float) -> None:
    """W *= factor in place, outside autograd (the coupling's logits then start ``factor`` times as large)."""
    with torch.no_grad():
        module.weight.mul_(factor)


def snapshot(est, X_test: np.ndarray) -> dict:
    """The latent statistics of ``est``'s current weights on ``X_test`` (see the module notes)."""
    module = est.module_
    x = est._to_tensor(est.range_map_.to_working(X_test)).reshape(len(X_test), *module.input_shape)
    with sampling_mode(module), torch.no_grad():
        u = module.statistics(x)
        logits = module.natural_parameters(x)
    positive = (logits > 0).double().mean(0)
    usage = latent_usage(est, X_test)
    return {
        "u_mean_rms": float(u.mean(0).square().mean().sqrt()),
        "u_spread": float(u.std(0, correction=0).mean()),
        "varying": usage.varying_std,
        "always_on": usage.always_on,
        "always_off": usage.always_off,
        "sign_varying": float(((positive > 0.05) & (positive < 0.95)).double().mean()),
        "mean_abs_logit": float(logits.abs().mean()),
        "logit_dimension": usage.logit_dimension,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-short-run", choices=sorted(PRESETS))
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--at", default="1,5,30", help="also measure after these updates (comma-separated)")
    parser.add_argument("--set", action="append", default=[], help="estimator parameter key=value")
    parser.add_argument("--init-scale", type=float, default=1.0,
                        help="multiply the coupling's initial weights W by this (default 1: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out", default="results/latent_saturation")
    args = parser.parse_args(argv)

    X = load_digits().data
    X_train, X_test = X[:1500], X[1500:]
    at = sorted({int(a) for a in args.at.split(",") if a} | {args.updates})
    rows = {}

    def measure(trainer, record):
        if trainer.n_updates in at:
            rows[trainer.n_updates] = snapshot(est, X_test)

    overrides = parse_overrides(args.set)
    callbacks = [ScaledInitialWeights(args.init_scale), LambdaCallback(measure)]
    est = make_estimator("nnefh", args.preset, max_iter=args.updates, random_state=args.seed, verbose=-1,
                         log_partition=None, callbacks=callbacks, **overrides)
    untrained = make_estimator("nnefh", args.preset, max_iter=0, random_state=args.seed, verbose=-1,
                               log_partition=None, **overrides).fit(X_train)
    scale_coupling(untrained.module_, args.init_scale)
    rows[0] = snapshot(untrained, X_test)
    est.fit(X_train)

    print(f"NN-EFH, preset {args.preset}, {', '.join(args.set) or 'no overrides'}, initial W times "
          f"{args.init_scale:g}; {len(X_test)} held-out digits")
    print("| update | rms of U's mean | U's spread | varying | always on | always off | sign varies | mean |eta/tau| "
          "| logit dimension |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for update in sorted(rows):
        r = rows[update]
        print(f"| {update} | {r['u_mean_rms']:.3f} | {r['u_spread']:.4f} | {100 * r['varying']:.0f} % | "
              f"{100 * r['always_on']:.0f} % | {100 * r['always_off']:.0f} % | {100 * r['sign_varying']:.0f} % | "
              f"{r['mean_abs_logit']:.1f} | {r['logit_dimension']:.1f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scaled = [] if args.init_scale == 1.0 else [f"init{args.init_scale:g}"]
    name = args.name or "-".join(["saturation", args.preset, *[s.replace("=", "") for s in args.set], *scaled])
    path = out / f"{name}.json"
    path.write_text(json.dumps({"preset": args.preset, "set": args.set, "seed": args.seed,
                                "init_scale": args.init_scale,
                                "rows": {str(k): v for k, v in sorted(rows.items())}}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
