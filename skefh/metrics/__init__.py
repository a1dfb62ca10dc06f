"""Evaluation metrics: linear probes, Fréchet distances/FID, nearest neighbours."""

from .frechet import FIDResult, fid, frechet_distance, frechet_distance_from_stats
from .neighbours import nearest_neighbours
from .probe import ProbeResult, linear_probe, probe_table

# chain_distance lives in chains.py (added with the samplers):
#   from .chains import chain_distance
# and add "chain_distance" to __all__ below.

__all__ = [
    "FIDResult",
    "ProbeResult",
    "fid",
    "frechet_distance",
    "frechet_distance_from_stats",
    "linear_probe",
    "nearest_neighbours",
    "probe_table",
]
