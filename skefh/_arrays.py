"""Array helpers shared by the numpy-facing modules (metrics, plotting)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_numpy"]


def to_numpy(x: Any) -> np.ndarray:
    """``np.asarray`` that also accepts torch tensors.

    Tensors may require grad or live on an accelerator, which ``np.asarray`` refuses, so they
    are detached and moved to the host first.
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
