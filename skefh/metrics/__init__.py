"""Evaluation metrics: linear probes, Fréchet distances/FID, sample quality judged by a
classifier trained on the data, nearest neighbours, chain distances, latent usage, bits per
dimension, and densities checked by quadrature and MMD."""

from .chains import ChainDistance, chain_distance
from .density import GridDensity, SampleScoreAgreement, grid_log_partition, sample_score_agreement
from .frechet import FIDResult, fid, frechet_distance, frechet_distance_from_stats
from .judge import ImageJudge
from .latent import LatentUsage, RedrawShift, latent_usage, redraw_shift
from .likelihood import AISChainEnds, ais_chain_ends, bits_per_dim
from .mmd import MMDTest, mmd, mmd_test
from .neighbours import nearest_neighbours
from .paired import PairedAccuracy, paired_accuracy_test
from .probe import ProbeResult, linear_probe, probe_predictions, probe_table
from .sample_quality import SampleQuality, class_coverage, mean_confidence, sample_quality

__all__ = [
    "ChainDistance",
    "FIDResult",
    "ImageJudge",
    "LatentUsage",
    "latent_usage",
    "RedrawShift",
    "redraw_shift",
    "bits_per_dim",
    "AISChainEnds",
    "ais_chain_ends",
    "chain_distance",
    "ProbeResult",
    "fid",
    "frechet_distance",
    "frechet_distance_from_stats",
    "linear_probe",
    "nearest_neighbours",
    "PairedAccuracy",
    "paired_accuracy_test",
    "probe_predictions",
    "probe_table",
    "SampleQuality",
    "class_coverage",
    "mean_confidence",
    "sample_quality",
    "GridDensity",
    "grid_log_partition",
    "mmd",
    "MMDTest",
    "mmd_test",
    "SampleScoreAgreement",
    "sample_score_agreement",
]
