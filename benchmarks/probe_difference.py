"""Whether two fitted models' features differ in linear-probe accuracy: a paired test.

    python benchmarks/probe_difference.py --model ebm \\
        results/stability/ebm-cpu-2k.pt results/stability/ebm-cpu-10k.pt --probe-size 10000

Loads two checkpoints (``checkpoint_path`` of a fit, e.g. two points of one long run), runs the
linear-probe protocol of ``benchmarks/stability.py`` on the same training and test images for
each, and compares the two probes image by image: both accuracies, the test images that only one
of them classifies correctly, and McNemar's exact two-sided p-value (``skefh.metrics``). Two
accuracies on the same 10,000 test images are far from independent, so this is the test to use
for "did the probe decline between update 2,000 and 10,000?", not the difference of the two
binomial standard errors. Prints the result and writes it as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib

from skefh import EBM, GRBM, NNEFH
from skefh.datasets import load_dataset
from skefh.metrics import paired_accuracy_test, probe_predictions
from skefh.training import load_checkpoint

ESTIMATORS = {cls.__name__: cls for cls in (NNEFH, EBM, GRBM)}


def load_model(path):
    """A fitted estimator from a joblib file or a training checkpoint (its class read from it)."""
    if Path(path).suffix in (".joblib", ".pkl"):
        return joblib.load(path)
    kind = load_checkpoint(path).get("estimator")
    if kind not in ESTIMATORS:
        raise SystemExit(f"{path}: not a checkpoint of {', '.join(ESTIMATORS)} (holds {kind!r})")
    return ESTIMATORS[kind].from_checkpoint(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a", help="checkpoint (.pt) or joblib file")
    parser.add_argument("model_b", help="checkpoint (.pt) or joblib file")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["digits", "fashion-mnist", "mnist"])
    parser.add_argument("--probe-size", type=int, default=10_000, help="train and test rows of the probe")
    parser.add_argument("--out", default=None, help="JSON file for the result")
    args = parser.parse_args(argv)

    data = load_dataset(args.dataset)
    n = args.probe_size
    X_train, y_train, X_test, y_test = data.X_train[:n], data.y_train[:n], data.X_test[:n], data.y_test[:n]
    predictions, updates, kinds = [], [], []
    for path in (args.model_a, args.model_b):
        est = load_model(path)
        updates.append(int(est.n_iter_))
        kinds.append(type(est).__name__)
        predictions.append(probe_predictions(est.transform(X_train), y_train, est.transform(X_test)))
    result = paired_accuracy_test(predictions[0], predictions[1], y_test)
    summary = {
        "models": [args.model_a, args.model_b],
        "estimators": kinds,
        "updates": updates,
        "dataset": args.dataset,
        "probe_size": n,
        "accuracy": [result.accuracy_a, result.accuracy_b],
        "difference": result.difference,
        "only_a": result.only_a,
        "only_b": result.only_b,
        "p_value": result.p_value,
    }
    print(
        f"a ({kinds[0]}, update {updates[0]}): {100 * result.accuracy_a:.2f} %   "
        f"b ({kinds[1]}, update {updates[1]}): "
        f"{100 * result.accuracy_b:.2f} %   difference {100 * result.difference:+.2f} points\n"
        f"right only in a: {result.only_a}   right only in b: {result.only_b}   "
        f"McNemar exact p = {result.p_value:.3g}"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
