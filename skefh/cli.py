"""The ``skefh`` command: train, sample and evaluate from a shell, torchrun-ready.

    skefh train --model nnefh --dataset fashion-mnist --out runs/fmnist --preset cpu
    skefh train ...same arguments...            # resumes from runs/fmnist/checkpoint.pt
    skefh sample runs/fmnist -n 64              # writes runs/fmnist/samples.png
    skefh sample runs/fmnist --gibbs-steps 10   # a larger sampling budget than training's
    skefh evaluate runs/fmnist                  # linear probe and Frechet distances
    torchrun --standalone --nproc_per_node=4 -m skefh.cli train ...   # DistributedDataParallel

A run directory holds ``config.json`` (the exact estimator parameters and data source),
``checkpoint.pt`` (resumable, ``torch.load(weights_only=True)``-safe), ``history.jsonl`` (one
record per update), sample grids and ``evaluation.json``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

from .presets import PRESETS
from .training.callbacks import Callback, HistoryWriter

__all__ = ["main", "build_parser", "parse_overrides"]

CONFIG, CHECKPOINT, HISTORY = "config.json", "checkpoint.pt", "history.jsonl"


def parse_overrides(items) -> dict:
    """Estimator parameters from ``key=value`` strings (``--set`` options).

    Values are read as Python literals (``1e-3``, ``True``, ``'cosine'``); anything that is not
    one, such as a path or a bare word, is kept as a string.

    Parameters
    ----------
    items : iterable of str or None

    Returns
    -------
    dict
    """
    overrides = {}
    for item in items or ():
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a bare string such as device=cuda
    return overrides


def _init_distributed():
    """Join the process group torchrun describes in the environment; return the local device."""
    import torch

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group("nccl")
        return f"cuda:{local_rank}"
    torch.distributed.init_process_group("gloo")
    return "cpu"


class SampleSnapshots(Callback):
    """Writes a grid of 64 samples every ``every`` updates."""

    def __init__(self, estimator, run_dir, every, image_shape):
        self.estimator, self.run_dir, self.every, self.image_shape = estimator, Path(run_dir), every, image_shape

    def on_update_end(self, trainer, record):
        if self.every and record["update"] % self.every == 0 and self.image_shape is not None:
            _write_samples(self.estimator, self.run_dir / f"samples_{record['update']:06d}.png",
                           self.image_shape, 64, record["update"])


def cmd_train(args) -> int:
    from .datasets import load_dataset
    from .presets import make_estimator
    from .training.checkpoint import load_checkpoint

    run = Path(args.out)
    device = _init_distributed()
    is_main = int(os.environ.get("RANK", 0)) == 0
    overrides = parse_overrides(args.set)
    if args.max_iter is not None:
        overrides["max_iter"] = args.max_iter
    if device is not None:
        overrides.setdefault("device", device)
    data = load_dataset(args.dataset, args.data_dir)
    settings = {"random_state": args.seed, "verbose": 1 if is_main else 0,
                "checkpoint_path": str(run / CHECKPOINT), "checkpoint_every": args.checkpoint_every, **overrides}
    est = make_estimator(args.model, args.preset, **settings)
    config = {"model": args.model, "preset": args.preset, "dataset": args.dataset, "data_dir": args.data_dir,
              "seed": args.seed, "params": {k: v for k, v in est.get_params().items()
                                            if isinstance(v, (int, float, str, bool, type(None), list, tuple))}}
    if is_main:
        run.mkdir(parents=True, exist_ok=True)
        (run / CONFIG).write_text(json.dumps(config, indent=2, default=str))
        if not (run / CHECKPOINT).exists():
            (run / HISTORY).unlink(missing_ok=True)
    callbacks = []
    if is_main:
        callbacks = [HistoryWriter(run / HISTORY), SampleSnapshots(est, run, args.sample_every, data.image_shape)]
    est.set_params(callbacks=callbacks)
    checkpoint = run / CHECKPOINT
    if is_main and checkpoint.exists():
        done = load_checkpoint(checkpoint)["trainer"]["n_updates"]
        print(f"resuming from the checkpoint at update {done} ({checkpoint})", flush=True)
    start = time.perf_counter()
    try:
        est.fit(data.X_train)
    except KeyboardInterrupt:
        if is_main:
            where = (f"the checkpoint holds update {load_checkpoint(checkpoint)['trainer']['n_updates']}"
                     if checkpoint.exists() else "no checkpoint was written yet")
            print(f"\ninterrupted; {where}. Run the same command again to resume.", file=sys.stderr)
        return 130
    if is_main:
        _write_samples(est, run / "samples.png", data.image_shape, 64, args.seed)
        print(f"trained {est.n_iter_} updates in {time.perf_counter() - start:.1f} s; run directory {run}")
    return 0


def _write_samples(est, path, image_shape, n, seed, X=None, **options):
    samples = est.sample(n, X=X, random_state=seed, **options)
    if image_shape is not None:
        from .plotting import save_image_grid

        save_image_grid(path, samples, image_shape, value_range=(0.0, 1.0))
    return samples


def _load_run(run_dir):
    from .presets import estimator_class

    run = Path(run_dir)
    if not (run / CONFIG).exists() or not (run / CHECKPOINT).exists():
        raise SystemExit(f"{run} is not a skefh run directory (needs {CONFIG} and {CHECKPOINT})")
    config = json.loads((run / CONFIG).read_text())
    est = estimator_class(config["model"]).from_checkpoint(run / CHECKPOINT, callbacks=None)
    return run, config, est


def cmd_sample(args) -> int:
    from .datasets import load_dataset

    run, config, est = _load_run(args.run)
    data = load_dataset(config["dataset"], config.get("data_dir"))
    X = data.X_test[: args.n] if args.from_data else None
    out = Path(args.out) if args.out else run / "samples.png"
    options = {name: getattr(args, name) for name in ("init", "gibbs_steps", "langevin_steps", "step_size",
                                                      "temperature")}
    try:
        samples = _write_samples(est, out, data.image_shape, args.n, args.seed, X=X, **options)
    except ValueError as error:  # a bad budget, or init="buffer" without a buffer
        raise SystemExit(f"skefh sample: {error}") from None
    if args.npy:
        import numpy as np

        np.save(args.npy, samples)
    print(f"wrote {len(samples)} samples to {out}")
    return 0


def cmd_evaluate(args) -> int:
    import numpy as np

    from .datasets import load_dataset
    from .estimators import LikelihoodError
    from .metrics import fid, linear_probe

    run, config, est = _load_run(args.run)
    data = load_dataset(config["dataset"], config.get("data_dir"))
    n = args.probe_size
    Xtr, ytr, Xte, yte = data.X_train[:n], data.y_train[:n], data.X_test[:n], data.y_test[:n]
    report = {"run": str(run), "updates": est.n_iter_, "probe_size": [len(Xtr), len(Xte)]}
    options = ("U", "eta") if config["model"] == "nnefh" else (est.features,)
    for features in options:
        est.set_params(features=features)
        report[f"probe_{features}"] = linear_probe(est.transform(Xtr), ytr, est.transform(Xte), yte).accuracy
    report["probe_pixels"] = linear_probe(Xtr, ytr, Xte, yte).accuracy
    samples = est.sample(args.n_samples, random_state=args.seed)
    reference = data.X_test[: args.n_samples]
    pixels = fid(samples, reference, feature_extractor=lambda x: np.asarray(x, dtype=np.float64))
    report["frechet_pixels"] = pixels.value
    if args.inception_weights:
        res = fid(np.clip(samples, 0, 1), reference, feature_extractor="inception",
                  weights_path=args.inception_weights, image_shape=data.image_shape)
        report["fid_inception"] = res.value
    if est.log_partition_ is not None or est.log_partition is not None:
        try:
            report["test_log_likelihood"] = est.score(data.X_test[:n])
        except LikelihoodError as error:  # no reliable log Z at this budget: say why, keep the rest
            report["test_log_likelihood_error"] = str(error)
    (run / "evaluation.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skefh", description="Train, sample and evaluate NN-EFH, EBM and GRBM")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model; rerun the same command to resume")
    train.add_argument("--model", required=True, choices=["nnefh", "ebm", "grbm"])
    train.add_argument("--dataset", required=True, help="digits, fashion-mnist, mnist, cifar10, image-folder")
    train.add_argument("--data-dir", default=None, help="where the dataset lives (see skefh.datasets)")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    train.add_argument("--max-iter", type=int, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=500)
    train.add_argument("--sample-every", type=int, default=0, help="write a sample grid every N updates")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="any estimator parameter")
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run")
    sample.add_argument("-n", type=int, default=64)
    sample.add_argument("--from-data", action="store_true", help="Algorithm 2: latent from test images")
    sample.add_argument("--out", default=None, help="PNG path (default RUN/samples.png)")
    sample.add_argument("--npy", default=None, help="also save the samples as a .npy file")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--init", default="auto", choices=["auto", "noise", "buffer"],
                        help="where the visible chains start (auto: the replay buffer if the model has one)")
    sample.add_argument("--gibbs-steps", type=int, default=None, help="Gibbs rounds (default: the training sampler's)")
    sample.add_argument("--langevin-steps", type=int, default=None, help="Langevin steps per round")
    sample.add_argument("--step-size", type=float, default=None, help="Langevin step size")
    sample.add_argument("--temperature", type=float, default=None, help="sample exp(-E / temperature) instead")
    sample.set_defaults(func=cmd_sample)

    evaluate = sub.add_parser("evaluate", help="linear probe and Frechet distances of a trained run")
    evaluate.add_argument("run")
    evaluate.add_argument("--probe-size", type=int, default=10_000)
    evaluate.add_argument("--n-samples", type=int, default=1000)
    evaluate.add_argument("--inception-weights", default=None, help="Inception-v3 FID weights (torch-fidelity)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
