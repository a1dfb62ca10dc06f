"""Samplers: they borrow an energy model, own no parameters, and return dicts."""

from .gibbs_langevin import (
    GibbsLangevinSettings,
    gibbs_langevin,
    sample_from_data,
    sample_from_noise,
)
from .langevin import langevin, sampling_mode, step_schedule

__all__ = [
    "GibbsLangevinSettings",
    "gibbs_langevin",
    "sample_from_data",
    "sample_from_noise",
    "langevin",
    "sampling_mode",
    "step_schedule",
]
