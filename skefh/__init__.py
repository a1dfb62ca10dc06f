"""skefh: exponential-family harmoniums with neural sufficient statistics, for scikit-learn.

Public estimators: :class:`NNEFH` (Abdulsalam & Makin, AAAI 2025) and the paper's two
baselines, :class:`EBM` and :class:`GRBM` (Liao et al. 2022).
"""

from ._version import __version__
from .estimators import EBM, GRBM, NNEFH

__all__ = ["NNEFH", "EBM", "GRBM", "__version__"]
