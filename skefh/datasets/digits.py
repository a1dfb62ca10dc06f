"""The 8x8 digits bundled with scikit-learn, in the skefh Bunch layout."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._common import as_labels, split_bunch

__all__ = ["load_digits"]

N_TEST = 450

_DESCRIPTION = (
    "Optical recognition of handwritten digits (UCI, via sklearn.datasets."
    "load_digits): 1,797 8x8 grayscale images in 10 classes, with pixel counts "
    "0..16 scaled to [0, 1]. The dataset has no official split; this one is a "
    "deterministic stratified split into 1,347 training and 450 test images "
    "(sklearn train_test_split, random_state=0)."
)


def load_digits() -> Bunch:
    """Load scikit-learn's 8x8 digits with a fixed train/test split.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` float32 (1797, 64) in [0, 1] and ``y`` int64 (1797,) with all
        images; ``X_train`` (1347, 64), ``y_train``, ``X_test`` (450, 64),
        ``y_test``; ``image_shape`` ``(1, 8, 8)``; ``target_names``
        ``["0", ..., "9"]``; ``source``; ``description``. All arrays are
        fresh copies.

    Notes
    -----
    The data ship with scikit-learn, so this loader needs no files. The
    split is ``train_test_split(test_size=450, stratify=y, random_state=0)``
    and is the same on every call.

    Examples
    --------
    >>> data = load_digits()
    >>> data.X_train.shape, data.X_test.shape, data.image_shape
    ((1347, 64), (450, 64), (1, 8, 8))
    >>> float(data.X.min()), float(data.X.max())
    (0.0, 1.0)
    """
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = as_labels(digits.target)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=N_TEST, stratify=y, random_state=0
    )
    return split_bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        image_shape=(1, 8, 8),
        target_names=[str(d) for d in range(10)],
        source="sklearn.datasets.load_digits",
        description=_DESCRIPTION,
        X=X,
        y=y,
    )
