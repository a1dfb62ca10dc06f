"""Training callbacks: progress, checkpoints, history (divergence checks: ``divergence``).

A callback overrides any of the no-op hooks below; the trainer calls them in order
(``ContrastiveTrainer.notify``). Setting ``trainer.stop_training = True`` ends the fit after the
current update.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch

__all__ = [
    "Callback",
    "ProgressBar",
    "DurationNotice",
    "Checkpoint",
    "LambdaCallback",
    "HistoryWriter",
]


class Callback:
    """Base class: every hook is a no-op."""

    def on_fit_begin(self, trainer) -> None:
        """Called once before the first update of a ``fit`` call."""

    def on_update_end(self, trainer, record: dict) -> None:
        """Called after every update with that update's history record."""

    def on_fit_end(self, trainer) -> None:
        """Called once when a ``fit`` call ends, also when it ends with an error."""


class LambdaCallback(Callback):
    """Wrap a function ``fn(trainer, record)`` as an ``on_update_end`` hook."""

    def __init__(self, on_update_end: Callable):
        self._fn = on_update_end

    def on_update_end(self, trainer, record):
        self._fn(trainer, record)


class HistoryWriter(Callback):
    """Appends every update's record to a JSON-lines file (one object per line).

    Parameters
    ----------
    path : str or path-like
    """

    def __init__(self, path):
        self.path = Path(path)

    def on_update_end(self, trainer, record):
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


class ProgressBar(Callback):
    """A tqdm bar (updates/s, ETA, data and sample energies, their gap); log lines at verbose 2.

    Parameters
    ----------
    total : int
        Number of updates this fit will run; the bar counts from the trainer's update count
        (a resumed fit shows ``done/done+total``).
    verbose : int, default=1
        1: the bar; 2: the bar plus a log line every ``log_every`` updates.
    log_every : int, default=100
    desc : str, default="fit"
    file : file-like, default=sys.stderr
    """

    def __init__(self, total: int, verbose: int = 1, log_every: int = 100, desc: str = "fit", file=None):
        self.total = total
        self.verbose = verbose
        self.log_every = max(int(log_every), 1)
        self.desc = desc
        self.file = file
        self._bar = None

    def on_fit_begin(self, trainer):
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=trainer.n_updates + self.total,
            initial=trainer.n_updates,
            desc=self.desc,
            unit="upd",
            file=self.file if self.file is not None else sys.stderr,
            dynamic_ncols=True,
        )

    def on_update_end(self, trainer, record):
        # The trainer's count, not +1: a divergence restore moves it back.
        self._bar.update(trainer.n_updates - self._bar.n)
        self._bar.set_postfix(
            E_data=f"{record['energy_data']:.4g}",
            E_samp=f"{record['energy_samples']:.4g}",
            gap=f"{record['energy_gap']:.3g}",
            refresh=False,
        )
        if self.verbose >= 2 and record["update"] % self.log_every == 0:
            self._bar.write(
                "[{desc}] update {update}: loss={loss:.4g} E_data={energy_data:.4g} "
                "E_samples={energy_samples:.4g} grad_norm={grad_norm:.3g} "
                "chain=[{chain_min:.3g}, {chain_max:.3g}] {seconds:.3f}s".format(
                    desc=self.desc, **record
                ),
                file=self.file if self.file is not None else sys.stderr,
            )

    def on_fit_end(self, trainer):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class DurationNotice(Callback):
    """One line saying how long a fit will take, when that is more than ``threshold`` seconds.

    A fit at the image defaults runs for many minutes on a CPU; without a progress bar
    (``verbose=0``) it would be silent. After ``n_timed`` updates (the first, which includes
    one-off set-up costs, is not timed) the remaining time is projected from their pace and,
    if it exceeds the threshold, written once.

    Parameters
    ----------
    total : int
        Updates this fit will run.
    threshold : float, default=60.0
        Seconds below which nothing is written.
    n_timed : int, default=5
    desc : str, default="fit"
    file : file-like, default=sys.stderr
    """

    def __init__(self, total: int, threshold: float = 60.0, n_timed: int = 5, desc: str = "fit", file=None):
        self.total = int(total)
        self.threshold = float(threshold)
        self.n_timed = max(int(n_timed), 1)
        self.desc = desc
        self.file = file
        self.projected_seconds: Optional[float] = None
        self._seconds: list[float] = []

    def on_fit_begin(self, trainer):
        self._seconds = []
        self.projected_seconds = None

    def on_update_end(self, trainer, record):
        if self.projected_seconds is not None or "seconds" not in record:
            return
        self._seconds.append(float(record["seconds"]))
        if len(self._seconds) <= self.n_timed:  # the first update is not timed
            return
        pace = sum(self._seconds[1:]) / self.n_timed
        self.projected_seconds = pace * max(self.total - len(self._seconds), 0)
        if self.projected_seconds > self.threshold:
            minutes = self.projected_seconds / 60.0
            print(
                f"[{self.desc}] {self.total:,} updates: about {minutes:.0f} more minute"
                f"{'' if round(minutes) == 1 else 's'} at the pace of the first {self.n_timed} "
                "(verbose=1 shows a progress bar, verbose=-1 silences this line)",
                file=self.file if self.file is not None else sys.stderr,
                flush=True,
            )


class DataCentring(Callback):
    """At the end of a fit that finished, fix the model's statistics of the data on the training
    rows (:meth:`~skefh.nn.base.EnergyModel.centre_on`; the centred NN-EFH's u_bar).

    Placed before :class:`Checkpoint`, whose save at the end of the fit then holds them.

    Parameters
    ----------
    batches_fn : callable
        Returns an iterable of data batches in the model's working units.
    """

    def __init__(self, batches_fn: Callable[[], Iterable[torch.Tensor]]):
        self.batches_fn = batches_fn

    def on_fit_end(self, trainer):
        if trainer.error is not None:
            return
        from ..nn.base import sampling_mode

        with sampling_mode(trainer.model), torch.no_grad():
            trainer.model.centre_on(self.batches_fn())


class Checkpoint(Callback):
    """Save a resumable checkpoint every ``every`` updates and at the end of the fit.

    Parameters
    ----------
    path : str or path-like
        Written atomically (to a temporary file in the same directory, then renamed), so an
        interrupted save never leaves a truncated checkpoint.
    every : int
    state_fn : callable
        Returns the dictionary to save (tensors and plain Python only, so that it loads with
        ``torch.load(weights_only=True)``).
    is_writer : bool, default=True
        Only one process of a distributed run writes.
    """

    def __init__(self, path, every: int, state_fn: Callable[[], dict], is_writer: bool = True):
        self.path = path
        self.every = max(int(every), 1)
        self.state_fn = state_fn
        self.is_writer = is_writer
        self._last_good: Optional[int] = None

    def _save(self, trainer):
        from .checkpoint import save_checkpoint

        if self.is_writer:
            save_checkpoint(self.state_fn(), self.path)
        self._last_good = trainer.n_updates

    def on_update_end(self, trainer, record):
        from .divergence import divergence_reason  # here: divergence.py imports Callback from this module

        if record["update"] % self.every == 0 and divergence_reason(record, math.inf) is None:
            self._save(trainer)

    def on_fit_end(self, trainer):
        if trainer.error is not None:  # keep the last good checkpoint, not the failed state
            return
        # Saved again even where the last update was saved: the end of a fit may change the
        # model after its last update (DataCentring).
        if trainer.history:
            self._save(trainer)
