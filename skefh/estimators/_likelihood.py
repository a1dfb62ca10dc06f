"""Normalised log-likelihoods: the log-partition estimate behind ``score_samples``.

``score_samples(X) = -F(w(x)) - log Z + log|det dw/dx|``, with ``w`` the affine map to working
units. Where log Z comes from:

- ``fit`` computes it only where that is exact and cheap (a GRBM with few hidden units), or when
  asked to (``log_partition="ais"``): a fit used as a transformer does not pay for annealed
  importance sampling (``skefh.samplers.ais``) it never uses.
- :meth:`LikelihoodMixin.estimate_log_partition` estimates it explicitly and stores it in
  ``log_partition_``.
- Otherwise ``score_samples`` estimates it on first use and keeps it in a private cache (behind a
  lock, so that threads scoring one estimator run AIS once), leaving every public attribute as
  it was. An on-demand estimate that the library's own checks call unreliable (too few effective
  samples, or below a lower bound) is never used: ``score_samples`` raises
  :class:`LikelihoodError` instead and says what to do.
"""

from __future__ import annotations

import math
import threading
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..nn.base import sampling_mode
from ..samplers.ais import annealed_importance_sampling, kernel_lower_bound, reverse_annealed_importance_sampling

__all__ = ["LikelihoodMixin", "LikelihoodWarning", "LikelihoodError"]

# Guards the creation of each estimator's own lock (two threads must not each create one).
_LOCK_GUARD = threading.Lock()


class LikelihoodWarning(UserWarning):
    """The log-partition estimate is unreliable (few effective AIS samples)."""


class LikelihoodError(RuntimeError):
    """``score_samples`` needs log Z, and no reliable estimate of it can be made on demand."""


