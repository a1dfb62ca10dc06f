"""Sample quality of NNEFH, EBM and GRBM, judged by a classifier trained on the data.

For each model, trained under one stated budget, the benchmark draws ``--n-samples`` samples
(from noise; from the replay buffer of a model trained with one; NNEFH also by Algorithm 2,
latent chains started from the posterior of test images) and reports, in the features of a
small CNN trained on the dataset's training split (the judge, cached under ``results/judge/``):

- the Fréchet distance to held-out test images (lower is better),
- the mean max-softmax confidence,
- the class coverage, exp(entropy) of the predicted-label histogram (1 to 10),

beside the floor (real training images) and the ceiling (uniform noise) measured in the same run,
the mean data and sample energies at the end of training, and for NNEFH and GRBM how many latent
units' posteriors vary over the held-out images (``skefh.metrics.latent_usage``). ``--eval-every
K`` also judges samples every K updates (time to quality; with ``--fd-target FD``, the minutes of
training until the FD first reaches it). Writes
``results/sample_quality/<name>.json``, one PNG grid per row and prints a table.

    python benchmarks/sample_quality.py --dataset fashion-mnist                 # all three models
    python benchmarks/sample_quality.py --dataset digits                         # a couple of minutes
    python benchmarks/sample_quality.py --models nnefh --preset cpu-paper        # the paper's sampler
    python benchmarks/sample_quality.py --models nnefh --set step_size=0.02 --updates 500 --name try

``--set key=value`` overrides estimator parameters of every model trained (see
``benchmarks/stability.py`` for the syntax). ``--continue-from PICKLE --models nnefh --updates K``
trains a model that ``--save-models`` wrote K more updates (optimizer state and replay buffer
carried over) and judges it the same way.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import joblib
import numpy as np

from skefh.cli import parse_overrides
from skefh.datasets import load_dataset
from skefh.metrics import ImageJudge, latent_usage
from skefh.plotting import save_image_grid
from skefh.presets import PRESETS, make_estimator
from skefh.training import Callback, DivergenceError

#: Epochs of judge training: enough for ~91 % on Fashion-MNIST, ~97 % on the small digits set.
JUDGE_EPOCHS = {"fashion-mnist": 4, "mnist": 3, "digits": 40}


def load_judge(dataset: str, data, directory="results/judge") -> ImageJudge:
    """The dataset's judge, trained once and cached."""
    path = Path(directory) / f"{dataset}.pt"
    if path.exists():
        judge = ImageJudge.load(path)
    else:
        judge = ImageJudge(data.image_shape, len(data.target_names), epochs=JUDGE_EPOCHS.get(dataset, 4))
        judge.fit(data.X_train, data.y_train)
        judge.save(path)
        print(f"trained the judge in {judge.train_seconds_:.0f} s; saved {path}", flush=True)
    return judge


def energy_summary(history, window=100) -> dict:
    """Mean data and sample energies over the last ``window`` updates, and their relative gap."""
    rows = [h for h in history if "loss" in h][-window:]
    if not rows:
        return {}
    data = float(np.mean([h["energy_data"] for h in rows]))
    samples = float(np.mean([h["energy_samples"] for h in rows]))
    return {
        "energy_data": data,
        "energy_samples": samples,
        "relative_gap": abs(data - samples) / max(abs(data), abs(samples), 1e-12),
    }


#: Where the final samples' chains start: ``sample``'s ``init`` and ``X`` per mode.
MODE_LABELS = {"noise": "noise", "buffer": "replay buffer", "data": "Algorithm 2"}


def modes_of(est, model: str) -> list:
    """The sampling modes judged for a fitted model: from noise, from its replay buffer when
    it was trained with one, and (NN-EFH) Algorithm 2, latent from the posterior of real rows."""
    modes = ["noise"]
    if getattr(est, "replay_buffer", 0):
        modes.append("buffer")
    if model == "nnefh":
        modes.append("data")
    return modes


def draw(est, mode: str, n: int, reference_rows, seed: int, **options):
    """``n`` samples of a fitted model in one of :func:`modes_of`'s modes."""
    if mode == "data":
        # Every row has n samples: with fewer reference rows than n, each starts several chains.
        rows = reference_rows[np.arange(n) % len(reference_rows)]
        return est.sample(X=rows, init="noise", random_state=seed, **options)
    return est.sample(n, init=mode, random_state=seed, **options)


