"""Pickling across devices, and checkpoints that resume a fit exactly.

A model fitted on a GPU pickles its tensors on the CPU and re-resolves ``device`` when loaded,
so it unpickles on a CPU-only machine (with a :class:`DeviceWarning` if CUDA was explicitly
requested). Checkpoints hold tensors and plain Python only and load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from pathlib import Path

import numpy as np
import torch

from ..training.checkpoint import CheckpointError, load_checkpoint
from ._resolve import ByImageSize, resolve_device
from ._scaling import RangeMap

__all__ = ["PersistenceMixin"]

# Parameters that do not change the training trajectory: they may differ on resume.
_RESUME_FREE_PARAMS = {
    "verbose", "max_iter", "checkpoint_path", "checkpoint_every", "callbacks", "device",
    "on_divergence", "features", "log_partition", "ais_chains", "ais_steps",
    "sample_mean",
}

# What a checkpoint or pickle written before a parameter existed ran with, where that is not
# the parameter's default: such a model trained without a replay buffer and with unbounded
# chains.
_VALUE_BEFORE_IT_EXISTED = {
    "replay_buffer": 0, "replay_reinit": 0.05, "chain_bounds": None, "mode_jumps": False, "scaling": "standardise",
    "gradient_penalty": 0.0,
}


def data_fingerprint(X: np.ndarray) -> str:
    """A digest of the training rows, so that a checkpoint is never resumed on other data."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((X.shape, str(X.dtype))).encode())
    digest.update(np.ascontiguousarray(X).data)
    return digest.hexdigest()


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class _ModuleWeights:
    """A module pickled as its ``state_dict``: torch pickles a parametrized module (spectral
    normalisation) no other way. Unpickling rebuilds the module from the estimator's parameters
    and loads the weights into it."""

    def __init__(self, module: torch.nn.Module):
        self.state_dict = module.state_dict()
        self.training = module.training


def _is_parametrized(module: torch.nn.Module) -> bool:
    return any(torch.nn.utils.parametrize.is_parametrized(m) for m in module.modules())


class _NotPlain(str):
    """Marks a parameter stored by name only (a callable, a callback list)."""


#: How a checkpoint records a :class:`ByImageSize` rule: ``{"ByImageSize": [small, large]}``,
#: plain values that ``torch.load(weights_only=True)`` reads and ``from_checkpoint`` rebuilds.
_RULE_KEY = "ByImageSize"
#: What checkpoints written before 0.24 recorded for a rule (its class's name, no values).
_LEGACY_RULE = "skefh.estimators._resolve.ByImageSize"


