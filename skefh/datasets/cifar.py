"""Loader for CIFAR-10 from its python, binary or image-folder layouts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from . import _paths
from ._common import as_labels, check_label_range, scale_to_unit, split_bunch
from ._safe_pickle import restricted_load
from .folder import load_image_folder

__all__ = ["load_cifar10"]

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
IMAGE_SHAPE = (3, 32, 32)
PIXELS_PER_IMAGE = 3 * 32 * 32
BINARY_RECORD_SIZE = 1 + PIXELS_PER_IMAGE

PYTHON_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
PYTHON_TEST_FILE = "test_batch"
PYTHON_META_FILE = "batches.meta"
BINARY_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
BINARY_TEST_FILE = "test_batch.bin"
BINARY_META_FILE = "batches.meta.txt"

CIFAR10_SUBDIRECTORIES = (
    "cifar-10-batches-py", "cifar-10-batches-bin", "cifar-10", "cifar10", "CIFAR10",
)  # fmt: skip

_DESCRIPTION = (
    "CIFAR-10 (Krizhevsky, 2009): 32x32 colour images in 10 classes, with the "
    "official split of 50,000 training and 10,000 test images. Rows are "
    "channel-planar (1024 red, then 1024 green, then 1024 blue values, each "
    "plane row-major) with pixels scaled to [0, 1]."
)


def _all_files(directory: Path, names) -> bool:
    return all((directory / name).is_file() for name in names)


def _has_class_folders(directory: Path) -> bool:
    return directory.is_dir() and any(
        p.is_dir() and not p.name.startswith(".") for p in directory.iterdir()
    )


def detect_layout(directory: Path) -> str | None:
    """Return "python", "binary" or "folder" for a CIFAR-10 directory, else None."""
    if not directory.is_dir():
        return None
    if _all_files(directory, (*PYTHON_TRAIN_FILES, PYTHON_TEST_FILE)):
        return "python"
    if _all_files(directory, (*BINARY_TRAIN_FILES, BINARY_TEST_FILE)):
        return "binary"
    if _has_class_folders(directory / "train") and _has_class_folders(directory / "test"):
        return "folder"
    return None


def _lookup(batch: dict, key: str, path: Path):
    # Python 2 pickles read with encoding="bytes" (or rewritten by some tools)
    # have bytes keys; ones written by Python 3 have str keys.
    for candidate in (key, key.encode()):
        if candidate in batch:
            return batch[candidate]
    raise ValueError(f"{path}: missing key {key!r} (found keys {sorted(map(str, batch))})")


def _read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as file:
        batch = restricted_load(file, str(path))
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    data = np.asarray(_lookup(batch, "data", path))
    labels = as_labels(_lookup(batch, "labels", path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS_PER_IMAGE:
        raise ValueError(
            f"{path}: 'data' must be a uint8 array of shape (n, {PIXELS_PER_IMAGE}), "
            f"found {data.dtype} {data.shape}"
        )
    if labels.shape != (data.shape[0],):
        raise ValueError(
            f"{path}: {data.shape[0]} images but {labels.size} labels; the counts must match"
        )
    return data, labels


def _read_python_names(directory: Path) -> list[str]:
    path = directory / PYTHON_META_FILE
    if not path.is_file():
        return list(CIFAR10_CLASSES)
    with open(path, "rb") as file:
        meta = restricted_load(file, str(path))
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(meta).__name__}")
    names = _lookup(meta, "label_names", path)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = path.read_bytes()
    if not raw or len(raw) % BINARY_RECORD_SIZE:
        raise ValueError(
            f"{path}: size {len(raw)} bytes is not a positive multiple of the "
            f"{BINARY_RECORD_SIZE}-byte record size (1 label byte + {PIXELS_PER_IMAGE} "
            "pixel bytes); the file is truncated or not a CIFAR-10 binary batch"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BINARY_RECORD_SIZE)
    return records[:, 1:].copy(), as_labels(records[:, 0])


def _read_binary_names(directory: Path) -> list[str]:
    path = directory / BINARY_META_FILE
    if not path.is_file():
        return list(CIFAR10_CLASSES)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _load_batches(directory, train_files, test_file, read_batch, target_names) -> Bunch:
    train = [read_batch(directory / name) for name in train_files]
    test_pixels, y_test = read_batch(directory / test_file)
    y_train = np.concatenate([labels for _, labels in train])
    for labels, name in ((y_train, train_files[0]), (y_test, test_file)):
        check_label_range(labels, len(target_names), str(directory / name))
    return split_bunch(
        X_train=scale_to_unit(np.concatenate([pixels for pixels, _ in train])),
        y_train=y_train,
        X_test=scale_to_unit(test_pixels),
        y_test=y_test,
        image_shape=IMAGE_SHAPE,
        target_names=target_names,
        source=str(directory),
        description=_DESCRIPTION,
    )


def _load_folders(directory: Path) -> Bunch:
    train = load_image_folder(directory / "train")
    test = load_image_folder(directory / "test")
    if train.target_names != test.target_names:
        raise ValueError(
            f"{directory}: class folders differ between train/ {train.target_names} "
            f"and test/ {test.target_names}"
        )
    if train.image_shape != test.image_shape:
        raise ValueError(
            f"{directory}: train images are {train.image_shape} but test images are "
            f"{test.image_shape}"
        )
    return split_bunch(
        X_train=train.X,
        y_train=train.y,
        X_test=test.X,
        y_test=test.y,
        image_shape=train.image_shape,
        target_names=train.target_names,
        source=str(directory),
        description=_DESCRIPTION,
    )


def load_cifar10(data_home: str | os.PathLike | None = None) -> Bunch:
    """Load CIFAR-10 from local files.

    Parameters
    ----------
    data_home : str or path-like, optional
        A directory in one of the supported layouts, or a root containing
        ``cifar-10-batches-py/``, ``cifar-10-batches-bin/``, ``cifar-10/``,
        ``cifar10/`` or ``CIFAR10/``.

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train`` float32 (50000, 3072) and ``X_test`` float32 (10000, 3072)
        in [0, 1], channel-planar: columns 0-1023 are the red plane, then
        green, then blue; ``y_train``, ``y_test`` int64; ``image_shape``
        ``(3, 32, 32)``; ``target_names`` (from the metadata file when
        present, else the standard names; folder names for the folder
        layout); ``source`` (the directory read); ``description``.

    Raises
    ------
    FileNotFoundError
        If no searched directory holds CIFAR-10. The message lists the
        directories searched and where to get the data.
    ValueError
        If a file is truncated, corrupt, inconsistent, or a pickle asks for
        anything other than numpy arrays and plain containers.

    Notes
    -----
    Supported layouts of a directory, detected in this order:

    1. python version: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``
       and optionally ``batches.meta`` (pickled dicts);
    2. binary version: ``data_batch_1.bin`` .. ``data_batch_5.bin``,
       ``test_batch.bin`` (3073-byte records: 1 label byte, 3072 pixel bytes)
       and optionally ``batches.meta.txt``;
    3. image folders: ``train/<class>/*.png`` and ``test/<class>/*.png``
       (read with :func:`load_image_folder`; all images must share one size).

    Directories searched, first match wins: ``data_home`` itself, then the
    sub-directories listed above below it; ``$SKEFH_DATA`` likewise;
    then the sub-directories of ``~/.skefh/data`` and ``~/scikit_learn_data``.
    There is no system location, and nothing is downloaded.

    .. warning:: The python version is a pickle, and unpickling untrusted
       files can execute code. This loader uses a restricted unpickler that
       refuses every global except those needed to rebuild numpy arrays, but
       still only load files from sources you trust.

    Examples
    --------
    >>> data = load_cifar10()  # doctest: +SKIP
    >>> data.X_train.shape, data.image_shape  # doctest: +SKIP
    ((50000, 3072), (3, 32, 32))
    """
    directory, searched = _paths.find_data_directory(
        lambda d: detect_layout(d) is not None, CIFAR10_SUBDIRECTORIES, data_home=data_home
    )
    if directory is None:
        raise FileNotFoundError(
            "CIFAR-10 not found. Looked for the python version "
            f"({', '.join(PYTHON_TRAIN_FILES)}, {PYTHON_TEST_FILE}), the binary version "
            f"({', '.join(BINARY_TRAIN_FILES)}, {BINARY_TEST_FILE}) or train/<class>/ and "
            f"test/<class>/ image folders in:\n{_paths.format_searched(searched)}\n"
            "To get the data: download the python or binary version from "
            "https://www.cs.toronto.edu/~kriz/cifar.html and extract it into one of the "
            "directories above (the archive creates cifar-10-batches-py/ or "
            "cifar-10-batches-bin/); or pass data_home=<directory>, or set the "
            "SKEFH_DATA environment variable to the directory you extracted it into."
        )
    layout = detect_layout(directory)
    if layout == "python":
        return _load_batches(
            directory, PYTHON_TRAIN_FILES, PYTHON_TEST_FILE, _read_python_batch,
            _read_python_names(directory),
        )  # fmt: skip
    if layout == "binary":
        return _load_batches(
            directory, BINARY_TRAIN_FILES, BINARY_TEST_FILE, _read_binary_batch,
            _read_binary_names(directory),
        )  # fmt: skip
    return _load_folders(directory)
