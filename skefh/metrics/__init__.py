"""Evaluation metrics: linear probes, Fréchet distances/FID, nearest neighbours, chain
distances, bits per dimension."""

from .chains import ChainDistance, chain_distance
from .frechet import FIDResult, fid, frechet_distance, frechet_distance_from_stats
from .likelihood import bits_per_dim
from .neighbours import nearest_neighbours
from .probe import ProbeResult, linear_probe, probe_table

__all__ = [
    "ChainDistance",
    "FIDResult",
    "bits_per_dim",
    "chain_distance",
    "ProbeResult",
    "fid",
    "frechet_distance",
    "frechet_distance_from_stats",
    "linear_probe",
    "nearest_neighbours",
    "probe_table",
]
