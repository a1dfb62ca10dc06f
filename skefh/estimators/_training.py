"""Training of the estimators: the contrastive trainer a ``fit`` or ``partial_fit`` runs.

One mixin, read by :class:`~._base.BaseEnergyEstimator`: it builds the training sampler, the
optimiser and the callbacks (divergence check, checkpoints, progress) from the estimator's
parameters, and runs the updates under the model's lock. The hooks at the top are what the
models override (where their training chains start, a jump move, extra trainer options).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ..nn.base import module_lock
from ..samplers import TrainingSampler
from ..training import Checkpoint, ContrastiveTrainer, DataCentring, DivergenceMonitor, DurationNotice, ProgressBar

__all__ = ["TrainingMixin"]


class TrainingMixin:
    """The training loop of an estimator (needs the fitted state of ``BaseEnergyEstimator``)."""

    # -- hooks for the models ------------------------------------------------------------------
    def _negative_data_fraction(self) -> float:
        """Fraction of training chains whose latent starts from the data posterior (none: noise)."""
        return 0.0

    def _replay_buffer(self):
        """The replay buffer of the training chains, or None (every chain starts from noise)."""
        return None

    def _training_jump(self):
        """A mode-jumping move for the training chains (:class:`~skefh.samplers.KernelJump`), or
        None."""
        return None

    def _trainer_options(self) -> dict:
        """Extra keyword arguments of :class:`ContrastiveTrainer` (overridden per model)."""
        return {}

    def _training_callbacks(self) -> list:
        """Callbacks a model's own parameters add to the trainer (before the user's)."""
        return []

    # -- the trainer ---------------------------------------------------------------------------
    def _optimizer(self, params):
        lr = self._trained_params["learning_rate"]
        if self.optimizer == "adam":
            return torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=lr, weight_decay=self.weight_decay)

    def _chain_limit(self) -> float:
        """Largest sane |x| of the sampler's chains, in working units (data in about [-1, 1])."""
        return 100.0

    #: With Metropolis-adjusted chains, "auto" widens an image's box by this fraction of its width
    #: on each side: the box is then the support of the scored density, and held-out images a
    #: little beyond the training images' range must not score -inf.
    _density_box_margin = 0.05

    def _chain_box(self, bounds, metropolis: bool = False) -> Optional[tuple]:
        """The box of a ``chain_bounds`` value in working units, as the sampler's ``bounds``, or None."""
        if bounds is None:
            return None
        if isinstance(bounds, str):  # "auto": the range map sends an image's observed range to [-1, 1]
            if self.image_shape_ is None:
                return None
            edge = 1.0 + 2.0 * self._density_box_margin if metropolis else 1.0
            return (-edge, edge)
        if not self.range_map_.per_feature:
            raise ValueError(
                f"chain_bounds={bounds!r} is a box on each feature, and whitened data have no per-feature working "
                "units; set scaling='standardise' to bound the chains, or chain_bounds=None")
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"chain_bounds must be 'auto', None or a pair of numbers (low, high), got {bounds!r}")
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"chain_bounds must be finite with low < high, got {bounds!r}")
        n = self.n_features_in_
        box = self.range_map_.to_working(np.array([[low] * n, [high] * n]))  # its scales are positive
        return tuple(torch.as_tensor(b, device=self.device_).reshape(self._input_shape()) for b in box)

    def _divergence_advice(self) -> str:
        return (
            f"Try a lower learning_rate (now {self._trained_params['learning_rate']:g}), more data_noise (now "
            f"{self._trained_params['data_noise']:g}), gradient clipping (max_grad_norm, now {self.max_grad_norm}), "
            f"an energy penalty (energy_l2, now {self._trained_params['energy_l2']:g})"
            + (f", a larger gradient penalty (gradient_penalty, now {self._trained_params['gradient_penalty']:g})"
               if "gradient_penalty" in self._trained_params else "")
            + (", or on_divergence='restore'." if self.on_divergence == "raise" else ".")
        )

    def _callbacks(self, n_updates: int, is_main: bool, rows: torch.Tensor) -> list:
        # Order matters: the divergence check runs before a checkpoint could save a bad state,
        # and the data centring before the checkpoint's last save. Every process centres on the
        # same rows (all of them, not its shard), so that the copies stay equal.
        callbacks = [
            DivergenceMonitor(
                chain_limit=self._chain_limit(),
                on_divergence=self.on_divergence,
                advice=self._divergence_advice(),
                checkpoint_path=None if self.checkpoint_path is None else str(self.checkpoint_path),
            ),
            DataCentring(lambda: self._centring_rows(rows).split(self._transform_chunk)),
        ]
        if self.checkpoint_path is not None:
            callbacks.append(
                Checkpoint(self.checkpoint_path, self.checkpoint_every, self._checkpoint_state, is_main)
            )
        if self.verbose > 0 and is_main:
            callbacks.append(ProgressBar(n_updates, verbose=int(self.verbose), desc=type(self).__name__))
        elif self.verbose == 0 and is_main:
            callbacks.append(DurationNotice(n_updates, desc=type(self).__name__))
        callbacks.extend(self._training_callbacks())
        callbacks.extend(self.callbacks or ())
        return callbacks

    def _make_trainer(self, total_updates: int, n_updates: int, lr_schedule: str,
                      rows: torch.Tensor) -> ContrastiveTrainer:
        settings = self._sampler_settings(self._trained_params)
        negative_sampler = TrainingSampler(
            settings,
            data_fraction=self._negative_data_fraction(),
            keep=self._negative_samples,
            buffer=self._replay_buffer(),
            jump=self._training_jump(),
        )

        from ..training.distributed import distributed_context

        ddp = distributed_context(self.module_, self.device_)
        generator = torch.Generator(device=self.device_).manual_seed(self._seed + 1 + ddp.rank)
        trainer = ContrastiveTrainer(
            self.module_,
            negative_sampler,
            self._optimizer(self.module_.parameters()),
            generator=generator,
            data_generator=torch.Generator().manual_seed(self._seed + 2),
            data_noise=self._trained_params["data_noise"],
            # Metropolis-adjusted chains in a box sample the density restricted to it: the noisy
            # data are kept on that support too (projected chains pile mass on the faces instead).
            data_bounds=settings.bounds if settings.metropolis else None,
            max_grad_norm=self.max_grad_norm,
            energy_l2=self._trained_params["energy_l2"],
            lr_schedule=lr_schedule,
            total_updates=total_updates,
            forward_model=ddp.forward_model,
            callbacks=self._callbacks(n_updates, ddp.is_main, rows),
            **self._trainer_options(),
        )
        trainer.world = ddp
        if self._trainer_state is not None:
            trainer.load_state_dict(self._trainer_state)
            # The optimizer's saved groups hold the hyperparameters of the previous call; this
            # call runs with the estimator's (the rate is set per update from ``base_lrs``).
            for group in trainer.optimizer.param_groups:
                group["weight_decay"] = self.weight_decay
        return trainer

    def _run(self, X: np.ndarray, n_updates: int, lr_schedule: str) -> None:
        # Other threads' transform, sample and score wait for the updates (and these for them):
        # the lock is the one sampling_mode holds while the weights are frozen.
        with module_lock(self.module_):
            self._trained_params = self._params_to_keep()
            rows = self._to_tensor(self.range_map_.to_working(X))
            trainer = self._make_trainer(self._trained_params["max_iter"], n_updates, lr_schedule, rows)
            data = trainer.world.shard(rows)
            self._live_trainer = trainer  # read by the checkpoint callback mid-fit
            try:
                with self._compiled():
                    trainer.fit(data, n_updates, self._trained_params["batch_size"])
            finally:
                self._live_trainer = None
                self._trainer_state = trainer.state_dict()
                self.history_ = trainer.history
                self.n_iter_ = trainer.n_updates
        self._warn_if_chains_stalled(n_updates)

    #: Most training rows a fitted model's data statistics are computed on (evenly spaced).
    _max_centring_rows = 10_000

    def _centring_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """At most ``_max_centring_rows`` of the training rows, evenly spaced."""
        if len(rows) <= self._max_centring_rows:
            return rows
        index = torch.linspace(0, len(rows) - 1, self._max_centring_rows, device=rows.device).round().long()
        return rows[index]

    #: Below this share of accepted Metropolis-adjusted proposals, over the last tenth of a fit's
    #: updates, the training chains are reported as stalled: a well-tuned chain accepts about
    #: half, and one that accepts almost nothing stays where it is while the density moves.
    _stalled_acceptance = 0.1

    def _warn_if_chains_stalled(self, n_updates: int) -> None:
        """Warn (``ConvergenceWarning``) when the Metropolis-adjusted training chains of the
        updates just run accepted almost no proposals at the end: such chains lag the density
        they were meant to sample, so the fit followed a biased gradient, ``sample`` draws from
        stale states and ``score``'s AIS is unlikely to be reliable."""
        rates = [r["acceptance"] for r in self.history_[-n_updates:] if "acceptance" in r]
        tail = [a for a in rates[-max(len(rates) // 10, 1):] if not math.isnan(a)]
        if not tail or float(np.mean(tail)) >= self._stalled_acceptance:
            return
        warnings.warn(
            f"{type(self).__name__}'s training chains accepted {float(np.mean(tail)):.1%} of their "
            f"Metropolis-adjusted proposals over the last {len(tail)} updates: they have stalled, the "
            f"density having grown sharper than steps of {self._trained_params['step_size']:g} can follow. "
            "The fit's gradient was biased, sample() starts from stale chains, and score()'s AIS is likely to "
            "fail. Smaller steps alone let the density sharpen further; the noise added to the data "
            f"(data_noise, now {self._trained_params['data_noise']:g}) bounds how sharp it gets. On 28x28 images "
            "data_noise=0.25 with step_size=0.01 (the density preset's NN-EFH on images of 16x16 pixels "
            "or more) kept the chains moving (the likelihood page of the docs). history_['acceptance'] shows "
            "when the chains stalled.",
            ConvergenceWarning, stacklevel=5,  # the caller of fit / partial_fit (through sklearn's wrapper)
        )
