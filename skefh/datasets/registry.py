"""Load a dataset by name (for scripts and the ``skefh`` command)."""

from __future__ import annotations

from .cifar import load_cifar10
from .digits import load_digits
from .folder import load_image_folder
from .mnist import load_fashion_mnist, load_mnist

__all__ = ["DATASETS", "load_dataset"]

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "image-folder")


def load_dataset(name: str, data_home=None):
    """Load a dataset by name, with train and test splits.

    Parameters
    ----------
    name : {"digits", "fashion-mnist", "mnist", "cifar10", "image-folder"}
        "image-folder" reads ``data_home/train/<class>/*`` and ``data_home/test/<class>/*``.
    data_home : str or path-like, optional
        Where to look first (see the individual loaders for the search order).

    Returns
    -------
    sklearn.utils.Bunch
        With ``X_train``, ``y_train``, ``X_test``, ``y_test``, ``image_shape``,
        ``target_names``.
    """
    key = name.lower().replace("_", "-")
    if key == "digits":
        return load_digits()
    if key in ("fashion-mnist", "fmnist"):
        return load_fashion_mnist(data_home)
    if key == "mnist":
        return load_mnist(data_home)
    if key in ("cifar10", "cifar-10"):
        return load_cifar10(data_home)
    if key == "image-folder":
        if data_home is None:
            raise ValueError("the image-folder dataset needs data_home (a folder with train/ and test/)")
        from pathlib import Path

        from sklearn.utils import Bunch

        train = load_image_folder(Path(data_home) / "train")
        test = load_image_folder(Path(data_home) / "test")
        return Bunch(X_train=train.X, y_train=train.y, X_test=test.X, y_test=test.y,
                     image_shape=train.image_shape, target_names=train.target_names, source=str(data_home))
    raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
