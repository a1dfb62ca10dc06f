"""Normalised log-likelihoods: the log-partition estimate behind ``score_samples``.

``score_samples(X) = -F(w(x)) - log Z + log|det dw/dx|``, with ``w`` the affine map to working
units. log Z is computed once per fit: exactly where that is tractable (a GRBM with few hidden
units), otherwise by annealed importance sampling (``skefh.samplers.ais``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..samplers.ais import annealed_importance_sampling, kernel_lower_bound

__all__ = ["LikelihoodMixin", "LikelihoodWarning"]


class LikelihoodWarning(UserWarning):
    """The log-partition estimate is unreliable (few effective AIS samples)."""


class LikelihoodMixin:
    """Adds ``log_partition_`` (and its standard error) and normalises ``score_samples``."""

    #: Largest number of hidden units for which "auto" enumerates the exact log Z (GRBM).
    _exact_partition_limit = 0

    def _annealing_path(self):
        """The AIS path for this model (subclasses)."""
        raise NotImplementedError

    def _exact_log_partition(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} has no tractable exact log Z")

    def _log_partition_method(self) -> str | None:
        choice = self.log_partition
        if choice is None:
            return None
        if choice == "auto":
            return "exact" if self._exact_partition_tractable() else "ais"
        if choice == "exact" and not self._exact_partition_tractable():
            raise ValueError(
                f"log_partition='exact' is not tractable for {type(self).__name__} with these "
                "settings; use 'ais' or 'auto'"
            )
        return choice

    def _exact_partition_tractable(self) -> bool:
        return False

    #: Training rows used as kernel centres, and kernel variances (times tau), for the lower
    #: bound on log Z that an AIS estimate is checked against.
    _bound_centres = 512
    _bound_variances = (0.05, 0.1, 0.25)
    #: The bound needs a density that is positive everywhere (the kernel density's support).
    _bound_applies = True

    def _after_fit(self, X) -> None:
        self._invalidate_log_partition()
        method = self._log_partition_method()
        if method is not None:
            if method == "ais" and self._bound_applies:
                self.log_partition_lower_bound_ = self._kernel_lower_bound(X)
            self.estimate_log_partition()

    def _invalidate_log_partition(self) -> None:
        """Forget log Z (the weights changed); ``score_samples`` re-estimates it when needed."""
        self.log_partition_ = self.log_partition_std_ = self.log_partition_ess_ = None
        if self._bound_applies:
            self.log_partition_lower_bound_ = None  # it was for the old weights

    def _kernel_lower_bound(self, X) -> float:
        """Largest over kernel variances of (bound - 3 standard errors); see
        :func:`skefh.samplers.kernel_lower_bound`."""
        rows = np.random.default_rng(self._seed).permutation(len(X))[: self._bound_centres]
        centres = self._to_tensor(self.range_map_.to_working(X[np.sort(rows)])).to(self.module_.mu.dtype)
        generator = torch.Generator(device=self.device_).manual_seed(self._seed + 11)
        tau = self.module_.temperature
        bounds = []
        for scale in self._bound_variances:
            value, std = kernel_lower_bound(self.module_.log_density, centres, scale * tau, generator=generator)
            bounds.append(value - 3.0 * std)
        return max(bounds)

    def _after_restore(self) -> None:
        # Estimated on first use: loading a checkpoint to sample or transform need not pay for AIS.
        self._invalidate_log_partition()

    def estimate_log_partition(self, n_chains=None, n_steps=None, random_state=None):
        """(Re-)estimate the log-partition function and store it in ``log_partition_``.

        Called at the end of ``fit``; call it again with more chains or steps for a tighter
        estimate (the cost grows linearly with both).

        Parameters
        ----------
        n_chains : int, optional
            AIS chains; defaults to ``ais_chains``.
        n_steps : int, optional
            AIS intermediate distributions; defaults to ``ais_steps``.
        random_state : int, RandomState instance or None, default=None
            Defaults to the estimator's ``random_state``.

        Returns
        -------
        self : object
            With ``log_partition_``, ``log_partition_std_`` (standard error; 0 when exact) and
            ``log_partition_ess_`` (effective sample size of the AIS weights; None when exact).
        """
        check_is_fitted(self, "module_")
        method = self._log_partition_method() or "ais"
        if method == "exact":
            self.log_partition_ = self._exact_log_partition()
            self.log_partition_std_ = 0.0
            self.log_partition_ess_ = None
            return self
        seed = check_random_state(random_state if random_state is not None else self.random_state)
        generator = torch.Generator(device=self.device_).manual_seed(int(seed.randint(2**31 - 1)) + 7)
        result = annealed_importance_sampling(
            self._annealing_path(),
            n_chains=int(n_chains or self.ais_chains),
            n_steps=int(n_steps or self.ais_steps),
            generator=generator,
        )
        if not math.isfinite(result.log_z):
            raise FloatingPointError(
                f"the AIS estimate of log Z is {result.log_z}: the model's energies are not finite "
                "on the annealing path"
            )
        self.log_partition_ = result.log_z
        self.log_partition_std_ = result.log_z_std
        self.log_partition_ess_ = result.ess
        bound = getattr(self, "log_partition_lower_bound_", None)
        if bound is not None and result.log_z < bound:
            warnings.warn(
                f"the AIS estimate of log Z ({result.log_z:.2f}) is below a lower bound computed "
                f"from the training data ({bound:.2f}): its chains missed mass the model puts near "
                "the data, and score is too high; raise ais_steps (or ais_chains)",
                LikelihoodWarning,
                stacklevel=2,
            )
        if result.ess < max(2.0, 0.05 * result.n_chains):
            warnings.warn(
                f"the AIS estimate of log Z rests on {result.ess:.1f} effective samples out of "
                f"{result.n_chains} chains: log_partition_ is then biased low and its standard "
                "error understated; raise ais_steps (or ais_chains) for a reliable likelihood",
                LikelihoodWarning,
                stacklevel=2,
            )
        return self

    def _unnormalised_log_density(self, X) -> np.ndarray:
        """log f(w(x)) in working units: ``-F / tau`` with tau the model's temperature."""
        return -self.free_energy(X) / self.module_.temperature

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))

    def score_samples(self, X):
        """Log-density of each row of ``X``, in the units of ``X``.

        ``-F(w(x)) - log Z + log|det dw/dx|``: the model's free energy at the row mapped to
        working units, minus the log-partition estimate ``log_partition_``, plus the
        log-Jacobian of the affine map to working units. With ``log_partition=None`` the
        ``log Z`` term is left out and the values are log-densities up to that constant.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Float64 log-densities (nats).
        """
        values = self._unnormalised_log_density(X) + self.range_map_.log_abs_det_jacobian
        if self.log_partition_ is None and self._log_partition_method() is not None:
            self.estimate_log_partition()  # after partial_fit or from_checkpoint
        if self.log_partition_ is not None:
            values = values - self.log_partition_
        return values
