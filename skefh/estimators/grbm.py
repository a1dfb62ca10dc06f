"""GRBM: the Gaussian-Bernoulli RBM baseline of Liao et al. (2022)."""

from __future__ import annotations

import torch

from ..nn import GRBMEnergy
from ..samplers import GibbsLangevinSettings, GRBMPath, grbm_exact_log_partition
from ._base import BaseEnergyEstimator
from ._params import GRBM_FEATURES, GRBM_PARAMETERS, with_parameters

__all__ = ["GRBM"]


# __init__, _parameter_constraints and the docstring's {parameters} come from _params.py.
@with_parameters(GRBM_PARAMETERS)
class GRBM(BaseEnergyEstimator):
    """Gaussian-Bernoulli RBM with learned variances, trained with Gibbs-Langevin sampling.

    ``E(v, h) = sum_i (v_i - mu_i)^2 / (2 sigma_i^2) - (v / sigma^2)^T W h - b^T h`` with
    learned per-dimension log-variances. Training follows Liao et al.'s "modified CD": every
    update starts ``batch_size`` chains from N(0, I), runs ``gibbs_steps`` rounds of
    ``langevin_steps`` Langevin steps (cosine step schedule restarted every round, step size
    ``step_size * mean(sigma^2)``, energies divided by the batch size), and averages the
    negative statistics over all rounds.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    module_ : skefh.nn.GRBMEnergy
    log_partition_, log_partition_std_, log_partition_ess_, log_partition_lower_bound_
        As in :class:`NNEFH`. With ``log_partition="auto"`` ``fit`` computes log Z exactly
        (a sum over the 2^H hidden states) for up to 20 hidden units; beyond, ``score_samples``
        estimates it by AIS on first use (privately), or ``log_partition="ais"`` makes ``fit``
        store an AIS estimate and its lower bound (None when log Z is exact).
    image_shape_, range_map_, device_, n_features_in_, n_iter_, history_
        As in :class:`NNEFH`.

    Notes
    -----
    ``score_samples`` is ``-F(v) - log Z`` plus the log-Jacobian of the data scaling, with the
    closed form ``F(v) = sum (v - mu)^2 / (2 sigma^2) - sum softplus(W^T (v / sigma^2) + b)``.

    References
    ----------
    R. Liao, S. Kornblith, M. Ren, D. J. Fleet, G. Hinton, "Gaussian-Bernoulli RBMs Without
    Tears", arXiv:2210.10318 (2022).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skefh import GRBM
    >>> X = load_digits().data[:64]
    >>> est = GRBM(n_components=8, gibbs_steps=2, batch_size=32, max_iter=2,
    ...            random_state=0).fit(X)
    >>> est.transform(X).shape
    (64, 8)
    """

    _feature_options = GRBM_FEATURES

    def _resolved_energy_scale(self) -> float:
        if isinstance(self.energy_scale, str):
            return 1.0 / self.batch_size  # the reference divides every energy by the batch size
        return float(self.energy_scale)

    @property
    def _negative_samples(self):
        return self.negative_samples

    def _input_shape(self) -> tuple:
        return (self.n_features_in_,)  # the GRBM sees flat rows, whatever the image shape

    def _build_module(self, input_shape, generator):
        return GRBMEnergy(input_shape[0], self.n_components, init_var=self.init_var, generator=generator)

    def _sampler_settings(self) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=self.gibbs_steps,
            n_langevin=self.langevin_steps,
            step_size=self.step_size,
            energy_scale=self._resolved_energy_scale(),
            schedule=self.step_schedule,
            visible_step="exact" if self.sampler == "gibbs" else "langevin",
        )

    def _chain_limit(self) -> float:
        # The reference's Langevin runs at temperature 1 / energy_scale (the batch size): its
        # chains are that much wider than the data by design.
        hot = 1.0 / self._resolved_energy_scale() if self.sampler != "gibbs" else 1.0
        return 100.0 * max(1.0, hot) ** 0.5

    def _finalise_samples(self, out: dict) -> torch.Tensor:
        return self.module_.visible_mean(out["z"]) if self.sample_mean else out["x"]

    def _feature_tensor(self, x):
        eta = self.module_.posterior_logits(x)
        return torch.sigmoid(eta) if self.features == "mean" else eta

    def _n_transform_features(self) -> int:
        return self.n_components

    #: "auto" enumerates the 2^H hidden states exactly up to this many hidden units.
    _exact_partition_limit = 20

    def _exact_partition_tractable(self) -> bool:
        return self.n_components <= self._exact_partition_limit

    def _exact_log_partition(self) -> float:
        return grbm_exact_log_partition(self.module_)

    def _annealing_path(self):
        # W and b annealed in from 0: the base N(mu, sigma^2) x Bern(1/2) is exact; Gibbs moves.
        return GRBMPath(self.module_)
