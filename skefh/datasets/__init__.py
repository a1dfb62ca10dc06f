"""Loaders for the image datasets used with skefh, from local files only.

Every ``load_*`` function returns a :class:`sklearn.utils.Bunch` of fresh
numpy arrays (float32 pixels in [0, 1], int64 labels) and never touches the
network. File-based loaders search ``data_home``, then ``$SKEFH_DATA``, then
``~/.skefh/data`` and ``~/scikit_learn_data``, then system directories where
distributions install datasets; when nothing is found the error lists every
directory searched and how to get the data.

This package deliberately imports neither torch nor torchvision.
"""

from .cifar import load_cifar10
from .digits import load_digits
from .folder import load_image_folder
from .idx import load_idx
from .mnist import load_fashion_mnist, load_mnist
from .registry import DATASETS, load_dataset

__all__ = [
    "DATASETS",
    "load_dataset",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_idx",
    "load_image_folder",
    "load_mnist",
]
