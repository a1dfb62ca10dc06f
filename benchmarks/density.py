"""Density quality: NNEFH, EBM and GRBM beside GaussianMixture and KernelDensity (issue 30).

For each dataset (2-D: moons, circles, three blobs; tabular: wine, breast_cancer; all
standardised on the training rows, 2/3 train and 1/3 held out) every model is fitted on the
training rows and reports:

- the held-out mean log-likelihood in nats per row (skefh: ``score``; a
  ``LikelihoodError`` is recorded as "raises" with its message),
- the unbiased squared MMD (``skefh.metrics.mmd``, Gaussian kernel, median bandwidth) between
  ``--n-samples`` of the model's samples and the held-out rows,
- with ``--bracket STEPS``, for the skefh models whose log Z is estimated: forward AIS and
  reverse AIS from training rows with STEPS steps each way (``estimate_log_partition(bracket=True)``),
  the bracket's width and the forward run's effective sample size,
- the fit time in seconds (GaussianMixture: components 1..10 chosen by BIC; KernelDensity:
  bandwidth by 5-fold GridSearchCV; both searches included),
- on the 2-D sets, ``skefh.metrics.sample_score_agreement``: the model's samples against draws
  from its ``score_samples`` normalised on a grid (MMD p-value, mean log-density gap in nats,
  log of the scored density's mass in the box, mass in the box's border).

Prints markdown tables, writes ``<out>/<name>.json`` and one PNG per dataset,
``<out>/<name>-<dataset>.png``, of each model's samples over the held-out rows (the tabular sets
projected onto the training rows' first two principal components).

    python benchmarks/density.py                                   # everything, estimators' defaults
    python benchmarks/density.py --models gmm,kde,nnefh --datasets moons --preset cpu
    python benchmarks/density.py --set temperature=1.0 --set grbm:max_iter=20 --name t1
    python benchmarks/density.py --quick --datasets moons --models gmm,kde   # smoke run

``--set key=value`` overrides a parameter of every skefh estimator; ``--set model:key=value``
(e.g. ``nnefh:max_iter=100``) of one of them only. Values are Python literals (see
``skefh.cli.parse_overrides``). Any model's error is recorded in the JSON, never fatal.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
from density_baselines import GMMByBIC, KDEByCV

SKEFH_MODELS = ("nnefh", "ebm", "grbm")
ALL_MODELS = SKEFH_MODELS + ("gmm", "kde")
DATASETS_2D = ("moons", "circles", "blobs")
DATASETS_TABULAR = ("wine", "breast_cancer")
LABELS = {"nnefh": "NNEFH", "ebm": "EBM", "grbm": "GRBM", "gmm": "GaussianMixture", "kde": "KernelDensity"}


def load(name: str, seed: int = 0, quick: bool = False):
    """Standardised ``(X_train, X_test)`` of one dataset (float64; 2/3 of the rows to train)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    n = 600 if quick else 1500
    if name == "moons":
        X = datasets.make_moons(n, noise=0.08, random_state=seed)[0]
    elif name == "circles":
        X = datasets.make_circles(n, noise=0.05, factor=0.5, random_state=seed)[0]
    elif name == "blobs":
        X = datasets.make_blobs(n, centers=3, n_features=2, random_state=seed)[0]
    elif name == "wine":
        X = datasets.load_wine().data
    elif name == "breast_cancer":
        X = datasets.load_breast_cancer().data
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS_2D + DATASETS_TABULAR}")
    train, test = train_test_split(np.asarray(X, dtype=np.float64), test_size=1 / 3, random_state=seed)
    scaler = StandardScaler().fit(train)
    return scaler.transform(train), scaler.transform(test)


def split_overrides(items) -> tuple[dict, dict]:
    """``--set`` items as (overrides for every skefh model, {model: its own overrides})."""
    from skefh.cli import parse_overrides

    common, per_model = {}, {}
    for key, value in parse_overrides(items).items():
        model, sep, param = key.partition(":")
        if sep:
            if model not in SKEFH_MODELS:
                raise SystemExit(f"--set {key}: {model!r} is not one of {SKEFH_MODELS}")
            per_model.setdefault(model, {})[param] = value
        else:
            common[key] = value
    return common, per_model


