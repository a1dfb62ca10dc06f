"""NNEFH: the exponential-family harmonium with neural sufficient statistics."""

from __future__ import annotations

import numpy as np
import torch

from ..nn import NNEFHEnergy
from ..samplers import GaussianMixtureBasePath, GibbsLangevinSettings
from ._base import BaseEnergyEstimator
from ._neural import NeuralStatisticsMixin
from ._params import NNEFH_FEATURES, NNEFH_PARAMETERS, with_parameters

__all__ = ["NNEFH"]


# __init__, _parameter_constraints and the docstring's {parameters} come from _params.py.
@with_parameters(NNEFH_PARAMETERS)
class NNEFH(NeuralStatisticsMixin, BaseEnergyEstimator):
    """Exponential-family harmonium with neural sufficient statistics (NN-EFH).

    The energy is ``E(z, x) = ||x - mu||^2 - U(x)^T W^T z - b^T z`` with Bernoulli latents
    ``z``: inference is exact, ``p(z | x) = Bern(sigmoid(W U(x) + b))``, and ``U`` is a deep
    network (a convolutional net with non-local attention for images, an MLP otherwise). It is
    trained by maximum likelihood with Gibbs-Langevin model samples (Algorithm 1 of the paper):
    each update draws ``x`` from noise, then runs ``gibbs_steps`` rounds of ``langevin_steps``
    Langevin steps on ``x`` with ``z`` fixed, each followed by ``z ~ p(z | x)``.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    log_partition_ : float or None
        Estimate of log Z in working units, set by ``fit`` with ``log_partition="ais"`` or
        ``"exact"`` and by :meth:`estimate_log_partition`; None otherwise (``score`` and
        ``score_samples`` never set it), and after ``partial_fit`` or ``from_checkpoint``.
    log_partition_std_ : float or None
        Its standard error (0 when exact).
    log_partition_ess_ : float or None
        Effective sample size of the AIS weights (out of ``ais_chains``).
    module_ : skefh.nn.NNEFHEnergy
        The fitted torch module.
    image_shape_ : tuple or None
        The resolved image shape (None for tabular data).
    range_map_ : RangeMap
        The affine map from data units to the model's working units.
    log_partition_lower_bound_ : float or None
        A lower bound on log Z (three standard errors below a Monte Carlo estimate of
        ``E_q[-F / tau - log q]``, q a Gaussian kernel density on up to 512 training rows),
        computed at the end of ``fit`` with ``log_partition="ais"``; an AIS estimate below it
        warns. None otherwise, and after ``partial_fit`` or ``from_checkpoint``.
    data_moments_ : ndarray of shape (2, `n_features_in_`) or None
        Per-feature mean and variance of the training data in working units: where the AIS
        estimate of log Z starts half of its chains (None when restored from a checkpoint that
        predates it).
    device_ : torch.device
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string feature names.
    n_iter_ : int
        Updates that produced the fitted weights (``max_iter`` after a complete fit; updates
        discarded by a divergence restore are not counted).
    history_ : list of dict
        One record per update: ``energy_data``, ``energy_samples``, ``energy_gap``, ``loss``,
        ``grad_norm``, ``langevin_grad_norm``, ``chain_min``, ``chain_max``,
        ``posterior_data`` (mean posterior activation on the data batch), ``lr``, ``seconds``.
        With ``on_divergence="restore"``, each restore adds a record with ``event="restored"``,
        the ``update`` that diverged, the ``reason``, the new ``lr_scale``, and the update it
        went back to (``restored_to``); the records of the discarded updates are dropped.

    See Also
    --------
    EBM : the same network as a plain energy-based model.
    GRBM : Gaussian-Bernoulli RBM, the linear-statistics baseline.

    Notes
    -----
    ``score_samples`` returns ``log p(x) = -F(w) / tau - log Z + log|det dw/dx|``: ``F(w) =
    ||w - mu||^2 - tau sum softplus(eta(w) / tau)`` is the exact free energy of the row ``w`` in
    working units at the model's temperature tau, ``log Z`` the annealed-importance-sampling estimate
    ``log_partition_`` (base: an equal mixture of N(mu, tau I/2) and a Gaussian fitted to the
    training data, annealed to exp(-F / tau)), and the last term
    the log-Jacobian of the data scaling, so that values are log-densities in the units of
    ``X``. The AIS estimate of log Z is biased low when its
    weights are uneven (check ``log_partition_ess_``); raise ``ais_steps`` to tighten it. At a
    low temperature the density is very peaked and AIS may not reach a reliable estimate
    (the README's digits model at the default 1e-3: one effective sample of 64); ``score``
    then raises :class:`skefh.estimators.LikelihoodError` rather than return a number the
    library calls unreliable.
    Sampling is stochastic; on CUDA results are not bit-reproducible.

    References
    ----------
    A. Abdulsalam and J. G. Makin, "Exponential-Family Harmoniums with Neural Sufficient
    Statistics", AAAI 2025 (Eqs. 5-8, Algorithms 1 and 2).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skefh import NNEFH
    >>> X = load_digits().data[:64]
    >>> est = NNEFH(n_components=16, n_statistics=16, n_filters=4, gibbs_steps=1,
    ...             langevin_steps=2, max_iter=2, random_state=0).fit(X)
    >>> est.image_shape_
    (1, 8, 8)
    >>> est.transform(X).shape
    (64, 16)
    >>> est.sample(3).shape
    (3, 64)
    """

    _feature_options = NNEFH_FEATURES

    def _build_module(self, input_shape, generator):
        statistics = self._build_statistics(input_shape, generator)
        return NNEFHEnergy(
            statistics, input_shape, self.n_statistics, self.n_components, generator=generator,
            temperature=self.temperature,
        )

    def _sampler_settings(self) -> GibbsLangevinSettings:
        return GibbsLangevinSettings(
            n_gibbs=self.gibbs_steps,
            n_langevin=self.langevin_steps,
            step_size=self.step_size,
            latent_temperature=self.latent_temperature,
            precision=self.sampler_precision,
            bounds=self._chain_box(self.chain_bounds),
        )

    def _negative_data_fraction(self) -> float:
        if self.negative_init == "noise":
            return 0.0
        if self.negative_init == "data":
            return 1.0
        return float(self.negative_init)

    def _trainer_options(self) -> dict:
        return {
            "latent_statistics": self.latent_statistics,
            "latent_l2": self.latent_l2,
            "latent_temperature": self.latent_temperature,
        }

    def _feature_tensor(self, x):
        if self.features == "U":
            return self.module_.statistics(x)
        logits = self.module_.posterior_logits(x) / self.module_.temperature
        return logits if self.features == "eta" else torch.sigmoid(logits)

    def _n_transform_features(self) -> int:
        return self.n_statistics if self.features == "U" else self.n_components

    def _initialise(self, X):
        super()._initialise(X)
        working = self.range_map_.to_working(X).astype(np.float64)
        self.data_moments_ = np.stack([working.mean(0), working.var(0)])

    def _annealing_path(self):
        # Chains start from an equal mixture of N(mu, tau I / 2) (the quadratic term alone:
        # where an untrained network's mass is) and a Gaussian fitted to the training data
        # (where a trained one's is). The data component's variance adds tau / 2, the spread of
        # exp(-F / tau) about any point where the statistics are locally linear.
        tau = self.module_.temperature
        mu = self.module_.mu.detach()
        means, variances = [mu], [torch.full_like(mu, 0.5 * tau)]
        if self.data_moments_ is not None:
            mean, var = (
                torch.as_tensor(a, dtype=mu.dtype, device=mu.device).reshape(mu.shape)
                for a in self.data_moments_
            )
            means.append(mean)
            variances.append(var + 0.5 * tau)
        return GaussianMixtureBasePath(self.module_, torch.stack(means), torch.stack(variances))

    def _extra_state(self) -> dict:
        if self.data_moments_ is None:
            return {}
        return {"data_moments": torch.from_numpy(self.data_moments_)}

    def _load_extra_state(self, state: dict) -> None:
        # Checkpoints written before the data component existed fall back to the quadratic base.
        moments = state.get("data_moments")
        self.data_moments_ = None if moments is None else moments.numpy()
