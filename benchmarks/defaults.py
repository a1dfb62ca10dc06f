"""A new user's path: ``NNEFH().fit(X)``, ``EBM().fit(X)`` and ``GRBM().fit(X)`` at their defaults.

Each model is built with no argument but ``random_state`` (and any ``--set``) and fitted on the
dataset's training rows; a fit that stops with ``DivergenceError`` is recorded (update and
message) and the next model runs. The benchmark reports the fit time, the size of the fitted
model's pickle, ``sample(n)`` at its defaults judged by the sample-quality judge (Fréchet
distance, confidence, coverage; see ``benchmarks/sample_quality.py``), the same after a pickle
round trip, latent usage where the model has a latent layer, and what ``score`` does on held-out
rows (a number, or the ``LikelihoodError`` it raises). Writes ``results/defaults/<name>.json``
and one PNG grid per model.

    python benchmarks/defaults.py --dataset fashion-mnist          # about an hour on two CPU cores
    python benchmarks/defaults.py --dataset digits                 # a few minutes
    python benchmarks/defaults.py --dataset fashion-mnist --models ebm --seed 1 --set on_divergence=restore

``--set key=value`` changes one parameter of every model run (the JSON records it): for checking
what a single change does to the defaults' figures.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import joblib
import numpy as np
from sample_quality import load_judge

from skefh import EBM, GRBM, NNEFH
from skefh.cli import parse_overrides
from skefh.datasets import load_dataset
from skefh.estimators import LikelihoodError
from skefh.metrics import latent_usage
from skefh.plotting import save_image_grid
from skefh.training import DivergenceError

ESTIMATORS = {"nnefh": NNEFH, "ebm": EBM, "grbm": GRBM}


def judged(judge, samples, reference) -> dict:
    quality = judge.evaluate(samples, reference).to_dict()
    return {k: quality[k] for k in ("frechet_distance", "confidence", "coverage")}


def pickled(est) -> tuple[int, object]:
    """The pickle's size in bytes and the model loaded back from it."""
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    size = buffer.tell()
    buffer.seek(0)
    return size, joblib.load(buffer)


def score_outcome(est, rows) -> dict:
    start = time.perf_counter()
    try:
        value = float(est.score(rows))
    except LikelihoodError as exc:
        return {"score": None, "error": str(exc).splitlines()[0], "seconds": time.perf_counter() - start}
    return {"score": value, "error": None, "seconds": time.perf_counter() - start}


TITLES = {"nnefh": "NN-EFH", "ebm": "EBM, the same network", "grbm": "GRBM"}


#: History fields summarised in the JSON, as means over windows of ``TRAJECTORY_WINDOW`` updates.
TRAJECTORY_FIELDS = ("energy_data", "energy_samples", "langevin_grad_norm", "gradient_penalty")
TRAJECTORY_WINDOW = 100


def trajectory(history) -> dict:
    """Window means of a fit's history (one value per ``TRAJECTORY_WINDOW`` updates), kept for
    fits that diverged as well: how the energies and the sampler's drift moved before the end."""
    out = {"update": [records[-1]["update"] for records in _windows(history)]}
    for field in TRAJECTORY_FIELDS:
        if history and field in history[0]:
            out[field] = [float(np.mean([r[field] for r in records])) for records in _windows(history)]
    return out


def _windows(history):
    return [history[i:i + TRAJECTORY_WINDOW] for i in range(0, len(history), TRAJECTORY_WINDOW)]


