"""``sample``, ``sample_chains`` and ``sampling_settings``: the estimators' generation API.

A mixin of :class:`skefh.estimators._base.BaseEnergyEstimator`. It reads the public fitted
attributes (``module_``, ``device_``, ``range_map_``) and, for everything else, the methods the
base class declares for it (``_trained_sampler_settings``, ``_replay_buffer_state``,
``_output_dtype``, ``_finalise_samples``, ``_compiled``, the numpy/torch conversions), never
another class's private attributes.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..nn.base import module_lock, sampling_mode
from ..samplers import gibbs_langevin

__all__ = ["SamplingMixin", "seed_from"]

_INT32_MAX = np.iinfo(np.int32).max


def seed_from(random_state) -> int:
    """An int seed for torch generators from anything ``check_random_state`` accepts."""
    return int(check_random_state(random_state).randint(_INT32_MAX))


class SamplingMixin:
    """Generation from a fitted estimator (Gibbs-Langevin from noise, the replay buffer, or
    Algorithm 2)."""

    def sample(self, n_samples=1, X=None, *, init="auto", gibbs_steps=None, langevin_steps=None,
               step_size=None, temperature=None, random_state=None):
        """Generate samples; by default with the training sampler's settings.

        The sampler is the one the model was last trained with (``fit`` or ``partial_fit``):
        ``temperature``, ``step_size``, ``latent_temperature``, ``chain_bounds`` and the step
        counts changed with ``set_params`` afterwards take effect at the next fit, as
        scikit-learn's parameters do. This method's keyword arguments change the sampler for
        one call.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (ignored when ``X`` is given: one sample per row of ``X``).
        X : array-like of shape (n, n_features), optional
            Algorithm 2 of the paper: the latent chain starts from the posterior of these rows.
            Without ``X`` the latent starts from the posterior of the visible chain's start.
            Models without a latent layer (the EBM) raise ``ValueError`` when given ``X``.
        init : {"auto", "noise", "buffer"}, default="auto"
            Where the visible chains start: N(0, I) in working units (the paper's samplers), or
            the states of the training chains' replay buffer (persistent chains; needs a model
            fitted with ``replay_buffer > 0``), which have already run for many updates. "auto"
            is "buffer" for a model fitted with a replay buffer and "noise" otherwise: a model
            trained with persistent chains is trained to keep them near the data, not to carry
            a short run from noise there (on Fashion-MNIST its samples from noise are textures
            or garments of a few classes; see the generation page of the docs). A model trained
            on chains from noise (``replay_buffer=0``, the ``cpu-short-run`` preset) generates
            from noise.
        gibbs_steps, langevin_steps : int, optional
            Sampling budget: Gibbs rounds and Langevin steps per round (the EBM has one round
            unless ``gibbs_steps`` asks for more blocks). Default: the training sampler's, with
            a longer budget for two kinds of NN-EFH or EBM. Trained with Metropolis-adjusted
            chains (``metropolis=True``, the tabular default): twenty times the training rounds,
            since those chains leave the model's density invariant and only get nearer to it
            with more steps. Trained on unadjusted chains restarted from noise
            (``replay_buffer=0``, the image default) and started from noise: one and a half
            times the training steps (half as many Gibbs rounds again where the training rounds
            are even, otherwise half as many Langevin steps again per round), as such models
            generate best a little beyond their training budget and worse with many times it
            (see the generation page).
        step_size : float, optional
            Langevin step size; default the training sampler's.
        temperature : float, optional
            Sample the tempered density ``exp(-E / temperature)`` in both halves of the chain
            instead of the model's own temperature (lower gives sharper, less varied samples).
        random_state : int, RandomState instance or None, default=None
            Seed for this call; defaults to the estimator's ``random_state``.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            In the units and dtype of the training data (of ``X`` when given).
        """
        check_is_fitted(self)
        with module_lock(self.module_):  # the same weights from the first step to the result
            out, dtype = self._draw(n_samples, X, random_state, keep="last", init=init, gibbs_steps=gibbs_steps,
                                    langevin_steps=langevin_steps, step_size=step_size, temperature=temperature)
            with sampling_mode(self.module_), torch.no_grad():
                samples = self._finalise_samples(out)
        return self.range_map_.to_data(self._to_numpy(samples, np.float64), dtype)

    def sampling_settings(self, gibbs_steps=None, langevin_steps=None, step_size=None, temperature=None,
                          init=None):
        """The sampler settings :meth:`sample` uses with these arguments.

        Without arguments: the settings of the training sampler the model was last trained
        with (not parameters set since; they act at the next fit).

        Parameters
        ----------
        gibbs_steps, langevin_steps, step_size, temperature : optional
            As in :meth:`sample`; None keeps the training sampler's value.
        init : {"auto", "noise", "buffer"} or None, default=None
            As in :meth:`sample`: without ``gibbs_steps``, the Gibbs rounds that :meth:`sample`
            runs by default from that start (see its ``gibbs_steps``). None: the training
            sampler's rounds.

        Returns
        -------
        skefh.samplers.GibbsLangevinSettings
        """
        check_is_fitted(self)
        settings = self._trained_sampler_settings()
        if init not in (None, "auto", "noise", "buffer"):
            raise ValueError(f"init must be None, 'auto', 'noise' or 'buffer', got {init!r}")
        if init == "auto":
            init = "buffer" if self._has_replay_states() else "noise"
        if init is not None and gibbs_steps is None:
            gibbs_steps, default_steps = self._default_budget(settings, init)
            if langevin_steps is None:
                langevin_steps = default_steps
        changes = {}
        for name, field, value in (("gibbs_steps", "n_gibbs", gibbs_steps),
                                   ("langevin_steps", "n_langevin", langevin_steps)):
            if value is not None:
                if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"{name} must be a positive integer, got {value!r}")
                changes[field] = int(value)
        for name, value in (("step_size", step_size), ("temperature", temperature)):
            if value is not None:
                if not isinstance(value, Real) or isinstance(value, bool) or not value > 0:
                    raise ValueError(f"{name} must be a positive number, got {value!r}")
                changes[name] = float(value)
        if temperature is not None and settings.latent_temperature is not None:
            changes["latent_temperature"] = float(temperature)  # one density at the asked temperature
        return settings.with_(**changes)

    def _default_budget(self, settings, init: str) -> tuple:
        """The Gibbs rounds and Langevin steps per round that ``sample`` runs by default from
        ``init`` ("noise" or "buffer"), given the training sampler's ``settings``: the training
        budget here; see the NN-EFH's and EBM's."""
        return settings.n_gibbs, settings.n_langevin

    def _has_replay_states(self) -> bool:
        buffer = self._replay_buffer_state()
        return buffer is not None and buffer.get("states") is not None and len(buffer["states"]) > 0

    def _replay_states(self) -> torch.Tensor:
        buffer = self._replay_buffer_state()
        if buffer is None or buffer.get("states") is None:
            raise ValueError(
                f"init='buffer' needs a model fitted with a replay buffer; this {type(self).__name__} "
                "has none (set replay_buffer > 0 before fit)"
            )
        states, written = buffer["states"], buffer.get("written")
        if written is not None and bool(written.any()):
            states = states[written.to(states.device)]  # rows some chain has visited
        return states

    def _draw(self, n_samples, X, random_state, keep: str, init: str = "noise", **budget):
        """Validate the sampling arguments and run the sampler; return its dict and out dtype."""
        check_is_fitted(self)
        if X is not None and not self.module_.has_latent:
            name = type(self).__name__
            raise ValueError(
                f"{name} has no latent layer: sample(X=...) starts the latent chain from the posterior "
                f"of X (Algorithm 2), which an {name} does not have. Call sample(n_samples) without X."
            )
        if init not in ("auto", "noise", "buffer"):
            raise ValueError(f"init must be 'auto', 'noise' or 'buffer', got {init!r}")
        if init == "auto":
            init = "buffer" if self._has_replay_states() else "noise"
        seed = seed_from(random_state if random_state is not None else self.random_state)
        generator = torch.Generator(device=self.device_).manual_seed(seed)
        settings = self.sampling_settings(init=init, **budget)
        dtype = self._output_dtype()
        if X is not None:
            X = self._validate_input(X, reset=False)
            dtype = X.dtype
            x_data = self._to_tensor(self.range_map_.to_working(X))
            n_samples = x_data.shape[0]
        elif not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        n_samples = int(n_samples)
        model = self.module_
        param_dtype = next(model.parameters()).dtype
        if init == "buffer":
            states = self._replay_states()
            rows = torch.randperm(len(states), generator=torch.Generator().manual_seed(seed))
            rows = rows[:n_samples] if n_samples <= len(states) else torch.randint(
                len(states), (n_samples,), generator=torch.Generator().manual_seed(seed))
            x0 = states[rows].to(device=self.device_, dtype=param_dtype).reshape(n_samples, *model.input_shape)
        else:
            x0 = torch.randn((n_samples, *model.input_shape), generator=generator, device=self.device_,
                             dtype=param_dtype)
        z0 = None
        if X is not None and model.has_latent:
            with sampling_mode(model), torch.no_grad():
                z0 = model.sample_latent(x_data.to(param_dtype), generator, settings.temperatures(model)[1])
        with self._compiled():
            out = gibbs_langevin(model, x0, z0, settings, generator=generator, keep=keep)
        out["x0"] = x0
        return out, dtype

    def sample_chains(self, n_samples=1, X=None, *, init="auto", gibbs_steps=None, langevin_steps=None,
                      step_size=None, temperature=None, random_state=None):
        """Like :meth:`sample`, but return the chain after every Gibbs round (Fig. 5a).

        Parameters
        ----------
        n_samples : int, default=1
        X : array-like of shape (n, n_features), optional
            Start the latent chain from the posterior of these rows (Algorithm 2); not for
            models without a latent layer (the EBM raises ``ValueError``).
        init, gibbs_steps, langevin_steps, step_size, temperature
            As in :meth:`sample`.
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        ndarray of shape (n_samples, gibbs_steps + 1, n_features)
            Column 0 is the visible chain's starting noise, column m the visible state after
            Gibbs round m (for the GRBM with ``sample_mean=True`` the conditional mean), in the
            units of the training data.
        """
        check_is_fitted(self)
        with module_lock(self.module_):
            out, dtype = self._draw(n_samples, X, random_state, keep="all", init=init, gibbs_steps=gibbs_steps,
                                    langevin_steps=langevin_steps, step_size=step_size, temperature=temperature)
            with sampling_mode(self.module_), torch.no_grad():
                states = [out["x0"]] + [
                    self._finalise_samples({"x": x, "z": z}) for x, z in zip(out["xs"], out["zs"])
                ]
        frames = [self.range_map_.to_data(self._to_numpy(x, np.float64), dtype) for x in states]
        return np.stack(frames, axis=1)