def _plain(value):
    """A parameter value as plain Python, for the checkpoint's record of the configuration."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, ByImageSize):
        return {_RULE_KEY: [value.small, value.large]}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, list)):
        items = [_plain(v) for v in value]
        if any(isinstance(v, _NotPlain) for v in items):
            return _NotPlain(repr([str(v) for v in items]))
        return items
    if isinstance(value, torch.device):
        return str(value)
    name = getattr(value, "__qualname__", None) or type(value).__qualname__
    return _NotPlain(f"{getattr(value, '__module__', '')}.{name}")


def _plain_params(params: dict, skip=()) -> dict:
    return {k: str(v) if isinstance(v, _NotPlain) else v
            for k, v in ((k, _plain(v)) for k, v in params.items() if k not in skip)}


class PersistenceMixin:
    """``__getstate__``/``__setstate__`` and checkpoint support for the estimators.

    A pickle holds the fitted model (weights, data scaling, replay buffer, history, random
    streams) but not the optimizer's moment estimates, which would triple its size: after
    unpickling, ``partial_fit`` continues from the same weights with a fresh optimizer. A
    checkpoint (``checkpoint_path``) holds everything, and a fit resumed from it is the fit
    that was interrupted.
    """

    # -- pickling ---------------------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state.pop("_live_trainer", None)
        state.pop("_log_z_lock", None)  # a lock does not pickle; the copy makes its own
        if "module_" in state:
            module = copy.deepcopy(state["module_"]).cpu()
            state["module_"] = _ModuleWeights(module) if _is_parametrized(module) else module
            state["device_"] = "cpu"
        if state.get("_trainer_state") is not None:
            # The weights are already in module_: do not store them twice. The optimizer's
            # moment estimates (twice the weights' size) are left out: a pickle is the fitted
            # model; a fit that must resume exactly writes a checkpoint (``checkpoint_path``).
            state["_trainer_state"] = _to_cpu({**state["_trainer_state"], "model": None, "optimizer": None})
        return state

    def __setstate__(self, state):
        # A pickle written before a parameter existed ran at the value it had then.
        missing = {
            name: _VALUE_BEFORE_IT_EXISTED.get(name, param.default)
            for name, param in inspect.signature(type(self).__init__).parameters.items()
            if name != "self" and name not in state and param.default is not inspect.Parameter.empty
        }
        state = {**state, **missing}
        device = resolve_device(state.get("device", "auto")) if "module_" in state else None
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)
        if device is not None:
            if isinstance(self.module_, _ModuleWeights):
                self.module_ = self._rebuilt_module(self.module_)
                # What a module holds outside its state_dict (the EBM's support box) comes from
                # the estimator's fitted state, as a checkpoint restores it.
                self._load_extra_state(self._extra_state())
            self.device_ = device
            self.module_ = self.module_.to(device)

    def _rebuilt_module(self, weights: _ModuleWeights) -> torch.nn.Module:
        """The module of this fitted estimator, built afresh with ``weights`` loaded into it."""
        # The initial weights drawn here are overwritten; the generator only has to exist.
        module = self._build_module(self._input_shape(), torch.Generator().manual_seed(0))
        if self.image_shape_ is not None:
            module = module.to(memory_format=torch.channels_last)  # as _initialise builds it
        module.load_state_dict(weights.state_dict)
        return module.train(weights.training)

    # -- checkpoints ------------------------------------------------------------------------------
    def _remember_training_data(self, X) -> None:
        """Fingerprint the rows ``fit`` trains on (with a ``checkpoint_path``), so that a
        checkpoint is never resumed on other data; None forgets it (``partial_fit``)."""
        self._data_fingerprint = (
            data_fingerprint(X) if X is not None and self.checkpoint_path is not None else None
        )

    def _comparable_params(self) -> dict:
        free = set(_RESUME_FREE_PARAMS)
        if self._trained_params["lr_schedule"] != "constant":
            free.discard("max_iter")  # it sets the schedule's horizon, hence the trajectory
        return _plain_params(self.get_params(deep=False), skip=free)

    def _checkpoint_state(self) -> dict:
        """What a checkpoint holds: configuration, data scaling, and the trainer state."""
        return {
            "estimator": type(self).__name__,
            # Only parameters that are plain values (and ByImageSize rules, recorded as plain
            # values) can be restored by from_checkpoint.
            "params": {
                k: v for k, v in ((k, _plain(v)) for k, v in self.get_params(deep=False).items())
                if not isinstance(v, _NotPlain)
            },
            "comparable_params": self._comparable_params(),
            "n_features_in": int(self.n_features_in_),
            # Column names (a DataFrame): from_checkpoint restores them, and "auto" reads named
            # columns as tabular, so they also decide the network rebuilt there.
            "feature_names_in": (
                [str(name) for name in self.feature_names_in_] if hasattr(self, "feature_names_in_") else None
            ),
            "image_shape": None if self.image_shape_ is None else list(self.image_shape_),
            "fit_dtype": str(np.dtype(self._output_dtype())),
            "range_map": {
                "offset": torch.from_numpy(self.range_map_.offset),
                "scale": torch.from_numpy(self.range_map_.scale),
                "kind": self.range_map_.kind,
                "rotation": None if self.range_map_.rotation is None else torch.from_numpy(self.range_map_.rotation),
            },
            "seed": int(self._fit_seed()),
            # Tabular "auto" training lengths count passes over the rows (NN-EFH's max_iter).
            "n_fit_rows": getattr(self, "_n_fit_rows", None),
            "data_fingerprint": getattr(self, "_data_fingerprint", None),
            "extra": _to_cpu(self._extra_state()),
            "trainer": _to_cpu(self._current_trainer_state()),
        }

    def _extra_state(self) -> dict:
        """Model-specific fitted state for checkpoints (tensors and plain values)."""
        return {}

    def _load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`_extra_state` saved."""

    def _check_checkpoint(self, state: dict, path) -> None:
        if state.get("estimator") != type(self).__name__:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds a {state.get('estimator')} model, not a "
                f"{type(self).__name__}"
            )
        ours, theirs = self._comparable_params(), dict(state.get("comparable_params", {}))
        # A parameter added after the checkpoint was written ran at its default then (or at
        # the value recorded for it, where the default has changed since).
        signature = inspect.signature(type(self).__init__).parameters
        for k in set(ours) - set(theirs):
            if k in _VALUE_BEFORE_IT_EXISTED:
                theirs[k] = _VALUE_BEFORE_IT_EXISTED[k]
            elif k in signature and signature[k].default is not inspect.Parameter.empty:
                theirs[k] = _plain_params({k: signature[k].default})[k]
        for k, value in ours.items():
            if isinstance(value, dict) and _RULE_KEY in value and theirs.get(k) == _LEGACY_RULE:
                theirs[k] = value  # a rule whose values the old checkpoint did not record
        changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        if changed:
            detail = ", ".join(f"{k}: {theirs.get(k)!r} -> {ours.get(k)!r}" for k in changed)
            raise CheckpointError(
                f"checkpoint {str(path)!r} was written with other parameters ({detail}); "
                "use another checkpoint_path or delete the file to start afresh"
            )
        if state.get("n_features_in") != self.n_features_in_:
            raise CheckpointError(
                f"checkpoint {str(path)!r} was trained on {state.get('n_features_in')} features, "
                f"X has {self.n_features_in_}"
            )
        theirs = state.get("data_fingerprint")
        if theirs is not None and theirs != getattr(self, "_data_fingerprint", None):
            raise CheckpointError(
                f"checkpoint {str(path)!r} was written by a fit on other data than this X; use "
                "another checkpoint_path (e.g. one per fold) or delete the file to start afresh"
            )

    def _restore_from_state(self, state: dict) -> None:
        maps = state["range_map"]
        rotation = maps.get("rotation")  # absent from checkpoints written before 0.8
        self.range_map_ = RangeMap(maps["offset"].numpy(), maps["scale"].numpy(), maps["kind"],
                                   None if rotation is None else rotation.numpy())
        self._data_fingerprint = state.get("data_fingerprint")
        if state.get("n_fit_rows") is not None:  # absent from checkpoints written before 0.7
            self._n_fit_rows = int(state["n_fit_rows"])
        self._trained_params = self._params_to_keep()
        self._load_extra_state(state.get("extra", {}))
        self._load_fit_state(state["seed"], state["trainer"])

    def _resume_from_checkpoint(self, X) -> int:
        """Load ``checkpoint_path`` if it exists; return how many updates remain to run."""
        path = self.checkpoint_path
        if path is None or not Path(path).exists():
            return self._trained_params["max_iter"]
        state = load_checkpoint(path)
        self._check_checkpoint(state, path)
        self._restore_from_state(state)
        return max(self._trained_params["max_iter"] - self.n_iter_, 0)

    @classmethod
    def from_checkpoint(cls, path, **overrides):
        """Rebuild a fitted estimator from a checkpoint file.

        Parameters
        ----------
        path : str or path-like
            A checkpoint written during ``fit`` (``checkpoint_path``).
        **overrides
            Parameters to change, e.g. ``device="cpu"`` or ``verbose=1``.

        Returns
        -------
        estimator
            Fitted: ``transform``, ``sample`` and ``score_samples`` work; ``fit`` with the same
            ``checkpoint_path`` resumes the run.
        """
        state = load_checkpoint(path)
        if state.get("estimator") != cls.__name__:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds a {state.get('estimator')} model, not a {cls.__name__}"
            )
        params = dict(state["params"])
        for key in ("image_shape",):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        for key, value in params.items():
            if isinstance(value, dict) and set(value) == {_RULE_KEY}:
                params[key] = ByImageSize(*value[_RULE_KEY])
        valid = cls().get_params(deep=False)
        params = {k: v for k, v in params.items() if k in valid}
        params.update(overrides)
        est = cls(**params)
        dummy = np.zeros((1, int(state["n_features_in"])), dtype=np.dtype(state["fit_dtype"]))
        est._validate_input(dummy, reset=True)
        names = state.get("feature_names_in")  # absent from checkpoints written before it was stored
        if names is not None:
            est.feature_names_in_ = np.asarray(names, dtype=object)
        est._initialise(dummy)
        est._n_fit_rows = None  # the dummy row says nothing of the training rows
        est._restore_from_state(state)
        est._after_restore()
        return est

    def _after_restore(self) -> None:
        """Hook run after :meth:`from_checkpoint` (subclasses recompute cached quantities)."""
