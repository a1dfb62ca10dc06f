"""Data-parallel training on torch's own engine (DistributedDataParallel).

When a process group is initialised (``torchrun``, or ``torch.distributed.init_process_group``
in the user's script), every rank trains on its own shard of the rows and samples its own
chains; DDP all-reduces (averages) the parameter gradients of the contrastive loss, so all ranks
take the same optimizer step and end with identical parameters. Without a process group this is
a no-op wrapper around the single-process model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["DistributedContext", "distributed_context", "is_distributed"]


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised in this process."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@dataclass
class DistributedContext:
    """Rank information and the module that computes the loss (DDP-wrapped when distributed)."""

    rank: int
    world_size: int
    forward_model: nn.Module

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and writes checkpoints."""
        return self.rank == 0

    def shard(self, data: torch.Tensor) -> torch.Tensor:
        """This rank's rows: every ``world_size``-th row starting at ``rank``."""
        if self.world_size == 1:
            return data
        if data.shape[0] < self.world_size:
            raise ValueError(
                f"{data.shape[0]} training rows cannot be sharded over {self.world_size} processes"
            )
        return data[self.rank :: self.world_size]


def distributed_context(module: nn.Module, device: torch.device) -> DistributedContext:
    """Wrap ``module`` in DistributedDataParallel when a process group exists.

    Parameters
    ----------
    module : torch.nn.Module
    device : torch.device
        The device of this rank (``cuda:<local rank>`` with NCCL, the CPU with gloo).

    Returns
    -------
    DistributedContext
    """
    if not is_distributed():
        return DistributedContext(0, 1, module)
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device] if device.type == "cuda" else None
    # DDP broadcasts rank 0's parameters at construction, so all ranks start identical.
    wrapped = DistributedDataParallel(module, device_ids=device_ids)
    return DistributedContext(
        torch.distributed.get_rank(), torch.distributed.get_world_size(), wrapped
    )
