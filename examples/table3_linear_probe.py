"""Reproduce Table 3 of the paper: linear-probe accuracy of NN-EFH, EBM and GRBM features.

Trains NNEFH, EBM and GRBM with the same preset budget on one dataset, then evaluates every
feature set with the same protocol, and prints a markdown table beside the paper's numbers:

    python examples/table3_linear_probe.py --dataset fashion-mnist --preset cpu
    python examples/table3_linear_probe.py --dataset cifar10 --data-dir ~/data --preset paper
    python examples/table3_linear_probe.py --dataset digits --max-iter 50      # a quick check
    python examples/table3_linear_probe.py --fitted nnefh=results/sample_quality/f1-nnefh.joblib

``--fitted MODEL=PATH`` probes a model fitted elsewhere (a pickle, e.g. one that
``benchmarks/sample_quality.py --save-models`` wrote) instead of training that model.

Protocol (every row): features of the full training split -> StandardScaler fitted on the
training features -> multinomial logistic regression (L2, C=1, lbfgs) fitted on the training
split -> accuracy on the test split. Rows: NN-EFH U(x), eta(x) and the posterior means p(z|x),
each beside the same estimator with untrained weights (so that what training adds is
visible), the EBM's penultimate layer U(x), the GRBM's p(h=1|v), and raw pixels. The paper does
not state its classifier, feature scaling or split; this protocol is ours and is the same for
every row.

Writes ``<out>/table3_<dataset>_<preset>.json`` (accuracies, timings, settings), the fitted
models (``<out>/<model>.joblib``, for ``paper_figures.py``) and 64-image sample grids.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import joblib
from sklearn.base import clone

from skefh.datasets import load_dataset
from skefh.metrics import linear_probe, probe_table
from skefh.plotting import save_image_grid
from skefh.presets import PRESETS, make_estimator

#: The paper's Table 3 (linear evaluation accuracy, %).
PAPER_TABLE3 = {
    "cifar10": {"NN-EFH U(x)": 53.0, "NN-EFH eta(x)": 47.0, "EBM penultimate U(x)": 29.0},
    "fashion-mnist": {"NN-EFH U(x)": 71.0, "NN-EFH eta(x)": 62.0, "EBM penultimate U(x)": 35.0},
}


def fit_timed(estimator, X):
    start = time.perf_counter()
    estimator.fit(X)
    return estimator, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist", "cifar10"])
    parser.add_argument("--data-dir", default=None, help="where the dataset lives (see skefh.datasets)")
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--max-iter", type=int, default=None, help="override the preset's number of updates")
    parser.add_argument("--models", default="nnefh,ebm,grbm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/table3")
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--fitted", action="append", default=[], metavar="MODEL=PATH",
                        help="probe this pickled fitted model instead of training MODEL (repeatable)")
    args = parser.parse_args(argv)
    pickles = {}
    for item in args.fitted:
        model, sep, path = item.partition("=")
        if not sep or model not in ("nnefh", "ebm", "grbm"):
            parser.error(f"--fitted takes MODEL=PATH with MODEL one of nnefh, ebm, grbm; got {item!r}")
        pickles[model] = Path(path)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.dataset, args.data_dir)
    print(f"{args.dataset}: {len(data.X_train)} train / {len(data.X_test)} test images of shape {data.image_shape}")
    overrides = {"random_state": args.seed, "verbose": args.verbose, "log_partition": None}
    if args.max_iter is not None:
        overrides["max_iter"] = args.max_iter

    results, timings, fitted, settings = {}, {}, {}, {}
    for model in args.models.split(","):
        if model in pickles:
            est = joblib.load(pickles[model])
            print(f"{model}: {est.n_iter_} updates, fitted elsewhere ({pickles[model]})")
        else:
            est, seconds = fit_timed(make_estimator(model, args.preset, **overrides), data.X_train)
            timings[f"fit_{model}"] = seconds
            print(f"{model}: {est.n_iter_} updates in {seconds:.0f} s ({seconds / max(est.n_iter_, 1):.3f} s/update)")
        fitted[model] = est
        settings[model] = {k: repr(v) for k, v in est.get_params().items()}
        joblib.dump(est, out / f"{model}.joblib")
        X0 = data.X_test[:64] if model != "ebm" else None
        samples = est.sample(64, X=X0, random_state=args.seed)
        save_image_grid(out / f"samples_{args.dataset}_{model}.png", samples, data.image_shape, value_range=(0.0, 1.0))

    def probe(name, transform):
        start = time.perf_counter()
        results[name] = linear_probe(transform(data.X_train), data.y_train, transform(data.X_test), data.y_test)
        timings[f"probe_{name}"] = time.perf_counter() - start
        print(f"  {name}: {100 * results[name].accuracy:.1f} %", flush=True)

    if "nnefh" in fitted:
        est = fitted["nnefh"]
        # The same estimator (network, coupling, sizes) with its weights as initialised.
        untrained = clone(est).set_params(max_iter=0, verbose=-1, checkpoint_path=None).fit(data.X_train)
        for features, label in (("U", "U(x)"), ("eta", "eta(x)"), ("mean", "p(z|x)")):
            probe(f"NN-EFH {label}", est.set_params(features=features).transform)
            probe(f"untrained network {label}", untrained.set_params(features=features).transform)
        est.set_params(features="U")
    if "ebm" in fitted:
        probe("EBM penultimate U(x)", fitted["ebm"].transform)
    if "grbm" in fitted:
        probe("GRBM p(h|v)", fitted["grbm"].transform)
    probe("raw pixels", lambda X: X)

    paper = PAPER_TABLE3.get(args.dataset, {})
    lines = ["| features | ours (%) | paper (%) |", "| --- | ---: | ---: |"]
    for name, result in results.items():
        reference = paper.get(name)
        lines.append(f"| {name} | {100 * result.accuracy:.1f} | {'' if reference is None else f'{reference:.0f}'} |")
    table = "\n".join(lines)
    print()
    print(f"Table 3, {args.dataset}, preset {args.preset} (protocol: full train split -> standardise -> "
          "logistic regression -> test accuracy)")
    print(table)
    print()
    print(probe_table(results))
    report = {
        "dataset": args.dataset, "preset": args.preset, "seed": args.seed,
        "n_train": len(data.X_train), "n_test": len(data.X_test),
        "accuracy": {k: v.accuracy for k, v in results.items()}, "paper": paper,
        "probe": {k: v.to_dict() for k, v in results.items()}, "seconds": timings,
        "total_seconds": sum(timings.values()), "settings": settings,
        "fitted_elsewhere": {k: str(v) for k, v in pickles.items()},
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "table_markdown": table,
    }
    path = out / f"table3_{args.dataset}_{args.preset}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"total {report['total_seconds'] / 60:.1f} min; wrote {path}")


if __name__ == "__main__":
    main()