class QualityEvery(Callback):
    """Judge ``n`` samples every ``every`` updates (the time-to-quality curve).

    ``clock`` is the training time so far, summed over every fit it watched (a continuation is
    several ``partial_fit`` calls) and without the time spent judging.
    """

    def __init__(self, est, judge, reference, every, n, seed, sample_options=None):
        self.est, self.judge, self.reference = est, judge, reference
        self.every, self.n, self.seed = every, n, seed
        self.sample_options = dict(sample_options or {})
        self.curve = []
        self.clock = 0.0
        self._start = None

    def on_fit_begin(self, trainer):
        self._start = time.perf_counter()

    def on_fit_end(self, trainer):
        if self._start is not None:
            self.clock += time.perf_counter() - self._start
            self._start = None

    def on_update_end(self, trainer, record):
        if record["update"] % self.every:
            return
        training_seconds = time.perf_counter() - self._start + self.clock
        samples = self.est.sample(self.n, random_state=self.seed, **self.sample_options)
        quality = self.judge.evaluate(samples, self.reference)
        pause = time.perf_counter()
        self.curve.append({"update": record["update"], "training_seconds": training_seconds,
                           **{k: v for k, v in quality.to_dict().items() if k != "class_counts"},
                           **energy_summary(trainer.history, window=min(self.every, 100))})
        print("  update {update} ({minutes:.1f} min): FD {frechet_distance:.1f} conf {confidence:.3f} "
              "cov {coverage:.2f} E_data {energy_data:.4g} E_samples {energy_samples:.4g}"
              .format(minutes=training_seconds / 60, **self.curve[-1]), flush=True)
        # Time spent judging is not training time.
        self.clock = training_seconds
        self._start = pause


def train_further(est, X, updates: int, seed: int, chunk: int = 500) -> None:
    """``updates`` more updates of a fitted estimator (``partial_fit`` on random subsets of
    ``chunk`` batches, so that the optimizer state and the replay buffer carry over)."""
    rng = np.random.default_rng(seed)
    while updates > 0:
        k = min(updates, chunk)
        est.partial_fit(X[rng.choice(len(X), k * est.batch_size, replace=False)])
        updates -= k


def time_to_target(curve, target: float):
    """The first point of a time-to-quality curve whose FD is at most ``target``, or None."""
    for point in curve or ():
        if point["frechet_distance"] <= target:
            return {"update": point["update"], "minutes": point["training_seconds"] / 60,
                    "frechet_distance": point["frechet_distance"]}
    return None


