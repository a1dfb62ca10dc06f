"""Torch modules only: sufficient-statistics networks and the three energies."""

from .base import EnergyModel, input_gradient
from .ebm import EBMEnergy
from .grbm import GRBMEnergy
from .nnefh import NNEFHEnergy
from .statistics import ConvStatistics, MLPStatistics, NonLocalBlock, build_statistics_net

__all__ = [
    "EnergyModel",
    "input_gradient",
    "NNEFHEnergy",
    "EBMEnergy",
    "GRBMEnergy",
    "ConvStatistics",
    "MLPStatistics",
    "NonLocalBlock",
    "build_statistics_net",
]
