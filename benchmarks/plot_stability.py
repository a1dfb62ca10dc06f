"""Draw the training curves of stability runs (``results/stability/*.json``) for the docs.

    python benchmarks/plot_stability.py results/screen3/base.json results/stability/nnefh.json \\
        --out docs/_static/stability_nnefh.png --keys energy_data energy_gap posterior_data chain_max
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="JSON files written by benchmarks/stability.py")
    parser.add_argument("--out", required=True)
    parser.add_argument("--keys", nargs="+", default=["energy_data", "energy_gap", "posterior_data", "chain_max"])
    parser.add_argument("--labels", nargs="+", help="legend entries, one per run (default: the runs' names)")
    parser.add_argument("--probe", action="store_true", help="add a panel with the runs' linear-probe accuracies")
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.runs):
        parser.error(f"got {len(args.labels)} --labels for {len(args.runs)} runs")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_panels = len(args.keys) + int(args.probe)
    fig = Figure(figsize=(7, 1.8 * n_panels), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    for index, path in enumerate(args.runs):
        color = f"C{index}"  # one colour per run in every panel, with or without probes
        run = json.loads(Path(path).read_text())
        history = run["history"]
        name = args.labels[index] if args.labels else run["name"]
        label = name + (f" (diverged at {run['diverged']['update']})" if run.get("diverged") else "")
        for ax, key in zip(axes, args.keys):
            ax.plot([h["update"] for h in history], [h[key] for h in history], label=label, linewidth=0.8, color=color)
            ax.set_ylabel(key)
        if args.probe and run.get("probe"):
            probes = run["probe"]
            axes[-1].plot(
                [p["update"] for p in probes],
                [100 * p["accuracy"] for p in probes],
                marker="o",
                label=label,
                color=color,
            )
    if args.probe:
        axes[-1].set_ylabel("probe accuracy (%)")
    axes[0].legend(fontsize=7)
    for ax, key in zip(axes, args.keys):
        if key in ("energy_data", "energy_gap", "energy_samples", "grad_norm"):
            ax.set_yscale("symlog", linthresh=100)
    axes[-1].set_xlabel("update")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
