"""Helpers shared by the dataset loaders."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch


def scale_to_unit(pixels: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Return ``pixels / max_value`` as a new float32 array."""
    return np.asarray(pixels, dtype=np.float32) / np.float32(max_value)


def as_labels(labels) -> np.ndarray:
    """Return labels as a new, writable int64 array."""
    return np.array(labels, dtype=np.int64)


def check_label_range(labels: np.ndarray, n_classes: int, name: str) -> None:
    """Raise ValueError if ``labels`` holds values outside ``0..n_classes-1``."""
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{name}: labels must lie in 0..{n_classes - 1}, "
            f"found values from {labels.min()} to {labels.max()}"
        )


def split_bunch(
    *,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    image_shape: tuple[int, int, int],
    target_names: list[str],
    source: str,
    description: str,
    **extra,
) -> Bunch:
    """Build the Bunch returned by every train/test image loader."""
    return Bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        image_shape=tuple(int(s) for s in image_shape),
        target_names=list(target_names),
        source=str(source),
        description=description,
        **extra,
    )
