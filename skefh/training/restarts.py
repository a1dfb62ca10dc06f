"""Annealed restarts: persistent training chains fed with states that annealing finds.

Persistent chains that start at the data and take local steps only visit the modes they start
near. A model can put mass in a mode far from every training row (a "pocket": for an NN-EFH with
live latent units, an input that turns many units on at once); no chain goes there, so the
contrastive gradient never raises the energy there, and the mass stays. ``score`` then rests
on an AIS estimate that one chain in many finds (see the likelihood page of the docs).

Annealing from the estimator's own AIS base reaches such modes. Every ``every`` updates this
callback runs one forward AIS (the path ``score`` uses) and writes states drawn from its final
chains, in proportion to their importance weights (so a draw approximates one of the model),
over random rows of the replay buffer. The next updates' chains then start there, and the
contrastive gradient sees the pocket. Between runs the training is unchanged.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..samplers.ais import annealed_importance_sampling
from .callbacks import Callback

__all__ = ["AnnealedRestarts"]


class AnnealedRestarts(Callback):
    """Every ``every`` updates, replace ``n_states`` buffer chains by weighted draws from an AIS run.

    Parameters
    ----------
    path_factory : callable
        Returns the annealing path to run (e.g. a fitted estimator's, built afresh from the
        current weights); its ``model`` is the trainer's.
    n_states : int
        Buffer rows overwritten per run (drawn with replacement from the final chains, each with
        probability proportional to its importance weight).
    every : int
        Updates between runs.
    n_chains : int, default=64
        Chains per AIS run.
    n_steps : int, default=300
        Intermediate distributions per AIS run.

    Notes
    -----
    Each run adds ``restart_log_z`` and ``restart_ess`` (the run's estimate of log Z and its
    effective sample size) to that update's history record: a running view of how estimable the
    density is while it is being learned. A trainer without a replay buffer has no chains to
    restart; the callback then raises.
    """

    def __init__(self, path_factory: Callable, n_states: int, every: int, n_chains: int = 64, n_steps: int = 300):
        for name, value, low in (("n_states", n_states, 1), ("every", every, 1), ("n_chains", n_chains, 2),
                                 ("n_steps", n_steps, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")
        self.path_factory = path_factory
        self.n_states, self.every = int(n_states), int(every)
        self.n_chains, self.n_steps = int(n_chains), int(n_steps)

    def on_update_end(self, trainer, record):
        if trainer.n_updates % self.every:
            return
        buffer = getattr(trainer.negative_sampler, "buffer", None)
        if buffer is None:
            raise ValueError("annealed restarts replace chains of a replay buffer, and this trainer has none")
        if buffer.states is None:
            return  # nothing drawn yet: the buffer is allocated by the first update's draw
        generator = trainer.generator
        result = annealed_importance_sampling(self.path_factory(), self.n_chains, self.n_steps,
                                              generator=generator, keep_states=True)
        record["restart_log_z"] = float(result.log_z)
        record["restart_ess"] = float(result.ess)
        if not math.isfinite(result.log_z):
            return  # no weights to draw by; the divergence check reports non-finite energies
        # Drawn on the generator's device (the trainer's: a GPU's generator draws there only).
        device = generator.device if generator is not None else torch.device("cpu")
        shares = torch.softmax(result.log_weights.double(), 0).to(device)
        picks = torch.multinomial(shares, self.n_states, replacement=True, generator=generator)
        rows = torch.randint(buffer.capacity, (self.n_states,), generator=generator, device=device)
        buffer.store(rows, result.states[picks.cpu()].to(buffer.states.device))