def row(name, quality, **extra) -> dict:
    out = {"row": name, **quality.to_dict(), **extra}
    print("{:<22} FD {:8.2f}   confidence {:.3f}   coverage {:5.2f}".format(
        name, quality.frechet_distance, quality.confidence, quality.coverage), flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--models", default="nnefh,ebm,grbm")
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--updates", type=int, default=None, help="updates per model (default: the preset's)")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-reference", type=int, default=2000, help="held-out images the samples are compared with")
    parser.add_argument("--eval-every", type=int, default=0, help="judge samples every K updates (0: only at the end)")
    parser.add_argument("--fd-target", type=float, default=None,
                        help="with --eval-every: report the training minutes until the curve's FD first reaches this")
    parser.add_argument("--set", action="append", default=[], help="estimator parameter key=value")
    parser.add_argument("--sample-set", action="append", default=[],
                        help="sample() keyword key=value for the final samples (e.g. gibbs_steps=10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-models", action="store_true", help="pickle each fitted model beside the JSON")
    parser.add_argument("--name", default=None)
    parser.add_argument("--out-dir", default="results/sample_quality")
    parser.add_argument("--judge-dir", default="results/judge", help="where judges are cached")
    parser.add_argument("--continue-from", default=None, metavar="PICKLE",
                        help="train this fitted model (one of --models) --updates more updates instead of a new one")
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    judge = load_judge(args.dataset, data, args.judge_dir)
    reference = data.X_test[: args.n_reference]
    n = args.n_samples
    name = args.name or f"{args.dataset}-{args.preset}"
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"name": name, "dataset": args.dataset, "preset": args.preset, "n_samples": n,
               "n_reference": len(reference), "judge_test_accuracy": judge.accuracy(data.X_test, data.y_test),
               "rows": []}
    print(f"judge test accuracy {results['judge_test_accuracy']:.4f}; {n} samples against "
          f"{len(reference)} test images", flush=True)
    rng = np.random.default_rng(args.seed)
    low, high = float(data.X_train.min()), float(data.X_train.max())
    results["rows"].append(row("real (floor)", judge.evaluate(data.X_train[:n], reference)))
    noise = rng.uniform(low, high, (n, data.X_train.shape[1])).astype(np.float32)
    results["rows"].append(row("uniform noise (ceiling)", judge.evaluate(noise, reference)))

    overrides = parse_overrides(args.set)
    sample_options = parse_overrides(args.sample_set)
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        params = dict(random_state=args.seed, log_partition=None, **overrides)
        if args.updates is not None:
            params["max_iter"] = args.updates
        if args.continue_from:
            est = joblib.load(args.continue_from)  # a fitted model: train it further
            if type(est).__name__.lower() != model:
                parser.error(f"--continue-from holds a {type(est).__name__}, not a {model}")
            if overrides:
                est.set_params(**overrides)
            start_update = est.n_iter_
        else:
            est, start_update = make_estimator(model, args.preset, **params), 0
        tracker = None
        if args.eval_every:
            tracker = QualityEvery(est, judge, reference, args.eval_every, min(n, 500), args.seed, sample_options)
        if tracker is not None:
            est.set_params(callbacks=[tracker])
        print(f"{model}: {est!r}", flush=True)
        start = time.perf_counter()
        diverged = None
        try:
            if args.continue_from:
                train_further(est, data.X_train, args.updates or est.max_iter, args.seed)
            else:
                est.fit(data.X_train)
        except DivergenceError as exc:
            diverged = {"update": exc.update, "reason": str(exc)}
            print(f"  diverged at update {exc.update}: {exc}", flush=True)
        seconds = time.perf_counter() - start
        if tracker is not None:
            seconds = tracker.clock + (time.perf_counter() - tracker._start if tracker._start else 0.0)
        energies = energy_summary(est.history_)
        keys = ("update", "energy_data", "energy_samples", "posterior_data", "chain_min", "chain_max",
                "grad_norm", "langevin_grad_norm")
        history = [{k: h[k] for k in keys if k in h} for h in est.history_ if "loss" in h][::10]
        info = {"model": model, "updates": est.n_iter_, "fit_seconds": seconds, "history": history,
                "continued_from": {"path": args.continue_from, "update": start_update} if start_update else None,
                "seconds_per_update": seconds / max(est.n_iter_ - start_update, 1), "diverged": diverged, **energies,
                "params": {k: repr(v) for k, v in est.get_params().items() if k != "callbacks"},
                "curve": tracker.curve if tracker else None}
        print(f"  {est.n_iter_ - start_update} updates in {seconds:.0f} s (model at update {est.n_iter_}); "
              + ", ".join(f"{k} {v:.4g}" for k, v in energies.items()), flush=True)
        if args.fd_target is not None and tracker is not None:
            reached = info["time_to_target"] = time_to_target(tracker.curve, args.fd_target)
            print(f"  FD target {args.fd_target:g}: " + (
                "first reached at update {update} after {minutes:.1f} minutes of training (FD {frechet_distance:.1f})"
                .format(**reached) if reached else "not reached"), flush=True)
        if diverged is not None:
            results["rows"].append({"row": model, **info})
            continue
        info.pop("history")
        results.setdefault("histories", {})[model] = history
        if est.module_.has_latent:
            info["latent"] = latent_usage(est, reference[:n]).to_dict()
            print("  latent units whose most probable state varies over the held-out images: "
                  "{varying:.1%}; whose posterior varies (std >= 0.1): {varying_std:.1%}; on for every image: "
                  "{always_on:.1%}; off for every image: {always_off:.1%}; posterior std {posterior_std:.3g}; "
                  "posterior entropy {entropy:.3f} bits; logit dimension {logit_dimension:.1f}"
                  .format(**info["latent"]), flush=True)
        if args.save_models:
            joblib.dump(est.set_params(callbacks=None), out_dir / f"{name}-{model}.joblib")
        for mode in modes_of(est, model):
            start = time.perf_counter()
            samples = draw(est, mode, n, reference, args.seed, **sample_options)
            sample_seconds = time.perf_counter() - start
            label = f"{model} ({MODE_LABELS[mode]})"
            grid = save_image_grid(out_dir / f"{name}-{model}-{mode}.png", samples[:100], data.image_shape,
                                   value_range=(low, high))
            results["rows"].append(row(label, judge.evaluate(samples, reference), **info, mode=mode,
                                       sample_seconds=sample_seconds, grid=str(grid)))
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
