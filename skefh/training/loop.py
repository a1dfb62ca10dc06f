"""The contrastive maximum-likelihood training loop, shared by all three models.

The gradient of the negative log-likelihood of an energy model is (NN-EFH paper, Eq. 7)

    E_data[dE/dtheta] - E_model[dE/dtheta],

which is the gradient of the surrogate loss ``mean E(x, z) - mean E(x_hat, z_hat)`` with the
model samples (x_hat, z_hat) held fixed. Writing the update as a loss keeps autograd, Adam, any
torch optimizer and DistributedDataParallel's gradient all-reduce in charge; no weight update is
written by hand. This module knows nothing of scikit-learn.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..nn.base import EnergyModel, sampling_mode
from ..samplers.langevin import fold_into_box
from .callbacks import Callback

__all__ = ["ContrastiveTrainer", "NegativeSampler", "VARYING_STD", "latent_batch_usage", "lr_factor"]

#: ``sampler(model, x_pos, generator) -> dict`` with ``x``, ``z`` and optionally ``xs``/``zs``
#: (all rounds), ``grad_norm``, ``x_min``, ``x_max`` (see skefh.samplers.gibbs_langevin). It
#: draws ``len(x_pos)`` model samples; the positive batch is there for samplers that start
#: their latent chain from the data posterior.
NegativeSampler = Callable[[EnergyModel, torch.Tensor, Optional[torch.Generator]], dict]

_LR_SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(schedule: str, update: int, total: int) -> float:
    """Multiplier of the base learning rate at ``update`` (0-based) out of ``total``.

    Parameters
    ----------
    schedule : {"constant", "cosine", "linear"}
        "cosine" anneals to 0 over ``total`` updates (the GRBM reference anneals per epoch),
        "linear" decays linearly to 0.
    update, total : int
    """
    if schedule not in _LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {_LR_SCHEDULES}")
    progress = min(update / max(total, 1), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    return 1.0


#: A latent unit "varies" when its posterior mean p(z_k = 1 | x) has at least this standard
#: deviation across the rows of a batch (``varying_std`` of :func:`skefh.metrics.latent_usage`).
VARYING_STD = 0.1


def latent_batch_usage(probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shares of latent units that vary, are always on and are always off across a batch.

    Parameters
    ----------
    probabilities : torch.Tensor of shape (B, K)
        Posterior means p(z_k = 1 | x) of a batch of rows.

    Returns
    -------
    varying, always_on, always_off : 0-d torch.Tensor
        The fraction of the K units whose posterior mean has a standard deviation of at least
        :data:`VARYING_STD` over the rows; on (p > 0.5) for every row; off for every row.
    """
    on = probabilities > 0.5
    varying = (probabilities.std(0, correction=0) >= VARYING_STD).double().mean()
    return varying, on.all(0).double().mean(), (~on).all(0).double().mean()


def participation_ratio(rows: torch.Tensor) -> torch.Tensor:
    """``(tr C)^2 / tr(C^2)`` for the covariance C of ``rows`` (n, K) over its rows, in float64:
    the effective number of directions they vary along (0 when they do not vary).

    Parameters
    ----------
    rows : torch.Tensor of shape (n, K)

    Returns
    -------
    0-d torch.Tensor
    """
    rows = rows.double()
    centred = rows - rows.mean(0)
    # C and its square from the smaller Gram matrix: tr C = ||A||_F^2 / (n - 1), and
    # tr C^2 = ||A^T A||_F^2 / (n - 1)^2 = ||A A^T||_F^2 / (n - 1)^2.
    gram = centred @ centred.T if centred.shape[0] < centred.shape[1] else centred.T @ centred
    trace, trace_of_square = torch.trace(gram), gram.square().sum()
    # Constant rows leave only rounding in ``centred``: no direction, not a ratio of rounding errors.
    meaningful = (trace > 1e-20 * rows.square().sum()) & (trace_of_square > 0)
    return torch.where(meaningful, trace.square() / trace_of_square.clamp_min(1e-300), torch.zeros_like(trace))


