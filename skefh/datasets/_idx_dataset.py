"""Reading a directory of MNIST-style IDX files into a train/test Bunch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from . import _paths
from ._common import as_labels, check_label_range, scale_to_unit, split_bunch
from .idx import load_idx

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


def expected_files_text() -> str:
    """Describe the four expected file names for error messages."""
    return ", ".join(f"{name}[.gz]" for name in IDX_FILES)


def _read_images(path: Path) -> np.ndarray:
    images = load_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{path}: expected a 3-D uint8 IDX image file (magic 0x00000803), "
            f"found a {images.ndim}-D {images.dtype} array"
        )
    return images


def _read_labels(path: Path, n_classes: int) -> np.ndarray:
    labels = load_idx(path)
    if labels.ndim != 1:
        raise ValueError(
            f"{path}: expected a 1-D IDX label file (magic 0x00000801), "
            f"found a {labels.ndim}-D array"
        )
    labels = as_labels(labels)
    check_label_range(labels, n_classes, str(path))
    return labels


def _read_split(directory: Path, images_name: str, labels_name: str, n_classes: int):
    images_path = _paths.resolve_file(directory, images_name)
    labels_path = _paths.resolve_file(directory, labels_name)
    images = _read_images(images_path)
    labels = _read_labels(labels_path, n_classes)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; the counts must match"
        )
    return images, labels


def load_idx_directory(directory: Path, target_names: list[str], description: str) -> Bunch:
    """Read the four IDX files in ``directory`` into a train/test Bunch."""
    train_images, y_train = _read_split(directory, TRAIN_IMAGES, TRAIN_LABELS, len(target_names))
    test_images, y_test = _read_split(directory, TEST_IMAGES, TEST_LABELS, len(target_names))
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(
            f"{directory}: training images are {train_images.shape[1:]} pixels but test "
            f"images are {test_images.shape[1:]}"
        )
    n_pixels = int(np.prod(train_images.shape[1:]))
    return split_bunch(
        X_train=scale_to_unit(train_images.reshape(-1, n_pixels)),
        y_train=y_train,
        X_test=scale_to_unit(test_images.reshape(-1, n_pixels)),
        y_test=y_test,
        image_shape=(1, *train_images.shape[1:]),
        target_names=target_names,
        source=str(directory),
        description=description,
    )
