"""scikit-learn shells over the torch core."""

from ._likelihood import LikelihoodError, LikelihoodWarning
from ._resolve import DeviceWarning
from ._scaling import RangeMap
from .ebm import EBM
from .grbm import GRBM
from .nnefh import NNEFH

__all__ = ["NNEFH", "EBM", "GRBM", "DeviceWarning", "LikelihoodError", "LikelihoodWarning", "RangeMap"]
