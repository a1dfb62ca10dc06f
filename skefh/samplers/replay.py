"""Where each training update's visible chains start: fresh noise, or a replay buffer.

The paper restarts every chain from N(0, I) at every update (Algorithm 1). With a short sampler
those chains never reach the data, the data-sample energy gap never closes, and the model is
left discriminating data from barely-processed noise (the stability page). A replay buffer
(Du & Mordatch 2019) keeps the final states of past chains and restarts most new chains from
them, so that chains accumulate Langevin steps across updates; a small fraction still starts
from noise, which keeps the buffer from collapsing onto a few modes.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..nn.base import EnergyModel
from .gibbs_langevin import GibbsLangevinSettings, training_negatives

__all__ = ["ReplayBuffer", "TrainingSampler"]


class ReplayBuffer:
    """A fixed-size store of chain states, drawn from uniformly and overwritten in place.

    The store is allocated on the first :meth:`draw` and filled with N(0, I) noise, so that
    until chains have been written back a draw is the paper's fresh-noise start.

    Parameters
    ----------
    capacity : int
        Number of stored states.
    reinit_fraction : float, default=0.05
        Probability that a drawn chain starts from fresh noise instead of its stored state.
    """

    def __init__(self, capacity: int, reinit_fraction: float = 0.05):
        if int(capacity) < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if not 0.0 <= float(reinit_fraction) <= 1.0:
            raise ValueError(f"reinit_fraction must be in [0, 1], got {reinit_fraction!r}")
        self.capacity = int(capacity)
        self.reinit_fraction = float(reinit_fraction)
        self.states: Optional[torch.Tensor] = None
        # Which rows hold a chain's final state rather than the initial noise: sampling from
        # the buffer after a short fit should not start from rows no chain has visited.
        self.written: Optional[torch.Tensor] = None

    def draw(
        self, n: int, shape, *, device, dtype, generator: Optional[torch.Generator] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Starting states for ``n`` chains, and the buffer rows they came from.

        Parameters
        ----------
        n : int
        shape : tuple of int
            Shape of one state (the model's input shape).
        device, dtype
            Where the buffer lives; fixed by the first call.
        generator : torch.Generator, optional

        Returns
        -------
        states : torch.Tensor of shape ``(n, *shape)``
        rows : torch.Tensor of shape (n,)
            Pass them to :meth:`store` with the chains' final states.
        """
        if self.states is None:
            self.states = torch.randn(
                (self.capacity, *shape), generator=generator, device=device, dtype=dtype
            )
            self.written = torch.zeros(self.capacity, dtype=torch.bool, device=device)
        elif self.states.device != torch.device(device):
            self.states = self.states.to(device)  # restored from a checkpoint on another device
        if tuple(self.states.shape[1:]) != tuple(shape):
            raise ValueError(
                f"the replay buffer holds states of shape {tuple(self.states.shape[1:])}, "
                f"asked for {tuple(shape)}"
            )
        rows = torch.randint(self.capacity, (n,), generator=generator, device=self.states.device)
        states = self.states[rows]
        fresh = torch.rand(n, generator=generator, device=self.states.device) < self.reinit_fraction
        noise = torch.randn(states.shape, generator=generator, device=states.device, dtype=states.dtype)
        states = torch.where(fresh.view(-1, *([1] * len(shape))), noise, states)
        return states, rows

    def store(self, rows: torch.Tensor, states: torch.Tensor) -> None:
        """Overwrite ``rows`` with ``states`` (the chains that :meth:`draw` started there).

        A row given more than once keeps the last of its states.
        """
        if self.states is None:
            raise RuntimeError("store() before draw(): the buffer is not allocated yet")
        rows = rows.to(self.states.device)
        states = states.detach().to(self.states.dtype)
        # A row drawn twice gets two states. Index assignment then keeps an arbitrary one, which
        # on a multi-threaded CPU varies from run to run; keeping the last removes that source of
        # difference between two seeded fits.
        order = torch.arange(rows.numel(), device=rows.device)
        last = torch.full((self.capacity,), -1, dtype=torch.long, device=rows.device)
        last.scatter_reduce_(0, rows, order, reduce="amax")
        keep = last[rows] == order
        self.states[rows[keep]] = states[keep]
        if self.written is None or self.written.device != self.states.device:
            self.written = self._all_written() if self.written is None else self.written.to(self.states.device)
        self.written[rows] = True

    def _all_written(self) -> torch.Tensor:
        # Buffers saved before rows were tracked: count every row as written.
        return torch.ones(self.capacity, dtype=torch.bool, device=self.states.device)

    def state_dict(self) -> dict:
        """The stored states and settings (tensors and plain Python, for checkpoints)."""
        return {
            "capacity": self.capacity,
            "reinit_fraction": self.reinit_fraction,
            "states": self.states,
            "written": self.written,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the stored chains of :meth:`state_dict`; the capacity must match.

        The reinit fraction is this buffer's own, not the saved one: it is a setting of whoever
        built the buffer (an estimator's ``replay_reinit``), which may have been changed since
        the state was saved, e.g. by ``set_params`` before ``partial_fit``.
        """
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"saved replay buffer has capacity {state['capacity']}, this one {self.capacity}"
            )
        # Moved to the chains' device by the next draw().
        self.states = state["states"]
        self.written = state.get("written")
        if self.written is None and self.states is not None:
            self.written = self._all_written()


class TrainingSampler:
    """The negative sampler of a training update: Gibbs-Langevin from noise or from a buffer.

    A callable ``sampler(model, x_pos, generator) -> dict`` for
    :class:`skefh.training.ContrastiveTrainer`, with a ``state_dict`` so that checkpoints and
    ``partial_fit`` carry the buffer.

    Parameters
    ----------
    settings : GibbsLangevinSettings
    data_fraction : float, default=0.0
        Fraction of latent chains started from the data posterior (see
        :func:`~skefh.samplers.training_negatives`).
    keep : {"last", "all"}, default="last"
    buffer : ReplayBuffer, optional
        Without one every chain starts from fresh noise (Algorithm 1).
    jump : KernelJump, optional
        A mode-jumping move (:class:`~skefh.samplers.KernelJump`) applied to every chain after
        its Gibbs-Langevin rounds, at the sampler's temperatures, so that persistent chains
        carry mass between modes that local moves never cross.
    """

    def __init__(
        self,
        settings: GibbsLangevinSettings,
        *,
        data_fraction: float = 0.0,
        keep: str = "last",
        buffer: Optional[ReplayBuffer] = None,
        jump=None,
    ):
        if jump is not None and keep != "last":
            raise ValueError("a jump moves the last state only; it needs keep='last'")
        self.settings = settings
        self.data_fraction = float(data_fraction)
        self.keep = keep
        self.buffer = buffer
        self.jump = jump

    def __call__(
        self, model: EnergyModel, x_pos: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> dict:
        x_init = rows = None
        if self.buffer is not None:
            dtype = next(model.parameters()).dtype
            x_init, rows = self.buffer.draw(
                x_pos.shape[0], model.input_shape, device=x_pos.device, dtype=dtype, generator=generator
            )
        out = training_negatives(
            model,
            x_pos,
            self.settings,
            data_fraction=self.data_fraction,
            x_init=x_init,
            generator=generator,
            keep=self.keep,
        )
        if self.jump is not None:
            temperature, latent_temperature = self.settings.temperatures(model)
            moved = self.jump(model, out["x"], generator, temperature, latent_temperature)
            out = {**out, "x": moved["x"], "z": moved["z"], "jump_acceptance": moved["acceptance"]}
        if self.buffer is not None:
            self.buffer.store(rows, out["x"])
        return out

    def state_dict(self) -> dict:
        """The buffer's state (None without a buffer)."""
        return {"replay_buffer": None if self.buffer is None else self.buffer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` into this sampler's buffer, if it has one."""
        saved = state.get("replay_buffer")
        if self.buffer is not None and saved is not None:
            self.buffer.load_state_dict(saved)
