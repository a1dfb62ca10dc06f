"""EBM: the paper's energy-based baseline with the same network as the NN-EFH."""

from __future__ import annotations

import numpy as np
import torch

from ..nn import EBMEnergy
from ..samplers import BoxPath, GibbsLangevinSettings
from ._base import BaseEnergyEstimator
from ._neural import NeuralStatisticsMixin
from ._params import EBM_FEATURES, EBM_PARAMETERS, with_parameters

__all__ = ["EBM"]


# __init__, _parameter_constraints and the docstring's {parameters} come from _params.py.
@with_parameters(EBM_PARAMETERS)
class EBM(NeuralStatisticsMixin, BaseEnergyEstimator):
    """Energy-based model ``E(x) = w^T U(x) + c`` trained with short-run Langevin dynamics.

    The paper's baseline: the same sufficient-statistics network as :class:`NNEFH`, read out
    by a learned vector instead of a latent layer. Each update starts ``batch_size`` chains
    from N(0, I) (non-persistent; see ``replay_buffer``) and runs ``langevin_steps`` Langevin
    steps.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    module_ : skefh.nn.EBMEnergy
    support_ : ndarray of shape (2, n_features)
        Lower and upper corners of the box outside which the density is contained (see Notes),
        in working units.
    log_partition_, log_partition_std_, log_partition_ess_, log_partition_lower_bound_
        As in :class:`NNEFH`.
    image_shape_, range_map_, device_, n_features_in_, n_iter_, history_
        As in :class:`NNEFH`.

    See Also
    --------
    NNEFH : the same network with a Bernoulli latent layer and Gibbs-Langevin sampling.

    Notes
    -----
    ``E`` alone need not be integrable on R^D (it has no quadratic term), so the density that
    ``score_samples`` evaluates adds a containment term outside a box ``support_``:
    ``p(w) proportional to exp(-(E(w) + ||w - clamp(w, support_)||^2) / tau)``. Inside the box
    it is the density the Langevin sampler targets, ``exp(-E(w) / tau)``; outside, it decays
    like the NN-EFH's quadratic term, so every row has a finite log-density. The box is the
    training data's range in working units ([-1, 1] for images, each feature's range for
    tabular data) widened by 5 % of its width on each side. ``score_samples`` returns
    ``-(E(w) + ||w - clamp(w)||^2) / tau - log Z + log|det dw/dx|``, with log Z estimated by
    annealed importance sampling from the box's uniform density with Gaussian tails (variance
    tau / 2), the same density without ``E``.

    At a low temperature (the default 1e-3) and in image dimensions that estimate rests on one
    effective sample (measured on 8x8 digits), and the library does not use it:
    ``score_samples`` raises :class:`skefh.estimators.LikelihoodError` instead of returning a
    number it cannot vouch for (see the likelihood page of the documentation).
    ``estimate_log_partition`` still runs AIS when called, and warns.

    References
    ----------
    E. Nijkamp, M. Hill, T. Han, S.-C. Zhu, Y. N. Wu, "On the Anatomy of MCMC-Based Maximum
    Likelihood Learning of Energy-Based Models", AAAI 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skefh import EBM
    >>> X = load_digits().data[:64]
    >>> est = EBM(n_statistics=16, n_filters=4, langevin_steps=2, max_iter=2,
    ...           random_state=0).fit(X)
    >>> est.transform(X).shape
    (64, 16)
    """

    _feature_options = EBM_FEATURES

    def _build_module(self, input_shape, generator):
        statistics = self._build_statistics(input_shape, generator)
        return EBMEnergy(
            statistics, input_shape, self.n_statistics, generator=generator, temperature=self.temperature
        )

    def _sampler_settings(self) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=1,
            n_langevin=self.langevin_steps,
            step_size=self.step_size,
            precision=self.sampler_precision,
            bounds=self._chain_box(self.chain_bounds),
        )

    def _feature_tensor(self, x):
        return self.module_.statistics(x)

    def _n_transform_features(self) -> int:
        return self.n_statistics

    # -- the density: exp(-E(x) / tau) on a soft box ----------------------------------------------
    #: The support box is the data's working range widened by this fraction of its width.
    _support_margin = 0.05

    def _initialise(self, X):
        super()._initialise(X)
        if self.image_shape_ is not None:
            low = np.full(X.shape[1], -1.0)  # the range map sends the data range to [-1, 1]
            high = np.full(X.shape[1], 1.0)
        else:
            working = self.range_map_.to_working(X)
            low, high = working.min(0).astype(np.float64), working.max(0).astype(np.float64)
        margin = np.maximum(self._support_margin * (high - low), 1e-3)
        self.support_ = np.stack([low - margin, high + margin])
        self.module_.set_support(*self._support_tensors())

    def _support_tensors(self, dtype=torch.float32):
        shape = self._input_shape()
        return tuple(torch.as_tensor(bound, dtype=dtype, device=self.device_).reshape(shape) for bound in self.support_)

    def _annealing_path(self):
        # The containment ||w - clamp(w)||^2 / tau is a Gaussian tail of variance tau / 2.
        low, high = self._support_tensors()
        return BoxPath(self.module_, low, high, step_size=1e-3, tail_variance=0.5 * self.module_.temperature)

    def _extra_state(self) -> dict:
        return {"support": torch.from_numpy(self.support_)}

    def _load_extra_state(self, state: dict) -> None:
        self.support_ = state["support"].numpy()
        self.module_.set_support(*self._support_tensors())
