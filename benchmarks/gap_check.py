"""Replay saved fits' training histories through the divergence check on energies that separate.

``DivergenceMonitor`` stops a fit when the median gap between the data's and the samples' mean
energies over the last ``gap_window`` updates exceeds ``gap_limit`` times its median over the
updates before. This script feeds the per-update records of every fitted model pickled under the
given folders (``history_``) through a monitor with the check turned off, and reports, per fit,
the largest ratio reached and the update at which a monitor with the given limit would have
stopped it: the margin between healthy fits and diverging ones that the default limit rests on.
Prints a table and writes ``results/gap_check/<name>.json``.

    python benchmarks/gap_check.py results/defaults results/sample_quality results/density
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import joblib

from skefh.training import DivergenceMonitor


def replay(history: list[dict], gap_limit: float, gap_window: int) -> dict:
    """Largest gap ratio over the records, and the first update whose ratio exceeds the limit."""
    monitor = DivergenceMonitor(chain_limit=math.inf, gap_limit=math.inf, gap_window=gap_window)
    largest, largest_at, stop_at = 0.0, None, None
    for record in history:
        monitor.on_update_end(None, record)
        if monitor.gap_ratio > largest:
            largest, largest_at = monitor.gap_ratio, record["update"]
        if stop_at is None and monitor.gap_ratio > gap_limit:
            stop_at = record["update"]
    return {"updates": len(history), "largest_ratio": largest, "largest_at": largest_at, "stopped_at": stop_at}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="folders searched (recursively) for *.joblib models")
    parser.add_argument("--gap-limit", type=float, default=10.0)
    parser.add_argument("--gap-window", type=int, default=100)
    parser.add_argument("--name", default="saved-fits")
    parser.add_argument("--out-dir", default="results/gap_check")
    args = parser.parse_args(argv)

    results = {"gap_limit": args.gap_limit, "gap_window": args.gap_window, "fits": {}}
    for path in sorted(p for folder in args.folders for p in Path(folder).rglob("*.joblib")):
        history = [r for r in getattr(joblib.load(path), "history_", []) if "energy_data" in r]
        if not history:
            continue
        outcome = replay(history, args.gap_limit, args.gap_window)
        results["fits"][str(path)] = outcome
        stopped = "-" if outcome["stopped_at"] is None else f"{outcome['stopped_at']:,}"
        print(f"{str(path):70s} {outcome['updates']:>7,} updates  largest ratio {outcome['largest_ratio']:10.3g}"
              f"  stopped at {stopped}", flush=True)
    out = Path(args.out_dir) / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
