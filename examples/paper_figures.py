"""The paper's figures from fitted models: sample grids, sampling chains, nearest neighbours,
and the distance travelled by Gibbs-Langevin against Langevin alone.

    python examples/table3_linear_probe.py --dataset fashion-mnist --out results/table3
    python examples/paper_figures.py --models-from results/table3 --dataset fashion-mnist

Writes into ``--out``:

- ``fig3_samples_<model>.png``: 100 samples per model (Fig. 3 / Fig. 4 style; the NN-EFH with
  Algorithm 2, latent chains started from test images);
- ``fig5a_chains.png``: eight Algorithm 2 chains, one row each: the data image whose posterior
  starts the latent chain, the visible chain's starting noise, then the state after every Gibbs
  round;
- ``fig5b_neighbours.png``: generated images and their three nearest training images
  (Euclidean distance in pixel space);
- ``figures.json``: the distance travelled (mean ||x_end - x_start||, working units) by
  Gibbs-Langevin (M x L steps) and by Langevin alone (M * L steps) from the same noise, for the
  trained NN-EFH and for the same network untrained (the paper reports about 10x, "particularly
  during the initial training phase"), and the nearest-neighbour distances.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np

from skefh.datasets import load_dataset
from skefh.metrics import chain_distance, nearest_neighbours
from skefh.plotting import plot_chains, plot_nearest_neighbours, save_image_grid
from skefh.presets import make_estimator


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-from", required=True, help="folder with nnefh/ebm/grbm.joblib (table3 output)")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--gibbs-steps", type=int, default=5, help="M for the distance experiment (paper: 5)")
    parser.add_argument("--langevin-steps", type=int, default=60, help="L for the distance experiment (paper: 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/figures")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(args.dataset, args.data_dir)
    shape = data.image_shape
    models = {p.stem: joblib.load(p) for p in sorted(Path(args.models_from).glob("*.joblib"))}
    if "nnefh" not in models:
        raise SystemExit(f"no nnefh.joblib in {args.models_from}: run examples/table3_linear_probe.py first")
    report = {"dataset": args.dataset}

    for name, est in models.items():  # Fig. 3 / Fig. 4
        X0 = data.X_test[:100] if name != "ebm" else None
        samples = est.sample(100, X=X0, random_state=args.seed)
        save_image_grid(out / f"fig3_samples_{name}.png", samples, shape, value_range=(0.0, 1.0), n_cols=10)

    nnefh = models["nnefh"]
    rng = np.random.default_rng(args.seed)
    starts = data.X_test[rng.choice(len(data.X_test), 8, replace=False)]
    chains = nnefh.sample_chains(X=starts, random_state=args.seed)  # (8, M + 1, D)
    plot_chains(np.concatenate([starts[:, None, :], chains], axis=1), shape, out / "fig5a_chains.png",
                value_range=(0.0, 1.0))

    generated = nnefh.sample(X=data.X_test[8:12], random_state=args.seed + 1)
    index, distance = nearest_neighbours(generated, data.X_train, n_neighbors=3)
    plot_nearest_neighbours(generated, data.X_train[index], shape, out / "fig5b_neighbours.png",
                            value_range=(0.0, 1.0))
    report["nearest_neighbour_distances"] = distance.tolist()

    untrained = make_estimator("nnefh", "cpu", **{**nnefh.get_params(), "max_iter": 0, "callbacks": None,
                                                  "verbose": 0}).fit(data.X_train[:1000])
    # From noise (the paper's setting) and from held-out images, where the contraction of the
    # starting noise under the quadratic term does not dominate the distance.
    for start_label, start in (("", None), ("_from_data", data.X_test[-64:])):
        for label, est in (("trained", nnefh), ("untrained", untrained)):
            result = chain_distance(est, 64, gibbs_steps=args.gibbs_steps, langevin_steps=args.langevin_steps,
                                    start=start, random_state=args.seed)
            report[f"distance_{label}{start_label}"] = result.to_dict()
            print(f"{label}, from {'noise' if start is None else 'data'}: Gibbs-Langevin "
                  f"{result.gibbs_langevin:.2f}, Langevin alone {result.langevin:.2f}, ratio {result.ratio:.2f} "
                  "(paper: about 10)")
    (out / "figures.json").write_text(json.dumps(report, indent=2))
    print(f"wrote figures to {out}")


if __name__ == "__main__":
    main()
