"""Resolution of the 'auto' settings: image shape, network kind, device."""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch

__all__ = [
    "resolve_auto_params", "default_table_updates", "resolve_image_shape", "describe_image_shape", "resolve_device",
    "DeviceWarning", "ByImageSize",
]


class DeviceWarning(UserWarning):
    """The requested device is unavailable here; another one is used."""


def _square_side(n: int) -> Optional[int]:
    side = math.isqrt(n)
    return side if side * side == n else None


def resolve_image_shape(image_shape, n_features: int, has_feature_names: bool = False) -> Optional[tuple]:
    """The ``(C, H, W)`` a row of ``n_features`` values is viewed as, or None for tabular data.

    Parameters
    ----------
    image_shape : "auto", None or tuple of 3 ints
        "auto" reads rows of H*H values (H >= 8) as 1xHxH and rows of 3*H*H values as 3xHxH,
        unless the columns have names; any other length is tabular. An explicit shape must
        match ``n_features``.
    n_features : int
    has_feature_names : bool, default=False
        Whether X came with column names (a DataFrame: ``feature_names_in_``). Named columns
        are features, not pixels: "auto" resolves to None whatever their number.

    Returns
    -------
    tuple of int or None
    """
    if image_shape is None:
        return None
    if isinstance(image_shape, str):
        if image_shape != "auto":
            raise ValueError(f"image_shape must be 'auto', None or (C, H, W), got {image_shape!r}")
        if has_feature_names:
            return None
        side = _square_side(n_features)
        if side is not None and side >= 8:
            return (1, side, side)
        if n_features % 3 == 0:
            side = _square_side(n_features // 3)
            if side is not None and side >= 8:
                return (3, side, side)
        return None
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be 'auto', None or (C, H, W), got {image_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape!r}")
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={shape} needs rows of {math.prod(shape)} values, "
            f"but X has {n_features} features"
        )
    return shape


def describe_image_shape(resolved, n_features: int, has_feature_names: bool = False) -> str:
    """One line saying what ``image_shape="auto"`` resolved to and why (for ``verbose``)."""
    if resolved is not None:
        c, h, w = resolved
        return (
            f"image_shape='auto' -> {tuple(resolved)}: rows of {n_features} values read as {c}x{h}x{w} "
            "images (the data range mapped to [-1, 1]); pass image_shape=None for tabular data"
        )
    why = "X has named columns" if has_feature_names else f"rows of {n_features} values are not HxH or 3xHxH"
    return (
        f"image_shape='auto' -> None: tabular data ({why}; the rows whitened, see scaling); "
        "pass image_shape=(C, H, W) for images"
    )


def resolve_device(device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA falls back with a warning.

    Parameters
    ----------
    device : "auto", str or torch.device

    Returns
    -------
    torch.device
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={device!r} was requested but CUDA is not available here; using the CPU",
            DeviceWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return resolved


def resolve_auto_params(params: dict, auto_defaults: dict, image_shape: Optional[tuple],
                        n_rows: Optional[int] = None) -> dict:
    """``params`` with each "auto" of ``auto_defaults`` (``{name: (for images, for tabular
    data)}``) replaced by the value for the data's kind, and each :class:`ByImageSize` rule by
    its value for ``image_shape``; an image value may be a function of the ``(C, H, W)`` shape,
    a tabular one a function of the number of training rows and the batch size (``n_rows``
    None: a pickle that predates the rule, resolved as 1,000 rows)."""
    resolved = dict(params)
    for name, (for_images, for_tables) in auto_defaults.items():
        if isinstance(resolved[name], str) and resolved[name] == "auto":
            if image_shape is None:
                resolved[name] = (
                    for_tables(1000 if n_rows is None else n_rows, resolved["batch_size"])
                    if callable(for_tables) else for_tables
                )
            else:
                resolved[name] = for_images(tuple(image_shape)) if callable(for_images) else for_images
    for name, value in resolved.items():
        if isinstance(value, ByImageSize):
            resolved[name] = value(image_shape)
    return resolved


def default_table_updates(most: int, passes: int):
    """A ``max_iter`` "auto" rule for tabular data: ``passes`` passes over the training rows,
    at most ``most`` updates. A thousand 2-D rows get their fill of updates; a table of a
    hundred rows (wine) overfits long before it (see the likelihood page of the docs)."""

    def updates(n_rows: int, batch_size: int) -> int:
        return int(min(most, max(1, math.ceil(passes * n_rows / batch_size))))

    updates.__doc__ = f"{passes} passes over the rows, at most {most} updates"
    return updates


#: Pixels per channel from which an image counts as large (``ByImageSize``).
LARGE_IMAGE_PIXELS = 16 * 16


class ByImageSize:
    """A parameter value that depends on the size of the images the estimator is fitted on.

    ``large`` for images of at least 16x16 pixels (Fashion-MNIST, CIFAR-10), ``small`` for
    smaller ones (scikit-learn's 8x8 digits) and for tabular data. It is resolved in ``fit``,
    when the image shape is known, so that one estimator (or preset) suits both sizes: the
    ``density`` preset's NN-EFH needs larger steps on noisier data on 784 pixels than on 64,
    and on 8x8 digits a coupling and annealed restarts that 28x28 images were not measured with
    (the likelihood page of the docs).

    Parameters
    ----------
    small : int, float, bool or str
        The value for images under 16x16 pixels and for tabular data.
    large : int, float, bool or str
        The value for images of 16x16 pixels or more.

    Notes
    -----
    Each value is checked against what its parameter accepts in ``fit``, for the data it is
    used on: a value that only the other image size would use is never refused.

    Examples
    --------
    >>> from skefh.presets import ByImageSize
    >>> rule = ByImageSize(small=0.002, large=0.01)
    >>> rule((1, 8, 8)), rule((1, 28, 28)), rule(None)
    (0.002, 0.01, 0.002)
    >>> ByImageSize(small="bounded", large="paper")((1, 28, 28))
    'paper'
    """

    def __init__(self, small, large):
        for name, value in (("small", small), ("large", large)):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (isinstance(value, (bool, str)) or (number and math.isfinite(value))):
                raise ValueError(f"ByImageSize's {name} must be a finite number, a bool or a string, "
                                 f"got {value!r}")
        self.small = small
        self.large = large

    def __call__(self, image_shape: Optional[tuple]):
        """The value for images of ``image_shape`` (``(C, H, W)``; None for tabular data)."""
        if image_shape is None:
            return self.small
        return self.large if image_shape[1] * image_shape[2] >= LARGE_IMAGE_PIXELS else self.small

    def _key(self) -> tuple:
        # The types too: True == 1 and 1 == 1.0, but a rule giving True is not one giving 1.
        return (type(self.small), self.small, type(self.large), self.large)

    def __repr__(self) -> str:
        return f"ByImageSize(small={self.small!r}, large={self.large!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ByImageSize) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((ByImageSize, self._key()))


def default_image_updates(large: int, small: int = 1000) -> ByImageSize:
    """A ``max_iter`` "auto" rule: ``large`` updates for images of at least 16x16 pixels,
    ``small`` for smaller ones (scikit-learn's 8x8 digits), whose updates are cheap but whose
    few rows need fewer of them."""
    return ByImageSize(small=small, large=large)
