"""Densities of images that ``score`` can estimate: NNEFH and EBM on dequantised pixels.

At the image defaults the NN-EFH's and the EBM's densities are too peaked for AIS (the
likelihood page). This benchmark fits them as tables instead (``image_shape=None``: an MLP on
the 64 pixels, Metropolis-adjusted persistent chains, whitened rows), or with ``--preset
density`` as images (the convolutional network, spectrally normalised, Metropolis-adjusted
persistent chains at temperature 1), on digits dequantised by uniform noise in [0, 1) added to
the integer pixel values (without it, pixels that are 0 in every image leave directions
without variance, where a density is a spike). For
each model it prints and writes to ``<out>/<name>.json``: the held-out mean log-likelihood in
nats per image, log Z bracketed by forward and reverse AIS (``--steps`` each way) with the
forward run's effective sample size, the fit time and the training chains' acceptance (by
tenth of the fit: chains that stall leave a density AIS cannot estimate); ``GaussianMixture`` (full covariances,
components by BIC) beside them.

    python benchmarks/dequantised_pixels.py                      # about 6 minutes on one thread
    python benchmarks/dequantised_pixels.py --models nnefh --steps 1000,5000
    python benchmarks/dequantised_pixels.py --models nnefh --search 16,64   # + GridSearchCV, ~11 min
    python benchmarks/dequantised_pixels.py --preset density --models nnefh --steps 1000,5000   # an image model
    python benchmarks/dequantised_pixels.py --preset density --models nnefh --set spectral_norm=False
    python benchmarks/dequantised_pixels.py --dataset fashion-mnist --models nnefh --n-train 10000

Digits: all 1,797 images shuffled, the first ``--n-train`` to train, the rest held out.
Fashion-MNIST (the Debian package's files): the first ``--n-train`` training images and the first
1,000 test images, pixels as integers 0..255 before the noise.

``--search K1,K2,...`` also runs scikit-learn's ``GridSearchCV`` over the NN-EFH's
``n_components`` with its default scoring (``score``: held-out log-likelihood, log Z estimated on
demand in each fold), 2 folds, and records every candidate's fold scores and the choice;
``--search-jobs 2`` runs its fits two at a time, ``--no-refit`` leaves out the refit.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from skefh.cli import parse_overrides


def load(seed: int, n_train: int, dataset: str = "digits"):
    """Dequantised pixels of ``dataset`` (integer values plus uniform noise in [0, 1)): (X_train, X_test)."""
    rng = np.random.RandomState(seed)
    if dataset == "digits":
        from sklearn.datasets import load_digits

        X = load_digits().data.astype(np.float64)
        order = rng.permutation(len(X))
        X = X + rng.uniform(size=X.shape)
        return X[order[:n_train]], X[order[n_train:]]
    from skefh.datasets import load_dataset

    data = load_dataset(dataset)
    pixels = [np.round(np.asarray(part[:n], dtype=np.float64) * 255.0)
              for part, n in ((data.X_train, n_train), (data.X_test, 1000))]
    return tuple(p + rng.uniform(size=p.shape) for p in pixels)


def gaussian_mixture(X_train, X_test, components=(1, 2, 4, 8), seed=0) -> dict:
    from sklearn.mixture import GaussianMixture

    start = time.perf_counter()
    fits = [GaussianMixture(k, covariance_type="full", random_state=seed).fit(X_train) for k in components]
    best = min(fits, key=lambda g: g.bic(X_train))
    return {"log_likelihood": float(best.score(X_test)), "n_components": int(best.n_components),
            "fit_seconds": time.perf_counter() - start}


def make_model(name: str, seed: int, max_iter=None, temperature=None, preset=None, overrides=None):
    """``preset`` None: the estimator's defaults on the pixels as a table (an MLP). A preset's
    name: its image model (the convolutional network on the pixels as an image). ``overrides``:
    any other estimator parameters."""
    from skefh.presets import estimator_class, make_estimator

    params = dict(random_state=seed, verbose=-1, **(overrides or {}))
    if max_iter is not None:
        params["max_iter"] = max_iter
    if temperature is not None:
        params["temperature"] = temperature
    if preset is None:
        return estimator_class(name)(image_shape=None, **params)
    return make_estimator(name, preset, **params)


def skefh_model(name: str, X_train, X_test, steps, seed: int, max_iter=None, temperature=None,
                save_path=None, preset=None, overrides=None) -> dict:
    est = make_model(name, seed, max_iter, temperature, preset, overrides)
    start = time.perf_counter()
    est.fit(X_train)
    record = {"fit_seconds": time.perf_counter() - start, "updates": int(est.n_iter_), "brackets": [],
              "chain_acceptance": acceptance_by_tenth(est.history_)}
    if save_path is not None:  # before the estimates: the pickle is the model as fitted
        import joblib

        joblib.dump(est, save_path)
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


def acceptance_by_tenth(history) -> list:
    """Mean acceptance of the training chains' Metropolis-adjusted proposals over each tenth of the
    fit (NaN, written null, for unadjusted chains): where the chains stalled, if they did."""
    rates = np.array([r.get("acceptance", np.nan) for r in history if "event" not in r], dtype=float)
    tenths = np.array_split(rates, min(10, len(rates))) if len(rates) else []
    return [None if np.all(np.isnan(t)) else float(np.nanmean(t)) for t in tenths]


def grid_search(X_train, X_test, components, seed: int, max_iter=None, temperature=None, preset=None,
                overrides=None, n_jobs=1, refit=True) -> dict:
    """GridSearchCV over the NN-EFH's n_components with default scoring. Each fold's score is
    printed as it lands (a search can take hours); ``refit=False`` skips the refit on all the
    training rows (no test-row score then)."""
    from sklearn.model_selection import GridSearchCV

    start = time.perf_counter()
    search = GridSearchCV(make_model("nnefh", seed, max_iter, temperature, preset, overrides),
                          {"n_components": list(components)}, cv=2, error_score=np.nan, refit=refit,
                          n_jobs=n_jobs, verbose=3)
    search.fit(X_train)
    folds = [search.cv_results_[f"split{i}_test_score"].tolist() for i in range(2)]
    means = search.cv_results_["mean_test_score"]
    best = None if np.all(np.isnan(means)) else int(components[int(np.nanargmax(means))])
    return {"n_components": list(components), "mean_test_score": means.tolist(),
            "fold_scores": folds, "best": best,
            "best_held_out": float(search.best_estimator_.score(X_test)) if refit else None,
            "seconds": time.perf_counter() - start}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist"])
    parser.add_argument("--models", default="nnefh,ebm")
    parser.add_argument("--steps", default="5000", help="AIS steps each way, comma-separated")
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--max-iter", type=int, default=None, help="updates (default: the estimators' own)")
    parser.add_argument("--temperature", type=float, default=None, help="the models' temperature (default: their own)")
    parser.add_argument("--preset", default=None,
                        help="fit a preset's image models (e.g. density) instead of the tabular defaults")
    parser.add_argument("--set", action="append", default=[], help="estimator parameter key=value (every model)")
    parser.add_argument("--search", default=None, metavar="K1,K2",
                        help="also GridSearchCV over the NN-EFH's n_components with default scoring")
    parser.add_argument("--search-jobs", type=int, default=1, help="GridSearchCV's n_jobs (its fits in parallel)")
    parser.add_argument("--no-refit", action="store_true",
                        help="the search's fold scores only, without the refit and its test-row score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default=None, help="default: dequantised-<dataset>")
    parser.add_argument("--out", default="results/density")
    parser.add_argument("--save-models", action="store_true",
                        help="pickle each fitted model as <out>/<name>-<model>.joblib")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    args.name = args.name or f"dequantised-{args.dataset}"
    X_train, X_test = load(args.seed, args.n_train, args.dataset)
    steps = [int(s) for s in args.steps.split(",")]
    components = (1, 2, 4, 8) if args.dataset == "digits" else (1,)  # 784-D full covariances are slow
    results = {"name": args.name, "dataset": args.dataset, "preset": args.preset, "set": args.set, "seed": args.seed,
               "n_train": len(X_train), "n_test": len(X_test),
               "models": {"gmm": gaussian_mixture(X_train, X_test, components, args.seed)}}
    print(f"GaussianMixture ({results['models']['gmm']['n_components']} components): "
          f"{results['models']['gmm']['log_likelihood']:.2f} nats per image", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in [m for m in args.models.split(",") if m]:  # "" with --search: the search alone
        save_path = out / f"{args.name}-{name}.joblib" if args.save_models else None
        record = results["models"][name] = skefh_model(name, X_train, X_test, steps, args.seed, args.max_iter,
                                                       args.temperature, save_path, args.preset, overrides)
        print(f"{name}: fit {record['fit_seconds']:.0f} s ({record['updates']} updates)", flush=True)
        rates = ", ".join("n/a" if a is None else f"{a:.3f}" for a in record["chain_acceptance"])
        print(f"  training chains' acceptance by tenth of the fit: {rates}", flush=True)
        for b in record["brackets"]:
            width = "n/a" if b["width"] is None else f"{b['width']:.2f}"
            print(f"  {b['steps']} steps: log Z {b['log_partition']:.2f}, bracket width {width} nats, "
                  f"effective samples {b['ess']:.1f}, held-out {b['log_likelihood']:.2f} nats per image", flush=True)
    if args.search:
        components = [int(k) for k in args.search.split(",")]
        found = results["grid_search"] = grid_search(
            X_train, X_test, components, args.seed, args.max_iter, args.temperature, args.preset, overrides,
            n_jobs=args.search_jobs, refit=not args.no_refit)
        held_out = "" if found["best_held_out"] is None else f" (test rows {found['best_held_out']:.2f})"
        print(f"GridSearchCV over n_components {components}: mean held-out fold scores "
              f"{[round(v, 2) for v in found['mean_test_score']]}, chose {found['best']}{held_out}, "
              f"{found['seconds']:.0f} s", flush=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / (args.name + '.json')}")
    return results


if __name__ == "__main__":
    main()
