"""Divergence checks after every update: non-finite values, chains far outside the data range,
data and sample energies that separate; raise, or roll back and lower the learning rate."""

from __future__ import annotations

import bisect
import collections
import copy
import math
import statistics
import warnings
from typing import Optional

import torch

from .callbacks import Callback

__all__ = ["DivergenceError", "DivergenceMonitor", "DivergenceWarning"]


class DivergenceError(RuntimeError):
    """Training diverged: non-finite values, chains far outside the data range, or data and sample
    energies separating without bound."""

    def __init__(self, message: str, update: int, reason: str):
        super().__init__(message)
        self.update = update
        self.reason = reason


class DivergenceWarning(UserWarning):
    """A diverging fit was rolled back to a good state and continues at a lower learning rate."""


def divergence_reason(record: dict, chain_limit: float) -> Optional[str]:
    for key in ("loss", "energy_data", "energy_samples", "grad_norm"):
        if not math.isfinite(record[key]):
            return f"{key} is {record[key]}"
    extreme = max(abs(record["chain_min"]), abs(record["chain_max"]))
    if not math.isfinite(extreme):
        return "the sampler's chains contain non-finite values"
    if extreme > chain_limit:
        return (
            f"the sampler's chains reached |x| = {extreme:.3g}, beyond the limit {chain_limit:g} "
            "(data are scaled to about [-1, 1])"
        )
    return None


