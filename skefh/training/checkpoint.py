"""Atomic checkpoint files that load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

#: Marker stored in every checkpoint, checked on load.
CHECKPOINT_FORMAT = "skefh-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or belongs to another model or configuration."""


def save_checkpoint(state: dict, path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    state : dict
        Tensors and plain Python values only.
    path : str or path-like

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, **state}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Uses ``torch.load(weights_only=True)``: nothing in the file can run code.

    Raises
    ------
    CheckpointError
        The file is missing, is not a skefh checkpoint, or is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt or not a torch file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a skefh checkpoint (expected format {CHECKPOINT_FORMAT!r})"
        )
    return state
