"""Fit an NN-EFH at its defaults on scikit-learn's digits, probe its features, and draw samples.

Runs in about two minutes on two CPU cores::

    python examples/digits_quickstart.py --out digits_samples.png

``NNEFH()`` with no arguments: for 8x8 images that is the CPU-sized network, chains restarted
from noise at every update and 1,000 updates with a learning rate annealed to 0. Prints the
linear-probe accuracy (standardised features -> multinomial logistic regression, fit on 1,347
training digits, accuracy on 450 held-out digits) of the learned sufficient statistics U(x), the
natural parameters eta(x), and the raw pixels; writes a PNG grid of 64 samples
(``est.sample(64)``: Gibbs-Langevin chains from noise), and says how confidently a pixel
classifier recognises them as digits (beside held-out digits and uniform noise).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from skefh import NNEFH
from skefh.datasets import load_digits
from skefh.metrics import class_coverage, linear_probe, mean_confidence, probe_table
from skefh.plotting import save_image_grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="digits_samples.png", help="PNG file for the samples")
    parser.add_argument("--max-iter", default="auto", type=lambda v: v if v == "auto" else int(v),
                        help="updates (default: the estimator's, 1,000 for 8x8 images)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_digits()
    start = time.perf_counter()
    est = NNEFH(max_iter=args.max_iter, random_state=args.seed, verbose=1)
    est.fit(data.X_train)
    print(f"fitted {est.n_iter_} updates in {time.perf_counter() - start:.1f} s on {est.device_}")

    results = {}
    for features in ("U", "eta"):
        est.set_params(features=features)
        name = "NN-EFH U(x)" if features == "U" else "NN-EFH eta(x)"
        results[name] = linear_probe(
            est.transform(data.X_train), data.y_train, est.transform(data.X_test), data.y_test
        )
    results["raw pixels"] = linear_probe(data.X_train, data.y_train, data.X_test, data.y_test)
    print(probe_table(results))

    samples = est.sample(64, random_state=args.seed)
    path = save_image_grid(args.out, samples, data.image_shape, value_range=(0.0, 1.0))
    print(f"wrote 64 samples (chains from noise) to {path}")

    # Do the samples look like digits? A logistic regression on raw pixels, trained on the
    # training digits, labels them: its mean largest probability and how many classes it finds.
    judge = LogisticRegression(max_iter=2000).fit(data.X_train, data.y_train)
    noise = np.random.default_rng(args.seed).uniform(0.0, 1.0, samples.shape)
    print("pixel classifier on 64 rows: mean max-probability, classes found, coverage exp(entropy)")
    for name, rows in (("samples", np.clip(samples, 0.0, 1.0)), ("held-out digits", data.X_test[64:128]),
                       ("uniform noise", noise)):
        probabilities = judge.predict_proba(rows)
        n_classes = len(np.unique(probabilities.argmax(1)))
        print(f"  {name:16s} {mean_confidence(probabilities):.2f}   {n_classes:2d}   "
              f"{class_coverage(probabilities):.1f}")


if __name__ == "__main__":
    main()