def _flatten_rounds(out: dict) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Negative samples of all Gibbs rounds stacked along the batch (GRBM reference)."""
    x = torch.cat(out["xs"], 0)
    z = torch.cat(out["zs"], 0) if out["zs"][0] is not None else None
    return x, z


class ContrastiveTrainer:
    """One contrastive update per minibatch, with callbacks and a resumable state.

    Parameters
    ----------
    model : EnergyModel
        The energy; its ``forward(x, z)`` gives per-sample joint energies.
    negative_sampler : callable
        ``negative_sampler(model, x_pos, generator)`` draws ``len(x_pos)`` model samples (see
        :data:`NegativeSampler`). When its result has ``xs``, every round is used as a negative
        sample (the GRBM reference's averaged negative statistics). A sampler with state of its
        own (a replay buffer) exposes ``state_dict``/``load_state_dict``, and the trainer's
        state carries it.
    optimizer : torch.optim.Optimizer
    generator : torch.Generator
        Randomness for data noise, positive latents and the sampler (on the model's device).
    data_generator : torch.Generator
        CPU generator for the order of minibatches.
    data_noise : float, default=0.0
        Standard deviation of Gaussian noise added to each positive batch (Nijkamp et al. 2020,
        appendix C: without it constant-background pixels get runaway low energy).
    data_bounds : (low, high), optional
        The box the model's density lives on (its chains' box, when they are Metropolis-adjusted
        and so sample the density restricted to it): noisy positives are reflected into it at
        the face they crossed (coordinates that were outside it before the noise are left as they
        are). Positives outside the density's support could never be matched by its samples, and
        the gradient would keep lowering the energy at the faces.
    max_grad_norm : float or None, default=None
        Clip the parameter-gradient norm (``torch.nn.utils.clip_grad_norm_``).
    energy_l2 : float, default=0.0
        Coefficient of ``mean(E_data^2) + mean(E_samples^2)`` added to the loss (Du & Mordatch
        2019), which keeps energies near zero.
    gradient_penalty : float, default=0.0
        gamma of ``gamma / 2 * mean ||dE/dx||^2`` on the (noisy) data batch (at its latent draw),
        the R1 penalty of Mescheder et al. (2018): it keeps the energy from steepening at the
        data faster than chains of a fixed budget can follow.
    latent_l2 : float, default=0.0
        Coefficient of ``mean ||eta_data||^2 + mean ||eta_samples||^2`` (squared norms of the
        posterior logits, averaged over the batch), a penalty for latent models that keeps the
        posterior from saturating.
    latent_sparsity : float, default=0.0
        Coefficient of ``sum_k (mean_batch p(z_k = 1 | x) - latent_target)^2`` on the data batch
        (the sparsity target of classic RBM training, Lee et al. 2008): each unit is pulled
        towards being on for a ``latent_target`` share of the data, so that no unit settles
        always on (a fixed linear read-out of U) or always off (a unit without gradient).
    latent_target : float, default=0.2
        The target mean activation of each latent unit over the data.
    latent_statistics : {"sample", "mean"}, default="sample"
        Positive-phase latent: a Bernoulli draw (Algorithm 1, line 5) or the posterior mean
        sigmoid(eta / tau) (lower variance, same expected gradient).
    latent_temperature : float or None, default=None
        Temperature of the positive-phase posterior; None is the model's own tau (the paper's
        recipe draws it at 1, like its sampler's latent draws).
    lr_schedule : {"constant", "cosine", "linear"}, default="constant"
    total_updates : int, default=1
        Horizon of the learning-rate schedule.
    forward_model : torch.nn.Module, optional
        What computes the loss energies: the model itself, or a DistributedDataParallel wrapper
        around it (so that gradients are all-reduced).
    callbacks : sequence of Callback
    """

    def __init__(
        self,
        model: EnergyModel,
        negative_sampler: NegativeSampler,
        optimizer: torch.optim.Optimizer,
        *,
        generator: Optional[torch.Generator] = None,
        data_generator: Optional[torch.Generator] = None,
        data_noise: float = 0.0,
        data_bounds: Optional[tuple] = None,
        max_grad_norm: Optional[float] = None,
        energy_l2: float = 0.0,
        gradient_penalty: float = 0.0,
        latent_l2: float = 0.0,
        latent_sparsity: float = 0.0,
        latent_target: float = 0.2,
        latent_statistics: str = "sample",
        latent_temperature: Optional[float] = None,
        lr_schedule: str = "constant",
        total_updates: int = 1,
        forward_model: Optional[nn.Module] = None,
        callbacks: Sequence[Callback] = (),
    ):
        if latent_statistics not in ("sample", "mean"):
            raise ValueError(f"latent_statistics must be 'sample' or 'mean', got {latent_statistics!r}")
        self.model = model
        self.negative_sampler = negative_sampler
        self.optimizer = optimizer
        self.generator = generator
        self.data_generator = data_generator if data_generator is not None else torch.Generator()
        self.data_noise = float(data_noise)
        self.data_bounds = data_bounds
        self.max_grad_norm = max_grad_norm
        self.energy_l2 = float(energy_l2)
        self.gradient_penalty = float(gradient_penalty)
        if not (self.gradient_penalty >= 0 and math.isfinite(self.gradient_penalty)):
            raise ValueError(f"gradient_penalty must be a finite number >= 0, got {gradient_penalty!r}")
        self.latent_l2 = float(latent_l2)
        self.latent_sparsity = float(latent_sparsity)
        self.latent_target = float(latent_target)
        if (self.latent_l2 > 0 or self.latent_sparsity > 0) and not model.has_latent:
            raise ValueError(
                f"latent_l2 and latent_sparsity need a model with a latent layer, not {type(model).__name__}"
            )
        if not 0.0 < self.latent_target < 1.0:
            raise ValueError(f"latent_target must lie in (0, 1), got {latent_target!r}")
        self.latent_statistics = latent_statistics
        self.latent_temperature = latent_temperature
        self.lr_schedule = lr_schedule
        self.total_updates = int(total_updates)
        self.forward_model = forward_model if forward_model is not None else model
        self.callbacks = list(callbacks)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.lr_scale = 1.0  # lowered by divergence recovery
        self.n_updates = 0
        self.history: list[dict] = []
        self.stop_training = False
        self.error: Optional[BaseException] = None
        self._order: Optional[torch.Tensor] = None
        self._position = 0

    # -- callbacks ------------------------------------------------------------------------------
    def notify(self, hook: str, **kwargs) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, **kwargs)

    # -- one update -----------------------------------------------------------------------------
    def _positive_latent(self, x_pos: torch.Tensor):
        # One frozen pass: the running data statistics (centred NN-EFH), then the posterior.
        with sampling_mode(self.model), torch.no_grad():
            self.model.observe_data(x_pos)
            if not self.model.has_latent:
                return None, None, None
            logits = self.model.posterior_logits(x_pos)
            tau = self.model.temperature if self.latent_temperature is None else self.latent_temperature
            probs = torch.sigmoid(logits / tau)
        z = probs if self.latent_statistics == "mean" else torch.bernoulli(probs, generator=self.generator)
        return z, probs, logits

    def _set_lr(self) -> float:
        factor = self.lr_scale * lr_factor(self.lr_schedule, self.n_updates, self.total_updates)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        return self.optimizer.param_groups[0]["lr"]

    def train_step(self, x_pos: torch.Tensor) -> dict:
        """One contrastive update on the positive batch ``x_pos``; returns its record."""
        start = time.perf_counter()
        if self.data_noise > 0:
            noise = torch.randn(
                x_pos.shape, generator=self.generator, device=x_pos.device, dtype=x_pos.dtype
            )
            noisy = x_pos + self.data_noise * noise
            if self.data_bounds is not None:
                low, high = self.data_bounds
                # Once reflected, a coordinate lies in the box unless it overshot by more than
                # its width (not at any sensible noise level): those are clipped. Values that lay
                # outside the box before the noise (a box narrower than the data) are left alone.
                folded = torch.clamp(fold_into_box(noisy, low, high)[0], low, high)
                noisy = torch.where((x_pos >= low) & (x_pos <= high), folded, noisy)
            x_pos = noisy
        z_pos, probs, logits = self._positive_latent(x_pos)
        negatives = self.negative_sampler(self.model, x_pos, self.generator)
        if "xs" in negatives:
            x_neg, z_neg = _flatten_rounds(negatives)
        else:
            x_neg, z_neg = negatives["x"], negatives["z"]
        n_pos = x_pos.shape[0]
        # One forward over positives and negatives: one DDP forward per backward.
        z_all = torch.cat([z_pos, z_neg.to(z_pos.dtype)]) if z_pos is not None else None
        penalised = self.gradient_penalty > 0
        if penalised:  # a leaf, so that the penalty can differentiate the energy in x
            x_pos = x_pos.detach().requires_grad_(True)
        x_all = torch.cat([x_pos, x_neg.detach()])
        # The penalty differentiates this pass's input gradient: the backward passes of the fused
        # CUDA attention kernels cannot be differentiated again, the plain kernel's can.
        with sdpa_kernel([SDPBackend.MATH]) if penalised else contextlib.nullcontext():
            if self.latent_l2 > 0 or self.latent_sparsity > 0:
                energies, eta = self.forward_model(x_all, z_all, return_logits=True)
            else:
                energies = self.forward_model(x_all, z_all)
        e_pos, e_neg = energies[:n_pos], energies[n_pos:]
        loss = e_pos.mean() - e_neg.mean()
        if self.energy_l2 > 0:
            loss = loss + self.energy_l2 * (e_pos.square().mean() + e_neg.square().mean())
        penalty = torch.zeros((), device=loss.device, dtype=loss.dtype)
        if penalised:
            (slope,) = torch.autograd.grad(e_pos.sum(), x_pos, create_graph=True)
            penalty = 0.5 * self.gradient_penalty * slope.flatten(1).square().sum(1).mean()
            loss = loss + penalty
        if self.latent_l2 > 0:
            # Keeps the posterior logits of data and samples from growing without bound (the
            # saturation that precedes divergence).
            # Summed over units and averaged over the batch, like the energy itself.
            squared = eta.square().sum(1)
            loss = loss + self.latent_l2 * (squared[:n_pos].mean() + squared[n_pos:].mean())
        if self.latent_sparsity > 0:
            # The posterior at the model's own temperature, whose logits eta / tau the network sets.
            activation = torch.sigmoid(eta[:n_pos] / self.model.temperature).mean(0)
            loss = loss + self.latent_sparsity * (activation - self.latent_target).square().sum()
        lr = self._set_lr()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.max_grad_norm if self.max_grad_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        finite = bool(torch.isfinite(loss)) and bool(torch.isfinite(grad_norm))
        if finite:  # never write a non-finite step into the parameters
            self.optimizer.step()
        self.n_updates += 1
        # Every diagnostic in one device-to-host transfer (one synchronisation on a GPU).
        nan = torch.tensor(float("nan"), device=loss.device, dtype=torch.float64)
        mean_pos, mean_neg = e_pos.detach().mean(), e_neg.detach().mean()
        usage = latent_batch_usage(probs) if probs is not None else (nan, nan, nan)
        values = torch.stack([
            loss.detach().double(), penalty.detach().double(),
            mean_pos.double(), mean_neg.double(), (mean_pos - mean_neg).double(),
            grad_norm.double(), torch.as_tensor(negatives.get("grad_norm", nan), device=loss.device).double(),
            negatives["x"].min().double(), negatives["x"].max().double(),
            probs.mean().double() if probs is not None else nan,
            *(u.double() for u in usage),
            participation_ratio(logits) if logits is not None else nan,
            # NaN for unadjusted chains: the share of Metropolis-adjusted proposals accepted, the
            # first sign of chains that have stalled while the density sharpened under them.
            torch.as_tensor(negatives.get("acceptance", nan), device=loss.device).double(),
            torch.as_tensor(negatives.get("jump_acceptance", nan), device=loss.device).double(),
        ]).tolist()
        keys = ("loss", "gradient_penalty", "energy_data", "energy_samples", "energy_gap", "grad_norm",
                "langevin_grad_norm", "chain_min", "chain_max", "posterior_data", "latent_varying", "latent_always_on",
                "latent_always_off", "logit_dimension", "acceptance", "jump_acceptance")
        record = {
            "update": self.n_updates,
            **dict(zip(keys, values)),
            "lr": lr,
            "skipped": not finite,
            "seconds": time.perf_counter() - start,
        }
        self.history.append(record)
        return record

    # -- the loop -------------------------------------------------------------------------------
    def _next_batch_indices(self, n_rows: int, batch_size: int) -> torch.Tensor:
        # A new epoch, or other data than the order was drawn for (``partial_fit`` on new rows).
        stale = self._order is None or len(self._order) != n_rows
        if stale or self._position + batch_size > len(self._order):
            self._order = torch.randperm(n_rows, generator=self.data_generator)
            self._position = 0
        idx = self._order[self._position : self._position + batch_size]
        self._position += batch_size
        return idx

    def fit(self, data: torch.Tensor, n_updates: int, batch_size: int) -> "ContrastiveTrainer":
        """Run ``n_updates`` more updates on minibatches of ``data`` (reshuffled every epoch).

        The fit ends when the trainer's update count has grown by ``n_updates``: updates that a
        callback rolled back (a divergence restore) are run again, so the final state is always
        ``n_updates`` updates past the starting one (unless a callback sets ``stop_training``
        or raises).

        Parameters
        ----------
        data : torch.Tensor of shape (n, ...)
            Training data on the model's device, in the model's working units.
        n_updates : int
        batch_size : int
            Rows per minibatch (at most ``n``; the last incomplete batch of an epoch is dropped).
        """
        batch_size = min(batch_size, data.shape[0])
        self.stop_training = False
        self.error = None
        # Count towards a target rather than loop a fixed number of times: a divergence restore
        # (``DivergenceMonitor``) rewinds ``n_updates`` to a snapshot, and the updates it
        # discarded must be run again for the fit to perform what it was asked to.
        target = self.n_updates + int(n_updates)
        self.notify("on_fit_begin")
        try:
            while self.n_updates < target:
                idx = self._next_batch_indices(data.shape[0], batch_size)
                record = self.train_step(data[idx.to(data.device)])
                self.notify("on_update_end", record=record)
                if self.stop_training:
                    break
        except BaseException as exc:
            self.error = exc  # lets callbacks tell a failed fit from a finished one
            raise
        finally:
            self.notify("on_fit_end")
        return self

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically: tensors and plain Python only."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state() if self.generator is not None else None,
            "generator_device": self.generator.device.type if self.generator is not None else None,
            "data_generator": self.data_generator.get_state(),
            "order": self._order,
            "position": self._position,
            "n_updates": self.n_updates,
            "lr_scale": self.lr_scale,
            "history": list(self.history),
            "sampler": self._sampler_state(),
        }

    def _sampler_state(self):
        state_dict = getattr(self.negative_sampler, "state_dict", None)
        return state_dict() if state_dict is not None else None

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; ``state["model"]`` may be None when the model already holds
        the weights (an unpickled estimator)."""
        if state["model"] is not None:
            self.model.load_state_dict(state["model"])
        if state.get("optimizer") is not None:  # None: a pickled model, a fresh optimizer
            self.optimizer.load_state_dict(state["optimizer"])
        self.data_generator.set_state(state["data_generator"])
        if self.generator is not None and state["generator"] is not None:
            if state.get("generator_device", self.generator.device.type) == self.generator.device.type:
                self.generator.set_state(state["generator"])
            else:
                # CPU and CUDA generator states are not interchangeable (a run resumed on another
                # device): continue with a stream derived deterministically from the saved state.
                seed = int(torch.randint(2**62, (1,), generator=self.data_generator))
                self.generator.manual_seed(seed)
        self._order = state["order"]
        self._position = int(state["position"])
        self.n_updates = int(state["n_updates"])
        self.lr_scale = float(state["lr_scale"])
        self.history = list(state["history"])
        sampler_state = state.get("sampler")  # absent from checkpoints written before it was stored
        if sampler_state is not None and hasattr(self.negative_sampler, "load_state_dict"):
            self.negative_sampler.load_state_dict(sampler_state)