class LikelihoodMixin:
    """Adds ``log_partition_`` (and its standard error) and normalises ``score_samples``."""

    #: Largest number of hidden units for which "auto" enumerates the exact log Z (GRBM).
    _exact_partition_limit = 0

    def _annealing_path(self):
        """The AIS path for this model (subclasses)."""
        raise NotImplementedError

    def _exact_log_partition(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} has no tractable exact log Z")

    def _estimate_method(self) -> str:
        """How :meth:`estimate_log_partition` computes log Z: "exact" where asked for (or "auto")
        and tractable, else "ais"."""
        choice = self.log_partition
        if choice == "exact" and not self._exact_partition_tractable():
            raise ValueError(
                f"log_partition='exact' is not tractable for {type(self).__name__} with these "
                "settings; use 'ais' or 'auto'"
            )
        if choice in ("auto", "exact") and self._exact_partition_tractable():
            return "exact"
        return "ais"

    def _check_log_partition(self) -> None:
        """Refuse ``log_partition="exact"`` where it is intractable, before ``fit`` trains."""
        if self.log_partition == "exact":
            self._estimate_method()

    def _fit_log_partition_method(self) -> str | None:
        """What ``fit`` computes: log Z where it is exact and cheap, or AIS when asked ("ais")."""
        if self.log_partition is None:
            return None
        method = self._estimate_method()
        if self.log_partition == "auto" and method == "ais":
            return None  # left to estimate_log_partition(), or to score_samples on first use
        return method

    def _exact_partition_tractable(self) -> bool:
        return False

    def _likelihood_advice(self) -> str:
        """What else to try when log Z is out of reach (a sentence with a leading space, or "")."""
        return ""

    def _resolved_ais_steps(self) -> int:
        """``ais_steps``, with "auto" resolved by the model (subclasses that allow it)."""
        return int(self.ais_steps)

    #: Training rows used as kernel centres, and kernel variances (times tau), for the lower
    #: bound on log Z that an AIS estimate is checked against.
    _bound_centres = 512
    _bound_variances = (0.05, 0.1, 0.25)
    #: The bound needs a density that is positive everywhere (the kernel density's support).
    _bound_applies = True
    #: The kernel centres of that bound, in working units: training rows chosen by the seed
    #: (None where none are known, e.g. after ``from_checkpoint``: no bound is then checked).
    _bound_rows = None

    def _remember_bound_rows(self, X) -> None:
        """Keep up to ``_bound_centres`` rows of the training data ``X`` as kernel centres, so
        that the bound, and the verdict on an AIS estimate, never depend on the rows scored."""
        rows = np.random.default_rng(self._fit_seed()).permutation(len(X))[: self._bound_centres]
        self._bound_rows = self.range_map_.to_working(X[np.sort(rows)])

    def _after_fit(self, X) -> None:
        self._invalidate_log_partition()
        method = self._fit_log_partition_method()
        if method is not None:
            if method == "ais" and self._bound_applies:
                self.log_partition_lower_bound_ = self._kernel_lower_bound()
            self.estimate_log_partition()

    def _invalidate_log_partition(self) -> None:
        """Forget log Z (the weights changed); ``score_samples`` re-estimates it when needed."""
        self.log_partition_ = self.log_partition_std_ = self.log_partition_ess_ = None
        self.log_partition_upper_ = None
        if self._bound_applies:
            self.log_partition_lower_bound_ = None  # it was for the old weights
        self._log_partition_cache = None

    def _reverse_start(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows in working units moved into the density's support, to start reverse AIS from."""
        return rows

    def _working_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """The unnormalised log-density in working units whose normaliser is log Z.

        Evaluated with the module frozen, as ``free_energy`` evaluates it: in training mode a
        spectrally normalised layer advances its power iteration at every forward pass, and the
        kernel bound's thousands of them moved the weights that later scores used."""
        with sampling_mode(self.module_), torch.no_grad():
            return self.module_.log_density(x)

    def _density_box(self, dtype=torch.float32):
        """The box the scored density lives on, in working units, or None for all of R^D."""
        return None

    def _kernel_lower_bound(self) -> float | None:
        """Largest over kernel variances of (bound - 3 standard errors), centred on the training
        rows kept by :meth:`_remember_bound_rows` (None without them), with kernels truncated to
        the density's box where it has one; see :func:`skefh.samplers.kernel_lower_bound`."""
        if self._bound_rows is None:
            return None
        dtype = next(self.module_.parameters()).dtype
        centres = self._to_tensor(self._bound_rows).to(dtype)
        generator = torch.Generator(device=self.device_).manual_seed(self._fit_seed() + 11)
        tau = self.module_.temperature
        box = self._density_box(dtype)
        bounds = []
        for scale in self._bound_variances:
            value, std = kernel_lower_bound(self._working_log_density, centres, scale * tau, generator=generator,
                                            bounds=box)
            bounds.append(value - 3.0 * std)
        return max(bounds)

    def _after_restore(self) -> None:
        # Estimated on first use: loading a checkpoint to sample or transform need not pay for AIS.
        self._invalidate_log_partition()

    def estimate_log_partition(self, n_chains=None, n_steps=None, random_state=None, bracket=False):
        """(Re-)estimate the log-partition function and store it in ``log_partition_``.

        ``fit`` calls it only where log Z is exact and cheap or with ``log_partition="ais"``;
        call it to get a public estimate (and its diagnostics), or again with more chains or
        steps for a tighter one (the cost grows linearly with both). It warns
        (:class:`LikelihoodWarning`) when the estimate is unreliable.

        With ``bracket=True`` it also runs AIS backwards along the same path from training rows
        (:func:`skefh.samplers.reverse_annealed_importance_sampling`) and stores that upper
        estimate in ``log_partition_upper_``: forward AIS is a stochastic lower bound on log Z
        and the reverse run, from exact samples of the model, a stochastic upper one
        (bidirectional Monte Carlo). Training rows stand in for the model's samples, so the
        upper end is a diagnostic: a wide bracket, or one whose ends cross (it warns), says
        that the estimate has not converged.

        Parameters
        ----------
        n_chains : int, optional
            AIS chains; defaults to ``ais_chains``.
        n_steps : int, optional
            AIS intermediate distributions; defaults to ``ais_steps``.
        random_state : int, RandomState instance or None, default=None
            Defaults to the estimator's ``random_state``.
        bracket : bool, default=False
            Also estimate ``log_partition_upper_`` by reverse AIS from up to ``n_chains``
            training rows (not available after ``from_checkpoint``, which keeps no rows).

        Returns
        -------
        self : object
            With ``log_partition_``, ``log_partition_std_`` (standard error; 0 when exact),
            ``log_partition_ess_`` (effective sample size of the AIS weights; None when exact)
            and ``log_partition_upper_`` (the reverse estimate with ``bracket=True``, log Z
            itself when exact, otherwise None).
        """
        check_is_fitted(self, "module_")
        if bracket and self._bound_rows is None and self._estimate_method() != "exact":
            raise ValueError(
                "bracket=True runs AIS backwards from training rows, and this model keeps none "
                "(it was loaded with from_checkpoint); fit it, or call without bracket"
            )
        self.log_partition_upper_ = None
        if self._estimate_method() == "exact":
            self.log_partition_ = self.log_partition_upper_ = self._exact_log_partition()
            self.log_partition_std_ = 0.0
            self.log_partition_ess_ = None
            return self
        result = self._ais(n_chains, n_steps, random_state)
        self.log_partition_ = result.log_z
        self.log_partition_std_ = result.log_z_std
        self.log_partition_ess_ = result.ess
        for problem in self._unreliable(result, getattr(self, "log_partition_lower_bound_", None)):
            warnings.warn(f"{problem}; raise ais_steps (or ais_chains)", LikelihoodWarning, stacklevel=2)
        if bracket:
            upper = self._reverse_ais(n_chains, n_steps, random_state)
            self.log_partition_upper_ = upper.log_z
            if upper.log_z + 3 * upper.log_z_std < result.log_z - 3 * result.log_z_std:
                warnings.warn(
                    f"the reverse AIS estimate of log Z ({upper.log_z:.2f}) is below the forward one "
                    f"({result.log_z:.2f}): the ends of the bracket cross, so neither run has "
                    "converged; raise ais_steps (or ais_chains)", LikelihoodWarning, stacklevel=2)
        return self

    def _reverse_ais(self, n_chains, n_steps, random_state, rows=None):
        """Reverse AIS on this model's path from up to ``n_chains`` rows in working units (by
        default the kept training rows); changes no attribute."""
        seed = check_random_state(random_state if random_state is not None else self.random_state)
        generator = torch.Generator(device=self.device_).manual_seed(int(seed.randint(2**31 - 1)) + 13)
        rows = (self._bound_rows if rows is None else rows)[: int(n_chains or self.ais_chains)]
        dtype = next(self.module_.parameters()).dtype
        start = self._reverse_start(self._to_tensor(rows).to(dtype).reshape(len(rows), *self.module_.input_shape))
        n_steps = int(n_steps or self._resolved_ais_steps())
        # As many moves of the model itself as the run has steps bring the rows nearer to the
        # model's own samples, which the upper bound needs.
        return reverse_annealed_importance_sampling(
            self._annealing_path(), start, n_steps=n_steps, generator=generator, burn_in=n_steps
        )

    def _ais(self, n_chains, n_steps, random_state, keep_states=False):
        """One AIS run on this model's path; changes no attribute."""
        seed = check_random_state(random_state if random_state is not None else self.random_state)
        generator = torch.Generator(device=self.device_).manual_seed(int(seed.randint(2**31 - 1)) + 7)
        result = annealed_importance_sampling(
            self._annealing_path(),
            n_chains=int(n_chains or self.ais_chains),
            n_steps=int(n_steps or self._resolved_ais_steps()),
            generator=generator,
            keep_states=keep_states,
        )
        if not math.isfinite(result.log_z):
            raise FloatingPointError(
                f"the AIS estimate of log Z is {result.log_z}: the model's energies are not finite "
                "on the annealing path"
            )
        return result

    @staticmethod
    def _unreliable(result, bound) -> list:
        """What the library's own checks find wrong with an AIS estimate (empty: nothing)."""
        problems = []
        if bound is not None and result.log_z < bound:
            problems.append(
                f"the AIS estimate of log Z ({result.log_z:.2f}) is below a lower bound computed "
                f"from data rows ({bound:.2f}): its chains missed mass the model puts near "
                "the data, and score would be too high"
            )
        if result.ess < max(2.0, 0.05 * result.n_chains):
            problems.append(
                f"the AIS estimate of log Z rests on {result.ess:.1f} effective samples out of "
                f"{result.n_chains} chains: it is then biased low and its standard error understated"
            )
        return problems

    def _log_partition_lock(self) -> threading.Lock:
        with _LOCK_GUARD:
            lock = self.__dict__.get("_log_z_lock")
            if lock is None:
                lock = self.__dict__["_log_z_lock"] = threading.Lock()
            return lock

    def _on_demand_key(self) -> tuple:
        """What an on-demand estimate depends on besides the weights: a change runs it anew."""
        seed = self.random_state if self.random_state is None or isinstance(self.random_state, int) else None
        return (self._estimate_method(), int(self.ais_chains), self._resolved_ais_steps(), seed)

    def _on_demand_log_partition(self) -> float:
        """log Z for ``score_samples`` when none is stored: estimated once, kept privately.

        The kernel lower bound is centred on training rows (:meth:`_remember_bound_rows`), not
        on the rows being scored, so the verdict is the same whichever rows come first. A
        failure is kept too, so that scoring again does not rerun AIS, but only for the
        settings it was made with: new ``ais_chains``, ``ais_steps`` or ``random_state``
        (``set_params``) make the next score estimate again.
        """
        with self._log_partition_lock():
            key = self._on_demand_key()
            cached = getattr(self, "_log_partition_cache", None)
            if cached is None or cached[0] != key:
                if key[0] == "exact":
                    cached = (key, self._exact_log_partition(), None)
                else:
                    result = self._ais(None, None, None)
                    bound = self._kernel_lower_bound() if self._bound_applies else None
                    problems = self._unreliable(result, bound)
                    cached = (key, result.log_z, None) if not problems else (key, None, "; ".join(problems))
                self._log_partition_cache = cached
        (_, n_chains, n_steps, _), log_z, problem = cached
        if problem is not None:
            raise LikelihoodError(
                f"{type(self).__name__}.score_samples needs log Z, which this model has not stored "
                f"(log_partition={self.log_partition!r}), and the estimate made on demand "
                f"(AIS, {n_chains} chains, {n_steps} steps) is unreliable: {problem}. "
                "Call estimate_log_partition(n_steps=...) with a larger budget to store a public "
                "estimate (it warns while it is still unreliable), or set log_partition=None for "
                f"log-densities up to a constant.{self._likelihood_advice()}"
            )
        return log_z

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
        working units, minus the log-partition function, plus the log-Jacobian of the affine
        map to working units. log Z is ``log_partition_`` when one is stored (by ``fit`` or
        :meth:`estimate_log_partition`); otherwise it is estimated on the first call and kept
        privately (no public attribute changes), and :class:`LikelihoodError` is raised if
        that estimate is unreliable. With ``log_partition=None`` and nothing stored, the
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
        if self.log_partition_ is not None:
            return values - self.log_partition_
        if self.log_partition is None:
            return values
        return values - self._on_demand_log_partition()
