"""Long-run stability of NNEFH, EBM and GRBM training, with the per-update diagnostics.

Trains one model for a number of updates and records, per update, the data and sample energies,
their gap, the posterior saturation on data, the chains' range and the gradient norms (the
estimator's ``history_``); reports the update at which divergence began (the estimator's
divergence error, or the first sustained posterior saturation) and the linear-probe accuracy
of the features at checkpoints.

    python benchmarks/stability.py --dataset fashion-mnist --model nnefh --updates 10000
    python benchmarks/stability.py --model nnefh --updates 2000 --set learning_rate=1e-3 \\
        --set energy_l2=0.01 --name l2

Writes ``results/stability/<name>.json`` (the history, the probe trajectory, the summary) and, as
it goes, ``<name>.probes.json`` (the probes so far, which a run resumed from its checkpoint keeps).
``--preset cpu`` (default) is the CPU-sized network of ``examples/table3_linear_probe.py``;
``--preset paper`` the paper's. Extra ``--set key=value`` pairs override estimator parameters
(values are parsed as Python literals; anything else, such as a path, is kept as a string:
``--set checkpoint_path=results/run.pt --set lr_schedule=cosine``).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import joblib
import numpy as np

from skefh.cli import parse_overrides
from skefh.datasets import load_dataset
from skefh.metrics import linear_probe
from skefh.presets import PRESETS, make_estimator
from skefh.training import Callback, DivergenceError


class ProbeEvery(Callback):
    """Linear probe of the features every ``every`` updates (on fixed train/test subsets).

    Every probe is also written to ``path`` (JSON), so that a run resumed from its checkpoint
    keeps the probes made before the interruption: at the start of ``fit`` the probes of updates
    up to the one resumed from are read back, and later ones (from a run that went further before
    its checkpoint was rolled back) are dropped.
    """

    def __init__(self, estimator, data, every, path=None, judge=None, n_samples=1000, sample_options=None,
                 save_dir=None):
        self.estimator, self.data, self.every = estimator, data, every
        self.path = None if path is None else Path(path)
        # With a judge, every probe also judges samples from noise (and from the replay buffer
        # when the model has one); with save_dir, the model is pickled there at every probe.
        self.judge, self.n_samples = judge, n_samples
        self.sample_options = dict(sample_options or {})
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.trajectory = []
        self.first_update = 0

    def on_fit_begin(self, trainer):
        self.first_update = trainer.n_updates
        earlier = []
        if self.first_update > 0 and self.path is not None and self.path.exists():
            earlier = json.loads(self.path.read_text())
        self.trajectory = [p for p in earlier if p["update"] <= self.first_update]

    def probe(self, update, trainer=None):
        est, d = self.estimator, self.data
        start = time.perf_counter()
        result = linear_probe(est.transform(d["X_train"]), d["y_train"], est.transform(d["X_test"]), d["y_test"])
        entry = {"update": update, "accuracy": result.accuracy, "seconds": time.perf_counter() - start}
        print(f"  probe at update {update}: {100 * result.accuracy:.2f} %", flush=True)
        if self.judge is not None:
            modes = {"noise": {}}
            if getattr(est, "replay_buffer", 0):
                modes["buffer"] = {"init": "buffer"}
            for mode, options in modes.items():
                samples = est.sample(self.n_samples, random_state=0, **{**self.sample_options, **options})
                quality = self.judge.evaluate(samples, d["X_test"][:2000])
                entry[f"quality_{mode}"] = {k: v for k, v in quality.to_dict().items() if k != "class_counts"}
                print(f"    samples ({mode}): FD {quality.frechet_distance:.1f} confidence "
                      f"{quality.confidence:.3f} coverage {quality.coverage:.2f}", flush=True)
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            snapshot = copy.copy(est)
            if trainer is not None:  # mid-fit: the trainer holds the optimizer and the replay buffer
                snapshot._trainer_state, snapshot.n_iter_ = trainer.state_dict(), trainer.n_updates
                snapshot.history_ = list(trainer.history)
            joblib.dump(snapshot.set_params(callbacks=None), self.save_dir / f"update{update}.joblib")
        self.trajectory.append(entry)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.trajectory))

    def on_update_end(self, trainer, record):
        if record["update"] % self.every == 0:
            self.probe(record["update"], trainer)


def saturation_onset(history, threshold=0.95, window=50):
    """First update at which the running mean of the data posterior exceeds ``threshold``."""
    values = np.array([h.get("posterior_data", np.nan) for h in history if "loss" in h], dtype=float)
    if len(values) < window or np.all(np.isnan(values)):
        return None
    running = np.convolve(values, np.ones(window) / window, mode="valid")
    above = np.nonzero(running > threshold)[0]
    return int(above[0] + window) if len(above) else None


def summarise(history, window=200):
    """Means of the diagnostics over consecutive windows of updates."""
    rows = [h for h in history if "loss" in h]
    out = []
    for start in range(0, len(rows), window):
        chunk = rows[start : start + window]
        out.append({
            "updates": f"{chunk[0]['update']}-{chunk[-1]['update']}",
            **{k: float(np.mean([c[k] for c in chunk])) for k in
               ("energy_data", "energy_samples", "energy_gap", "posterior_data", "grad_norm",
                "chain_min", "chain_max")},
        })
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--model", default="nnefh", choices=["nnefh", "ebm", "grbm"])
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--probe-every", type=int, default=2000)
    parser.add_argument("--probe-size", type=int, default=10_000, help="train and test rows of the probe")
    parser.add_argument("--set", action="append", default=[], help="estimator parameter key=value")
    parser.add_argument("--judge", action="store_true",
                        help="at every probe also judge 1,000 samples (see benchmarks/sample_quality.py)")
    parser.add_argument("--sample-set", action="append", default=[], help="sample() keyword key=value")
    parser.add_argument("--save-models", action="store_true", help="pickle the model at every probe")
    parser.add_argument("--name", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="results/stability")
    args = parser.parse_args(argv)
    for option in ("updates", "probe_every", "probe_size"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")

    data = load_dataset(args.dataset)
    overrides = parse_overrides(args.set)
    est = make_estimator(args.model, args.preset, max_iter=args.updates, random_state=args.seed,
                         log_partition=None, **overrides)
    n = args.probe_size
    probe_data = {"X_train": data.X_train[:n], "y_train": data.y_train[:n],
                  "X_test": data.X_test[:n], "y_test": data.y_test[:n]}
    name = args.name or f"{args.dataset}-{args.model}-{args.preset}"
    judge = None
    if args.judge:
        from sample_quality import load_judge

        judge = load_judge(args.dataset, data)
    prober = ProbeEvery(est, probe_data, args.probe_every, path=Path(args.out_dir) / f"{name}.probes.json",
                        judge=judge, sample_options=parse_overrides(args.sample_set),
                        save_dir=Path(args.out_dir) / f"{name}-models" if args.save_models else None)
    est.set_params(callbacks=[prober])
    print(f"{name}: {est!r}", flush=True)
    start = time.perf_counter()
    diverged = None
    try:
        est.fit(data.X_train)
    except DivergenceError as exc:
        diverged = {"update": exc.update, "reason": exc.reason}
        print(f"  diverged: {exc}", flush=True)
    seconds = time.perf_counter() - start
    history = est.history_
    if diverged is None and (not prober.trajectory or prober.trajectory[-1]["update"] != est.n_iter_):
        prober.probe(est.n_iter_)
    summary = {
        "name": name, "dataset": args.dataset, "model": args.model, "preset": args.preset,
        "params": {k: repr(v) for k, v in est.get_params().items() if k != "callbacks"},
        "updates_run": est.n_iter_, "diverged": diverged, "saturation_onset": saturation_onset(history),
        # A resumed run times only the updates made by this process.
        "updates_this_process": est.n_iter_ - prober.first_update,
        "seconds": seconds, "seconds_per_update": seconds / max(est.n_iter_ - prober.first_update, 1),
        "probe": prober.trajectory, "windows": summarise(history),
    }
    for row in summary["windows"]:
        print("  {updates}: gap {energy_gap:.3g} E_data {energy_data:.4g} posterior {posterior_data:.3f} "
              "chain [{chain_min:.3g}, {chain_max:.3g}] grad {grad_norm:.3g}".format(**row))
    keys = ("updates_run", "diverged", "saturation_onset", "seconds_per_update", "probe")
    print(json.dumps({k: summary[k] for k in keys}))
    out = Path(args.out_dir) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = ("update", "energy_data", "energy_samples", "energy_gap", "posterior_data", "chain_min", "chain_max",
            "grad_norm", "langevin_grad_norm", "lr")
    summary["history"] = [{k: h[k] for k in keys if k in h} for h in history if "loss" in h]
    out.write_text(json.dumps(summary))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