def build(model: str, preset, common: dict, per_model: dict, seed: int, quick: bool):
    """An unfitted model: a skefh estimator (its defaults, or ``preset``) or a wrapper."""
    if model == "gmm":
        return GMMByBIC(4 if quick else 10, random_state=seed)
    if model == "kde":
        return KDEByCV(np.logspace(-1.3, 0.2, 5 if quick else 20), cv=3 if quick else 5)
    from skefh.presets import estimator_class, make_estimator

    params = {"random_state": seed, **common, **per_model.get(model, {})}
    if preset:
        return make_estimator(model, preset, **params)
    return estimator_class(model)(**params)


def _error(exc) -> str:
    return f"{type(exc).__name__}: {exc}"


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def held_out_likelihood(est, X_test) -> dict:
    """``score`` on the held-out rows: a number, or "raises" with the message."""
    from skefh.estimators import LikelihoodError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(est.score(X_test))
            out = {"log_likelihood": value if math.isfinite(value) else str(value)}
        except LikelihoodError as exc:
            out = {"log_likelihood": "raises", "log_likelihood_error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            out = {"log_likelihood": "error", "log_likelihood_error": _error(exc)}
    if caught:
        out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    stored = getattr(est, "log_partition_", None)
    if stored is not None:
        out["log_partition"] = float(stored)
        out["log_partition_std"] = _finite(getattr(est, "log_partition_std_", None))
    return out


def bracket(est, n_steps: int, seed: int) -> dict:
    """A bidirectional estimate of log Z (forward AIS and reverse AIS from training rows) with
    ``n_steps`` steps each way: the lower and upper ends, their width and the effective sample
    size; empty where log Z is exact."""
    if getattr(est, "log_partition_std_", None) == 0.0:
        return {}
    probe = copy.deepcopy(est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            probe.estimate_log_partition(n_steps=n_steps, bracket=True, random_state=seed)
        except Exception as exc:  # noqa: BLE001
            return {"bracket_error": _error(exc)}
    out = {"bracket_steps": n_steps, "log_partition_lower": float(probe.log_partition_),
           "log_partition_upper": _finite(getattr(probe, "log_partition_upper_", None)),
           "bracket_ess": _finite(getattr(probe, "log_partition_ess_", None))}
    if out["log_partition_upper"] is not None:
        out["bracket_width"] = out["log_partition_upper"] - out["log_partition_lower"]
    if caught:
        out["bracket_warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return out


def box(X_train, X_test, pad=0.5):
    """The data's range padded by ``pad`` times its width on each side."""
    both = np.concatenate([X_train, X_test])
    low, high = both.min(0), both.max(0)
    return low - pad * (high - low), high + pad * (high - low)


def agreement(est, model, low, high, args) -> dict:
    """``sample_score_agreement``; where ``score_samples`` cannot estimate log Z, on the
    unnormalised density (a copy with ``log_partition=None``), said so in the record."""
    from skefh.estimators import LikelihoodError
    from skefh.metrics import sample_score_agreement

    options = dict(n_samples=args.n_samples, n_grid=args.n_grid, n_permutations=args.n_permutations,
                   random_state=args.seed)
    density = "score_samples"
    try:
        report = sample_score_agreement(est, low, high, **options)
    except LikelihoodError:
        if model not in SKEFH_MODELS:
            raise
        unnormalised = copy.deepcopy(est).set_params(log_partition=None)
        report = sample_score_agreement(est, low, high, log_density=unnormalised.score_samples, **options)
        density = "unnormalised (score_samples raises LikelihoodError)"
    out = {"density": density, **report.to_dict(), "agrees": report.agrees()}
    if density != "score_samples":
        out["log_partition_grid"] = report.log_mass  # the log-integral of the unnormalised density
        out["log_mass"] = None
    return out


def evaluate(model, X_train, X_test, is_2d, args, common, per_model) -> tuple[dict, np.ndarray | None]:
    """Fit one model and measure it; every failure is recorded in the returned dict."""
    from skefh.metrics import mmd

    record, samples = {"model": model}, None
    try:
        est = build(model, args.preset, common, per_model, args.seed, args.quick)
    except Exception as exc:  # noqa: BLE001
        return {**record, "error": _error(exc)}, None
    start = time.perf_counter()
    try:
        est.fit(X_train)
    except Exception as exc:  # noqa: BLE001
        record.update(fit_seconds=time.perf_counter() - start, error=_error(exc),
                      traceback=traceback.format_exc(limit=3))
        return record, None
    record["fit_seconds"] = time.perf_counter() - start
    if hasattr(est, "describe"):
        record.update(est.describe())
    else:
        record["params"] = {k: repr(v) for k, v in est.get_params().items() if k != "callbacks"}
        record["updates"] = getattr(est, "n_iter_", None)
    record.update(held_out_likelihood(est, X_test))
    if args.bracket and model in SKEFH_MODELS:
        record.update(bracket(est, args.bracket, args.seed))
    start = time.perf_counter()
    try:
        samples = np.asarray(est.sample(args.n_samples, random_state=args.seed), dtype=np.float64)
        record["sample_seconds"] = time.perf_counter() - start
        bad = ~np.all(np.isfinite(samples), axis=1)
        if bad.any():
            record["non_finite_samples"] = int(bad.sum())
            samples = samples[~bad]
        record["mmd"] = mmd(samples, X_test)
    except Exception as exc:  # noqa: BLE001
        record["mmd"] = "error"
        record["sample_error"] = _error(exc)
    if is_2d:
        try:
            record["agreement"] = agreement(est, model, *box(X_train, X_test), args)
        except Exception as exc:  # noqa: BLE001
            record["agreement"] = {"error": _error(exc)}
    return record, samples


def plot(path, name, X_test, samples: dict, projection=None):
    """One panel per model: its samples (colour) over the held-out rows (grey), same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    project = (lambda a: a) if projection is None else projection.transform
    data = project(X_test)
    low, high = box(data, data, pad=0.3)
    panels = list(samples)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, model in zip(axes[0], panels):
        ax.scatter(data[:, 0], data[:, 1], s=4, c="0.6", label="held-out")
        title = LABELS.get(model, model)
        if samples[model] is None or len(samples[model]) == 0:
            ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
        else:
            points = project(samples[model])
            outside = np.mean(np.any((points < low) | (points > high), axis=1))
            ax.scatter(points[:, 0], points[:, 1], s=3, c="tab:blue", alpha=0.5, label="samples")
            if outside > 0:
                title += f"\n{outside:.0%} of samples outside"
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="lower left", fontsize=7, markerscale=3)
    fig.suptitle(name + ("" if projection is None else " (first two principal components)"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _cell(value, fmt="{:.2f}"):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt.format(value)
    return "—" if value is None else str(value)


def tables(results, previous=None) -> str:
    """Markdown tables: held-out log-likelihood, MMD, fit seconds; agreement on the 2-D sets.
    With ``previous`` (an earlier run's JSON), each cell shows "new (previous)"."""
    names = list(results["datasets"])
    models = results["models"]
    lines = []

    def record(run, d, m):
        return ((run or {}).get("datasets", {}).get(d) or {}).get("models", {}).get(m, {})

    def table(title, key, fmt, sets):
        lines.extend([f"\n{title}" + (f" (in parentheses: {previous['name']})" if previous else "") + "\n",
                      "| model | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)])
        for m in models:
            cells = []
            for d in sets:
                cell = _cell(key(record(results, d, m)), fmt)
                if previous is not None and record(previous, d, m):
                    cell += f" ({_cell(key(record(previous, d, m)), fmt)})"
                cells.append(cell)
            lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(cells) + " |")

    def field(name):
        return lambda r: r.get(name, r.get("error") and "error")

    table("Held-out mean log-likelihood (nats per row)", field("log_likelihood"), "{:.2f}", names)
    table("MMD² of samples against held-out rows", field("mmd"), "{:.4f}", names)
    table("Fit seconds", field("fit_seconds"), "{:.1f}", names)
    if any(record(results, d, m).get("bracket_steps") for d in names for m in models):
        table("log Z bracket width, upper minus lower end (nats)", field("bracket_width"), "{:.2f}", names)
        table("Effective samples of the forward AIS (of its chains)", field("bracket_ess"), "{:.1f}", names)
    flat = [d for d in names if d in DATASETS_2D]
    if flat:
        def agree(r):
            a = r.get("agreement")
            if not a:
                return r.get("error") and "error"
            if "error" in a:
                return "error"
            star = "" if a["density"] == "score_samples" else "*"
            return (f"p={a['p_value']:.3f} gap={a['log_density_gap']:+.2f} "
                    f"out={a['samples_outside']:.0%} border={a['border_mass']:.2f}{star}")
        table("Samples vs scored density (MMD p-value, mean log-density gap in nats, samples outside "
              "the box, scored mass in the box's border; * unnormalised density)", agree, "{}", flat)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ALL_MODELS))
    parser.add_argument("--datasets", default=",".join(DATASETS_2D + DATASETS_TABULAR))
    parser.add_argument("--preset", default=None, help="skefh preset (default: the estimators' own defaults)")
    parser.add_argument("--set", action="append", default=[], help="key=value or model:key=value")
    parser.add_argument("--quick", action="store_true", help="smoke run: smaller data, samples, grid and searches")
    parser.add_argument("--n-samples", type=int, default=None, help="samples per model (default 1000; quick 200)")
    parser.add_argument("--n-grid", type=int, default=None, help="grid cells per side (default 300; quick 80)")
    parser.add_argument("--n-permutations", type=int, default=None, help="MMD permutations (default 200; quick 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bracket", type=int, default=0, metavar="STEPS",
                        help="also bracket log Z of the skefh models by forward and reverse AIS with STEPS steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--name", default="density")
    parser.add_argument("--out", default="results/density", help="output directory")
    parser.add_argument("--compare", default=None, metavar="JSON",
                        help="an earlier run's JSON: the tables show its numbers beside the new ones")
    args = parser.parse_args(argv)
    args.n_samples = args.n_samples or (200 if args.quick else 1000)
    args.n_grid = args.n_grid or (80 if args.quick else 300)
    args.n_permutations = args.n_permutations or (50 if args.quick else 200)

    import torch
    from sklearn.decomposition import PCA

    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for m in models:
        if m not in ALL_MODELS:
            parser.error(f"unknown model {m!r}; choose from {ALL_MODELS}")
    for d in sets:
        if d not in DATASETS_2D + DATASETS_TABULAR:
            parser.error(f"unknown dataset {d!r}; choose from {DATASETS_2D + DATASETS_TABULAR}")
    common, per_model = split_overrides(args.set)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"name": args.name, "preset": args.preset, "overrides": args.set, "quick": args.quick,
               "seed": args.seed, "n_samples": args.n_samples, "n_grid": args.n_grid,
               "n_permutations": args.n_permutations, "models": models, "datasets": {}}
    path = out / f"{args.name}.json"
    for name in sets:
        X_train, X_test = load(name, args.seed, args.quick)
        is_2d = name in DATASETS_2D
        entry = results["datasets"][name] = {"n_train": len(X_train), "n_test": len(X_test),
                                             "n_features": X_train.shape[1], "models": {}}
        print(f"{name}: {len(X_train)} training rows, {len(X_test)} held out, {X_train.shape[1]} features",
              flush=True)
        samples = {}
        for model in models:
            record, samples[model] = evaluate(model, X_train, X_test, is_2d, args, common, per_model)
            entry["models"][model] = record
            summary = ", ".join(f"{k} {_cell(record.get(k), '{:.4g}')}"
                                for k in ("log_likelihood", "mmd", "fit_seconds") if k in record)
            print(f"  {model}: {summary}" + (f"; {record['error']}" if "error" in record else ""), flush=True)
            if "agreement" in record:
                a = record["agreement"]
                print("    agreement: " + (a["error"] if "error" in a else
                      "MMD p {p_value:.3f}, gap {log_density_gap:+.3f} ± {log_density_gap_se:.3f} nats, "
                      "{samples_outside:.1%} of samples outside, border mass {border_mass:.3f}".format(**a)),
                      flush=True)
            path.write_text(json.dumps(results, indent=1))  # partial results survive a crash
        projection = None if is_2d else PCA(2).fit(X_train)
        try:
            entry["png"] = str(plot(out / f"{args.name}-{name}.png", name, X_test, samples, projection))
        except Exception as exc:  # noqa: BLE001
            entry["png_error"] = _error(exc)
    previous = json.loads(Path(args.compare).read_text()) if args.compare else None
    results["table"] = tables(results, previous)
    path.write_text(json.dumps(results, indent=1))
    print(results["table"])
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