class DivergenceMonitor(Callback):
    """Stop a diverging fit with a clear error, or roll back and lower the learning rate.

    Parameters
    ----------
    chain_limit : float, default=100.0
        Largest ``|x|`` of the sampler's chains still considered sane, in the model's working units
        (data scaled to [-1, 1] for images, whitened or standardised for tabular data).
    on_divergence : {"raise", "restore"}, default="raise"
        "restore": go back to the last good state (kept in memory every ``snapshot_every``
        updates), multiply the learning rate by ``lr_decay``, warn (:class:`DivergenceWarning`)
        and continue, at most ``max_restores`` times; then raise. A state the fit diverged from
        once may be on its way to diverging again: each further restore goes one snapshot further
        back (the last ``max_restores + 1`` good ones are kept), and no snapshot is taken again
        until the fit has passed the update at which it last diverged. The trainer runs the
        discarded updates again, so a fit that finishes has performed all of its updates; each
        restore adds a record ``{"event": "restored", "update", "reason", "lr_scale",
        "restored_to", "discarded"}`` to the history.
    snapshot_every : int, default=100
    lr_decay : float, default=0.5
    max_restores : int, default=3
    advice : str, default=""
        What to change, appended to the error message.
    checkpoint_path : str, optional
        Named in the message as the last good checkpoint.
    gap_limit : float, default=10.0
        The fit also counts as diverged when the data and sample energies separate: when the median
        of ``|energy_data - energy_samples|`` over the last ``gap_window`` updates exceeds
        ``gap_limit`` times its median over all the updates before them (taken as at least one
        unit of energy). Chains that no longer follow the model let the network push the data's
        energy down and the samples' up without bound while every value stays finite, and the
        contrastive gradient grows with the gap. The check starts once ``3 * gap_window`` updates
        are behind it, because energies grow from zero in a fit's first updates. ``math.inf``
        turns it off.
    gap_window : int, default=100
        Updates in the recent median above. Medians, not means, so that a few noisy batches do not
        count.

    Attributes
    ----------
    gap_ratio : float
        The latest ratio of the recent median gap to the earlier one (across processes, the
        largest); 0 until the check starts.

    Notes
    -----
    A snapshot for ``"restore"`` is only taken while the gap ratio is below a third of its limit,
    so that a restore goes back to before the separation began rather than into its first
    updates. The gaps' record starts afresh with each fit: a fit resumed from a checkpoint
    measures them from the resume.
    """

    def __init__(
        self,
        chain_limit: float = 100.0,
        on_divergence: str = "raise",
        snapshot_every: int = 100,
        lr_decay: float = 0.5,
        max_restores: int = 3,
        advice: str = "",
        checkpoint_path: Optional[str] = None,
        gap_limit: float = 10.0,
        gap_window: int = 100,
    ):
        if on_divergence not in ("raise", "restore"):
            raise ValueError(f"on_divergence must be 'raise' or 'restore', got {on_divergence!r}")
        if not gap_limit > 1:
            raise ValueError(f"gap_limit must be greater than 1, got {gap_limit!r}")
        if int(gap_window) < 1:
            raise ValueError(f"gap_window must be a positive integer, got {gap_window!r}")
        self.chain_limit = chain_limit
        self.on_divergence = on_divergence
        self.snapshot_every = max(int(snapshot_every), 1)
        self.lr_decay = lr_decay
        self.max_restores = max_restores
        self.advice = advice
        self.checkpoint_path = checkpoint_path
        self.gap_limit = float(gap_limit)
        self.gap_window = int(gap_window)
        self.n_restores = 0
        self.events: list[dict] = []
        self._snapshots: collections.deque = collections.deque(maxlen=max_restores + 1)
        self._diverged_at = 0  # the last update that diverged: no snapshot is trusted before it
        self._gap_log: list[tuple[int, float]] = []  # (update, gap), to forget the updates a restore discards
        self._gaps: collections.deque = collections.deque(maxlen=self.gap_window)
        self._earlier_gaps: list[float] = []  # sorted: the gaps before the window
        self.gap_ratio = 0.0

    def _gap_ratio(self, record: dict) -> float:
        """The window's median energy gap over the median of all the gaps before it (at least one
        unit of energy); zero until ``3 * gap_window`` updates are behind the check."""
        gap = abs(record["energy_data"] - record["energy_samples"])
        if not math.isfinite(gap):
            return 0.0  # non-finite energies are reported by _divergence_reason
        if len(self._gaps) == self.gap_window:
            bisect.insort(self._earlier_gaps, self._gaps[0])  # about to leave the window
        self._gaps.append(gap)
        self._gap_log.append((record["update"], gap))
        if len(self._gaps) < self.gap_window or len(self._earlier_gaps) < 2 * self.gap_window:
            return 0.0
        return statistics.median(self._gaps) / max(statistics.median(self._earlier_gaps), 1.0)

    def _forget_gaps_after(self, update: int) -> None:
        self._gap_log = [(u, gap) for u, gap in self._gap_log if u <= update]
        gaps = [gap for _, gap in self._gap_log]
        self._gaps = collections.deque(gaps[-self.gap_window:], maxlen=self.gap_window)
        self._earlier_gaps = sorted(gaps[: max(len(gaps) - self.gap_window, 0)])

    def _gap_reason(self, ratio: float) -> Optional[str]:
        if ratio <= self.gap_limit:
            return None
        return (
            f"the data and sample energies separated: their median gap over the last {self.gap_window} "
            f"updates is {statistics.median(self._gaps):.4g}, {ratio:.3g} times its median over the updates "
            f"before ({statistics.median(self._earlier_gaps):.4g}), so the sampler no longer follows the model"
        )

    def on_fit_begin(self, trainer):
        if self.on_divergence == "restore":
            self._snapshots.append(copy.deepcopy(trainer.state_dict()))

    def on_update_end(self, trainer, record):
        local_ratio = self._gap_ratio(record)
        reason, ratio = _agree_across_ranks(
            divergence_reason(record, self.chain_limit) or self._gap_reason(local_ratio), local_ratio)
        self.gap_ratio = ratio
        if reason is None:
            healthy = ratio <= self.gap_limit / 3.0 and record["update"] > self._diverged_at
            if self.on_divergence == "restore" and record["update"] % self.snapshot_every == 0 and healthy:
                self._snapshots.append(copy.deepcopy(trainer.state_dict()))
            return
        if self.on_divergence == "restore" and self.n_restores < self.max_restores:
            self.n_restores += 1
            lr_scale = trainer.lr_scale * self.lr_decay  # cumulative over restores
            # The newest snapshot is used once; the oldest one kept stays as the last resort.
            snapshot = self._snapshots.pop() if len(self._snapshots) > 1 else self._snapshots[0]
            self._diverged_at = max(self._diverged_at, record["update"])
            restored_to = int(snapshot["n_updates"])
            self.events.append({
                "update": record["update"], "event": "restored", "reason": reason, "lr_scale": lr_scale,
                # The updates after the snapshot are discarded; the trainer runs them again.
                "restored_to": restored_to, "discarded": record["update"] - restored_to,
            })
            trainer.load_state_dict(copy.deepcopy(snapshot))
            trainer.lr_scale = lr_scale
            self._forget_gaps_after(restored_to)
            warnings.warn(
                f"training diverged at update {record['update']}: {reason}. Went back to update {restored_to} "
                f"and continues at {lr_scale:g} times the learning rate (restore {self.n_restores} of at most "
                f"{self.max_restores}).", DivergenceWarning, stacklevel=2)
            # The snapshot may predate some events: put back those it lacks.
            trainer.history.extend(e for e in self.events if e not in trainer.history)
            return
        where = (
            f" The last good checkpoint is {self.checkpoint_path}."
            if self.checkpoint_path
            else " No checkpoint was being written (set checkpoint_path to keep one)."
        )
        message = f"training diverged at update {record['update']}: {reason}.{where}"
        if self.n_restores:
            message += (f" It had been rolled back {self.n_restores} times, down to {trainer.lr_scale:g} times the "
                        "learning rate, and diverged again.")
        if self.advice:
            message += " " + self.advice
        raise DivergenceError(message, update=record["update"], reason=reason)


def _agree_across_ranks(reason: Optional[str], gap_ratio: float = 0.0) -> tuple[Optional[str], float]:
    """In a distributed run every rank must act on a divergence together (restore, or raise), and
    take its snapshots on the same updates, or the others would wait forever in the next
    all-reduce, or their replicas drift apart. Returns the reason and the largest gap ratio."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return reason, gap_ratio
    flags = torch.tensor([0.0 if reason is None else 1.0, gap_ratio])
    if torch.distributed.get_backend() == "nccl":
        flags = flags.cuda()
    torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
    if reason is None and float(flags[0]) > 0:
        reason = "the chains diverged on another process"
    return reason, float(flags[1])
