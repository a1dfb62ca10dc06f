"""Samplers: they borrow an energy model, own no parameters, and return dicts."""

from ..nn.base import sampling_mode  # re-exported: it serves the samplers, training and transform
from .gibbs_langevin import (
    GibbsLangevinSettings,
    gibbs_langevin,
    sample_from_data,
    sample_from_noise,
    training_negatives,
)
from .jumps import KernelJump
from .langevin import langevin, metropolis_langevin, step_schedule
from .replay import ReplayBuffer, TrainingSampler

__all__ = [
    "GibbsLangevinSettings",
    "gibbs_langevin",
    "sample_from_data",
    "sample_from_noise",
    "training_negatives",
    "KernelJump",
    "ReplayBuffer",
    "TrainingSampler",
    "langevin",
    "metropolis_langevin",
    "sampling_mode",
    "step_schedule",
]

from .ais import (  # noqa: E402
    AISResult,
    annealed_importance_sampling,
    grbm_exact_log_partition,
    kernel_log_weights,
    kernel_lower_bound,
    linear_schedule,
    reverse_annealed_importance_sampling,
)
from .annealing_paths import BoxPath, GaussianMixtureBasePath, GRBMPath  # noqa: E402

__all__ += [
    "AISResult",
    "BoxPath",
    "GaussianMixtureBasePath",
    "GRBMPath",
    "annealed_importance_sampling",
    "grbm_exact_log_partition",
    "kernel_lower_bound",
    "kernel_log_weights",
    "linear_schedule",
    "reverse_annealed_importance_sampling",
]