def side_by_side(grids: dict, path, caption: str) -> Path:
    """One PNG of the models' sample grids side by side (the README's picture)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.7), squeeze=False)
    for ax, (model, grid) in zip(axes[0], grids.items()):
        ax.imshow(mpimg.imread(grid), cmap="gray")
        ax.set_title(TITLES.get(model, model))
        ax.axis("off")
    fig.text(0.5, 0.02, caption, ha="center")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--models", default="nnefh,ebm,grbm")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-reference", type=int, default=2000)
    parser.add_argument("--n-score", type=int, default=500, help="held-out rows scored (0: skip score)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-dir", default="results/defaults")
    parser.add_argument("--judge-dir", default="results/judge")
    parser.add_argument("--save-models", action="store_true", help="pickle each fitted model beside the JSON")
    parser.add_argument("--set", action="append", default=[], help="key=value: a parameter changed from its default")
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    judge = load_judge(args.dataset, data, args.judge_dir)
    reference = data.X_test[: args.n_reference]
    name = args.name or args.dataset
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    low, high = float(data.X_train.min()), float(data.X_train.max())
    noise = np.random.default_rng(args.seed).uniform(low, high, (args.n_samples, data.X_train.shape[1]))
    results = {"name": name, "dataset": args.dataset, "set": args.set, "n_train": len(data.X_train),
               "n_samples": args.n_samples,
               "judge_test_accuracy": judge.accuracy(data.X_test, data.y_test),
               "real": judged(judge, data.X_train[: args.n_samples], reference),
               "uniform_noise": judged(judge, noise.astype(np.float32), reference), "models": {}}
    print(f"judge test accuracy {results['judge_test_accuracy']:.4f}", flush=True)
    for row in ("real", "uniform_noise"):
        print(f"{row}: " + "FD {frechet_distance:.2f}  confidence {confidence:.3f}  "
              "coverage {coverage:.2f}".format(**results[row]), flush=True)
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        est = ESTIMATORS[model](random_state=args.seed, **parse_overrides(args.set))
        start = time.perf_counter()
        try:
            est.fit(data.X_train)
        except DivergenceError as exc:
            results["models"][model] = {"fit_seconds": time.perf_counter() - start, "diverged_at": exc.update,
                                        "error": str(exc), "trajectory": trajectory(est.history_)}
            print(f"{model}: diverged at update {exc.update} after {time.perf_counter() - start:.0f} s: "
                  f"{exc.reason}", flush=True)
            (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1))
            continue
        info = {"fit_seconds": time.perf_counter() - start, "updates": est.n_iter_,
                "params": {k: repr(v) for k, v in est.get_params().items()},
                "trajectory": trajectory(est.history_)}
        start = time.perf_counter()
        samples = est.sample(args.n_samples, random_state=args.seed)
        info["sample_seconds"] = time.perf_counter() - start
        info["samples"] = judged(judge, samples, reference)
        info["grid"] = str(save_image_grid(out_dir / f"{name}-{model}.png", samples[:100], data.image_shape,
                                           value_range=(low, high)))
        info["pickle_bytes"], loaded = pickled(est)
        if args.save_models:
            joblib.dump(est, out_dir / f"{name}-{model}.joblib")
        info["samples_after_pickle"] = judged(judge, loaded.sample(args.n_samples, random_state=args.seed + 1),
                                              reference)
        if est.module_.has_latent:
            info["latent"] = latent_usage(est, reference[: args.n_samples]).to_dict()
        if args.n_score:
            info["score"] = score_outcome(est, data.X_test[-args.n_score:])
        results["models"][model] = info
        print(f"{model}: {info['updates']} updates in {info['fit_seconds']:.0f} s; pickle "
              f"{info['pickle_bytes'] / 2**20:.1f} MiB; sample({args.n_samples}) in {info['sample_seconds']:.0f} s: "
              "FD {frechet_distance:.2f}  confidence {confidence:.3f}  "
              "coverage {coverage:.2f}".format(**info["samples"]), flush=True)
        print("  after a pickle round trip: FD {frechet_distance:.2f}  confidence {confidence:.3f}  "
              "coverage {coverage:.2f}".format(**info["samples_after_pickle"]), flush=True)
        if "latent" in info:
            print("  latent: {varying_std:.1%} of units vary (std >= 0.1), {always_on:.1%} always on, "
                  "{always_off:.1%} always off; posterior std {posterior_std:.3g}; logit dimension "
                  "{logit_dimension:.1f}".format(**info["latent"]), flush=True)
        if "score" in info:
            outcome = info["score"]
            print(f"  score: {outcome['score']}" if outcome["error"] is None
                  else f"  score raises LikelihoodError: {outcome['error']}", flush=True)
        (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1))
    grids = {model: info["grid"] for model, info in results["models"].items() if "grid" in info}
    if len(grids) > 1:
        side_by_side(grids, out_dir / f"{name}-side-by-side.png",
                     f"{min(args.n_samples, 100)} samples per model, sample() at the defaults, {args.dataset}")
    print(f"wrote {out_dir / (name + '.json')}")


if __name__ == "__main__":
    main()
