"""The scikit-learn shell shared by NNEFH, EBM and GRBM.

It validates input, maps data to the model's working units and back, converts between numpy and
torch, resolves the device and seeds, and hands the maths to the torch core (``skefh.nn``,
``skefh.samplers``, ``skefh.training``). Subclasses supply only what differs between the models:
the energy module, the sampler settings, the features ``transform`` returns.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from numbers import Integral, Real
from typing import Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..nn.base import module_lock, sampling_mode
from ..samplers import GibbsLangevinSettings
from ._likelihood import LikelihoodMixin
from ._persistence import PersistenceMixin
from ._resolve import ByImageSize, describe_image_shape, resolve_auto_params, resolve_device, resolve_image_shape
from ._sampling import SamplingMixin, seed_from
from ._scaling import check_magnitudes, fit_range_map
from ._training import TrainingMixin

__all__ = ["BaseEnergyEstimator"]

_FLOAT_DTYPES = [np.float64, np.float32]


class BaseEnergyEstimator(
    TrainingMixin, SamplingMixin, LikelihoodMixin, PersistenceMixin, TransformerMixin, DensityMixin, BaseEstimator
):
    """Shared implementation; see :class:`skefh.NNEFH` for the user-facing documentation.

    Where the public methods live, one mixin per capability:

    - ``fit``, ``partial_fit``, ``transform``, ``free_energy``, ``get_feature_names_out``:
      here;
    - ``sample``, ``sample_chains``, ``sampling_settings``: :class:`~._sampling.SamplingMixin`;
    - ``score``, ``score_samples``, ``estimate_log_partition``:
      :class:`~._likelihood.LikelihoodMixin`;
    - pickling and ``from_checkpoint``: :class:`~._persistence.PersistenceMixin`;
    - the trainer that ``fit`` and ``partial_fit`` run: :class:`~._training.TrainingMixin`.

    The models (``nnefh.py``, ``ebm.py``, ``grbm.py``) fill in the hooks below.
    """

    #: Constraints of the parameters every estimator has, merged into each estimator's own
    #: ``_parameter_constraints`` as scikit-learn merges a base class's
    #: (``{**BaseEnergyEstimator._parameter_constraints, ...}``). This class reads no other
    #: parameter by name: anything model-specific is reached through the hooks below.
    _parameter_constraints: dict = {
        "image_shape": [StrOptions({"auto"}), tuple, list, None],
        "scaling": [StrOptions({"auto", "whiten", "standardise"})],
        "langevin_steps": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "step_size": [Interval(Real, 0, None, closed="neither"), ByImageSize],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "optimizer": [StrOptions({"adam", "sgd"})],
        "lr_schedule": [StrOptions({"constant", "cosine", "linear", "auto"})],
        "data_noise": [Interval(Real, 0, None, closed="left"), ByImageSize],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "energy_l2": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": [Interval(Integral, -1, None, closed="left"), "boolean"],
        "checkpoint_path": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "on_divergence": [StrOptions({"raise", "restore"})],
        "callbacks": [list, tuple, None],
        "log_partition": [StrOptions({"auto", "ais", "exact"}), None],
        "ais_chains": [Interval(Integral, 1, None, closed="left")],
        "ais_steps": [Interval(Integral, 1, None, closed="left")],
    }

    #: Parameters whose default "auto" depends on the kind of data: ``{name: (for images, for
    #: tabular data)}``. Image models are sized for a CPU and trained on chains from noise; tabular ones are small, at
    #: temperature 1, with Metropolis-adjusted chains, so that a fit on a few thousand rows
    #: stays quick and ``sample`` draws from the density ``score`` measures.
    _auto_defaults: dict = {}

    def _resolve_params(self) -> dict:
        """The parameters as a fit uses them (``image_shape_`` must be resolved); a
        :class:`ByImageSize` value must resolve to a value its parameter accepts."""
        params = self.get_params(deep=False)
        resolved = resolve_auto_params(params, self._auto_defaults, self.image_shape_,
                                       getattr(self, "_n_fit_rows", None))
        ruled = [name for name, value in params.items() if isinstance(value, ByImageSize)]
        if ruled:
            validate_parameter_constraints(
                {name: [c for c in self._parameter_constraints[name] if c is not ByImageSize] for name in ruled},
                {name: resolved[name] for name in ruled},
                caller_name=f"{type(self).__name__} (a ByImageSize value resolved for these data)",
            )
        return resolved

    def _params_to_keep(self) -> dict:
        """The resolved parameters a fitted model keeps, without ``callbacks``: they act during
        ``fit`` only (read from ``callbacks`` itself), and a kept callback would travel in every
        pickle, which a callback class defined in a script could not be loaded from elsewhere."""
        params = self._resolve_params()
        params.pop("callbacks", None)
        return params

    #: Values ``features`` may take (each model's; the first is the default).
    _feature_options: tuple = ()

    # -- hooks for subclasses ---------------------------------------------------------------------
    def _build_module(self, input_shape: tuple, generator: torch.Generator):
        raise NotImplementedError

    def _sampler_settings(self, params: dict) -> GibbsLangevinSettings:
        """The sampler of training and ``sample`` for the parameter values ``params``."""
        raise NotImplementedError

    def _feature_tensor(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _n_transform_features(self) -> int:
        """Width of ``transform``'s output with the current ``features``."""
        raise NotImplementedError

    #: Which sampler states are negative samples: the final one, or every Gibbs round.
    _negative_samples = "last"

    def _finalise_samples(self, out: dict) -> torch.Tensor:
        """Turn a sampler's result into returned samples (GRBM: the conditional mean)."""
        return out["x"]

    # -- what the capability mixins read (their interface to the fitted state) -----------------
    def _trained_sampler_settings(self) -> GibbsLangevinSettings:
        """The sampler the model was last trained with (a pickle written before the trained
        parameters were stored: its parameters as they are)."""
        return self._sampler_settings(getattr(self, "_trained_params", None) or self.get_params(deep=False))

    def _output_dtype(self):
        """The dtype of the training data, which ``sample`` returns."""
        return self._fit_dtype

    def _fit_seed(self) -> int:
        """The integer seed the fit drew from ``random_state``; other streams derive from it."""
        return self._seed

    def _current_trainer_state(self) -> Optional[dict]:
        """The trainer's state: live during ``fit`` (a checkpoint callback), else as it ended."""
        trainer = getattr(self, "_live_trainer", None)
        return trainer.state_dict() if trainer is not None else self._trainer_state

    def _load_fit_state(self, seed: int, trainer_state: dict) -> None:
        """Restore a fit from its seed and trainer state (a checkpoint): weights, history, count."""
        self._seed = int(seed)
        self.module_.load_state_dict(trainer_state["model"])
        self._trainer_state = trainer_state
        self.history_ = list(trainer_state["history"])
        self.n_iter_ = int(trainer_state["n_updates"])

    def _replay_buffer_state(self):
        """The replay buffer's state dict (live during fit, else the fitted state), or None."""
        live = getattr(self, "_live_trainer", None)  # sampling from inside fit (a callback)
        if live is not None and getattr(live.negative_sampler, "buffer", None) is not None:
            return live.negative_sampler.buffer.state_dict()
        return ((getattr(self, "_trainer_state", None) or {}).get("sampler") or {}).get("replay_buffer")

    # -- shared helpers --------------------------------------------------------------------------
    #: What ``scaling="auto"`` means for tabular data.
    _auto_tabular_scaling = "whiten"

    def _range_map_kind(self) -> str:
        """The data map of a fit: images their pixel range, tabular rows ``scaling``."""
        if self.image_shape_ is not None:
            if self.scaling != "auto":
                raise ValueError(
                    f"scaling={self.scaling!r} applies to tabular data; images map their observed pixel range "
                    "to [-1, 1] (leave scaling='auto', or set image_shape=None to treat the rows as tabular)")
            return "image"
        return self._auto_tabular_scaling if self.scaling == "auto" else self.scaling

    def _input_shape(self) -> tuple:
        return self.image_shape_ if self.image_shape_ is not None else (self.n_features_in_,)

    def _to_tensor(self, X_working: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(X_working)).to(self.device_)
        return x.reshape(-1, *self._input_shape())

    def _to_numpy(self, x: torch.Tensor, dtype) -> np.ndarray:
        return x.detach().reshape(x.shape[0], -1).float().cpu().numpy().astype(dtype, copy=False)

    def _chunks(self, X_working: np.ndarray, size: int = 1024):
        for start in range(0, X_working.shape[0], size):
            yield self._to_tensor(X_working[start : start + size])

    #: Rows per forward pass of ``transform``; every pass has exactly this many (see _map_rows).
    _transform_chunk = 256

    def _map_rows(self, X_working: np.ndarray, fn, dtype) -> np.ndarray:
        """``fn`` over fixed-size chunks of rows, the last one padded with zero rows.

        The float32 kernels of a convolution or matrix product are chosen by the batch size, and
        different kernels round differently: with a fixed chunk size a row's features do not
        depend on how many other rows were passed with it.
        """
        size = self._transform_chunk
        parts = []
        for start in range(0, X_working.shape[0], size):
            chunk = X_working[start : start + size]
            n_rows = chunk.shape[0]
            if n_rows < size:
                chunk = np.concatenate([chunk, np.zeros((size - n_rows, chunk.shape[1]), chunk.dtype)])
            parts.append(self._to_numpy(fn(self._to_tensor(chunk))[:n_rows], dtype))
        return np.concatenate(parts, axis=0)

    def _check_features(self):
        if self.features not in self._feature_options:
            raise ValueError(
                f"features must be one of {self._feature_options} for {type(self).__name__}, "
                f"got {self.features!r}"
            )

    def _validate_input(self, X, reset: bool) -> np.ndarray:
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=reset)
        check_magnitudes(X, None if reset else getattr(self, "range_map_", None))
        return X

    # -- initialisation ----------------------------------------------------------------------------
    def _initialise(self, X: np.ndarray) -> None:
        """Set every fitted attribute that does not depend on training."""
        self._check_features()
        named = getattr(self, "feature_names_in_", None) is not None  # set by validate_data
        self.image_shape_ = resolve_image_shape(self.image_shape, X.shape[1], has_feature_names=named)
        if self.verbose > 0 and isinstance(self.image_shape, str):
            print(f"[{type(self).__name__}] {describe_image_shape(self.image_shape_, X.shape[1], named)}")
        self.device_ = resolve_device(self.device)
        self.range_map_ = fit_range_map(X, self._range_map_kind())
        self._n_fit_rows = X.shape[0]  # read by tabular "auto" rules (training length)
        # What the module, the optimiser and the sampler of training and ``sample`` read: the
        # parameters as the model was last trained with, "auto" resolved (scikit-learn's rule: a
        # parameter set later acts at the next fit).
        self._trained_params = self._params_to_keep()
        seed = seed_from(self.random_state)
        init_generator = torch.Generator().manual_seed(seed)
        module = self._build_module(self._input_shape(), init_generator).to(self.device_)
        if self.image_shape_ is not None:
            # channels_last gives faster oneDNN kernels for the conv net's input gradients on
            # the CPU (see the performance page of the docs).
            module = module.to(memory_format=torch.channels_last)
        self.module_ = module
        # A refit that fails part-way must not leave the previous model's log Z beside the new
        # weights.
        self._invalidate_log_partition()
        self._fit_dtype = X.dtype
        self.n_iter_ = 0
        self.history_ = []
        self._trainer_state = None
        self._seed = seed

    # -- scikit-learn API -------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to ``X`` by contrastive maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; images as rows (see ``image_shape``), in any numeric range.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = self._validate_input(X, reset=True)
        self._initialise(X)
        self._check_log_partition()  # before any update: an impossible request fails now
        self._remember_bound_rows(X)
        self._remember_training_data(X)
        remaining = self._resume_from_checkpoint(X)
        if remaining > 0:
            self._run(X, remaining, self._trained_params["lr_schedule"])
        self._after_fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run about one epoch of updates (``ceil(n_samples / batch_size)``) on ``X``.

        The first call initialises the model (and the data scaling, from this ``X``); later
        calls continue with the same optimizer state. Each call reads the training parameters
        as they are then (``learning_rate``, ``weight_decay``, the training sampler's
        ``step_size``, ``replay_reinit``, ...; changed with ``set_params``); parameters that
        define the model (its temperature, its network) take effect at the next ``fit``. The
        learning rate is the constant ``learning_rate``: ``lr_schedule`` needs a known horizon
        and applies to ``fit`` only, so after a cosine ``fit`` that ended near 0 the updates run
        at the full ``learning_rate`` again (set a lower one to continue annealed).
        ``log_partition_`` is reset to None and not re-estimated here (that would cost more
        than the updates); ``score`` and ``score_samples`` estimate log Z privately when they
        are first called after (see ``log_partition``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        first = not hasattr(self, "module_")
        X = self._validate_input(X, reset=first)
        if first:
            self._initialise(X)
        self._check_log_partition()
        self._remember_bound_rows(X)
        n_updates = max(math.ceil(X.shape[0] / self._resolve_params()["batch_size"]), 1)
        self._remember_training_data(None)
        self._run(X, n_updates, "constant")
        self._invalidate_log_partition()
        return self

    def transform(self, X):
        """Features of ``X`` (see the ``features`` parameter).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            In the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        self._check_features()
        working = self.range_map_.to_working(X)
        with sampling_mode(self.module_), torch.inference_mode():
            return self._map_rows(working, self._feature_tensor, X.dtype)

    def free_energy(self, X):
        """Free energy F(x) of each row, in the model's working units (the EBM: its energy E(x)).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Computed in float64.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        working = self.range_map_.to_working(X).astype(np.float64)
        # Float64 throughout: a log-density summed over thousands of terms deserves it, and it
        # makes each row's value independent of which other rows share its batch.
        with module_lock(self.module_):  # not in the middle of another thread's update
            module = copy.deepcopy(self.module_).double()
        with sampling_mode(module), torch.inference_mode():
            parts = [module.free_energy(x).cpu().numpy() for x in self._chunks(working)]
        return np.concatenate(parts)

    def _compiled(self):
        """A context in which the model runs compiled, if the estimator asks for it (not here)."""
        return contextlib.nullcontext()

    def get_feature_names_out(self, input_features=None):
        """Names of the ``transform`` outputs, e.g. ``["nnefh_u0", "nnefh_u1", ...]``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked as scikit-learn checks it (its length must be ``n_features_in_``, and its
            names ``feature_names_in_`` when X had column names), then unused: the outputs are
            learned features, not functions of single inputs.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        self._check_features()
        prefix = f"{type(self).__name__.lower()}_{self.features.lower()}"
        # The width follows ``features`` as set now, as ``transform`` does.
        return np.asarray([f"{prefix}{i}" for i in range(self._n_transform_features())], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        return tags
