"""Image grids, sampling-chain figures, nearest-neighbour figures and training curves.

Pillow (PNG output) and matplotlib (:func:`plot_history`) are optional
dependencies, imported only inside the functions that need them
(``pip install pillow matplotlib`` or ``pip install 'skefh[plot]'``).
:func:`image_grid` needs only NumPy.

Image conventions used throughout:

* images are rows of length ``C*H*W`` in channel-planar order (all red
  values, then all green, then all blue, each plane row-major), i.e. the
  flattening of a ``(C, H, W)`` array as in PyTorch;
* ``image_shape`` is ``(C, H, W)`` with ``C`` in ``{1, 3}``; ``(H, W)`` is
  shorthand for ``(1, H, W)``;
* grids are ``uint8`` arrays of shape ``(H_total, W_total, C)``, always 3-D,
  also for grayscale (``C == 1``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import to_numpy as _to_numpy

__all__ = [
    "image_grid",
    "plot_chains",
    "plot_history",
    "plot_nearest_neighbours",
    "save_image_grid",
]

# Smallest on-screen image height (px) that save_image_grid upscales to by default.
_MIN_SAVED_HEIGHT = 28


def _require_pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(
            "writing PNG files needs Pillow: `pip install pillow` (or `pip install 'skefh[plot]'`)"
        ) from exc
    return Image


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "plot_history needs matplotlib: `pip install matplotlib` "
            "(or `pip install 'skefh[plot]'`)"
        ) from exc
    return Figure, FigureCanvasAgg


def _image_shape(image_shape: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise ValueError(f"image_shape must be (C, H, W) or (H, W); got {image_shape!r}") from None
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] < 1 or shape[2] < 1:
        raise ValueError(
            f"image_shape must be (C, H, W) with C in {{1, 3}}, or (H, W); got {image_shape!r}"
        )
    return shape


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _to_uint8(x: np.ndarray, value_range) -> np.ndarray:
    """Map ``x`` linearly so that lo -> 0 and hi -> 255, clipping outside."""
    if value_range is None:
        finite = x[np.isfinite(x)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    else:
        if len(value_range) != 2:
            raise ValueError(f"value_range must be (lo, hi); got {value_range!r}")
        lo, hi = float(value_range[0]), float(value_range[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(f"value_range must be finite with lo < hi; got {value_range!r}")
    # Constant images (hi == lo with automatic range) all map to 0.
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        y = (x - lo) * scale
    # Diverged samplers produce NaN/inf; show them as black/white rather than fail.
    y = np.nan_to_num(y, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def image_grid(
    images,
    image_shape,
    *,
    n_cols: int | None = None,
    padding: int = 2,
    value_range=None,
    pad_value: int = 255,
) -> np.ndarray:
    """Tile flattened images into one ``uint8`` picture.

    Parameters
    ----------
    images : array-like of shape (n, C*H*W)
        Images as channel-planar rows (NumPy array or torch tensor); any
        shape ``(n, ...)`` with ``C*H*W`` values per image is accepted.
        Images fill the grid row by row.
    image_shape : tuple of int
        ``(C, H, W)`` with ``C`` in ``{1, 3}``, or ``(H, W)`` for grayscale.
    n_cols : int, optional
        Images per grid row; default ``ceil(sqrt(n))``.  Rows:
        ``ceil(n / n_cols)``; unused cells are filled with ``pad_value``.
    padding : int, default=2
        Pixels between images and around the border.
    value_range : (float, float), optional
        ``(lo, hi)``: ``lo`` maps to 0 and ``hi`` to 255, values outside are
        clipped.  Default: the min and max of the finite values in
        ``images`` (a constant set maps to 0).
    pad_value : int, default=255
        Grey level of padding and empty cells (white by default, so that
        dark digits on black backgrounds stay separated).

    Returns
    -------
    ndarray of shape (H_total, W_total, C), dtype uint8
        ``H_total = n_rows * (H + padding) + padding`` and
        ``W_total = n_cols * (W + padding) + padding``.  Always 3-D, also
        for grayscale (``C == 1``); use ``grid[..., 0]`` for a 2-D array.

    Raises
    ------
    ValueError
        For an empty image set, a size that does not match ``image_shape``,
        or invalid ``n_cols``, ``padding``, ``value_range`` or ``pad_value``.

    Notes
    -----
    NaN is drawn as 0 and ``+inf``/``-inf`` as 255/0 so that figures of
    diverged chains can still be made.

    Examples
    --------
    >>> import numpy as np
    >>> grid = image_grid(np.zeros((5, 4)), (1, 2, 2), padding=1)
    >>> grid.shape  # 2 rows x 3 columns of 2x2 images
    (7, 10, 1)
    """
    c, h, w = _image_shape(image_shape)
    arr = np.asarray(_to_numpy(images), dtype=np.float64)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError("images is empty")
    n = arr.shape[0]
    arr = arr.reshape(n, -1)
    if arr.shape[1] != c * h * w:
        raise ValueError(
            f"each image has {arr.shape[1]} values but image_shape {(c, h, w)} needs {c * h * w}"
        )
    n_cols = math.ceil(math.sqrt(n)) if n_cols is None else _positive_int(n_cols, "n_cols")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer; got {padding!r}")
    if not 0 <= int(pad_value) <= 255:
        raise ValueError(f"pad_value must be in [0, 255]; got {pad_value!r}")
    n_rows = math.ceil(n / n_cols)

    # (n, C, H, W) -> (n, H, W, C): planar input, interleaved output as images expect.
    pixels = _to_uint8(arr, value_range).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    grid = np.full(
        (n_rows * (h + padding) + padding, n_cols * (w + padding) + padding, c),
        int(pad_value),
        dtype=np.uint8,
    )
    for i in range(n):
        row, col = divmod(i, n_cols)
        top = padding + row * (h + padding)
        left = padding + col * (w + padding)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def save_image_grid(path, images, image_shape, *, scale: int | None = None, **kwargs) -> Path:
    """Write an image grid to a PNG file.

    Parameters
    ----------
    path : str or path-like
        Output file; written as PNG whatever the suffix.  Missing parent
        directories are created.
    images : array-like of shape (n, C*H*W)
        Channel-planar image rows, as for :func:`image_grid`.
    image_shape : tuple of int
        ``(C, H, W)`` or ``(H, W)``.
    scale : int, optional
        Integer nearest-neighbour upscaling factor applied to the whole grid
        (padding included).  Default: the smallest factor making each image
        at least 28 px tall, so 8x8 digits are readable (factor 4).
    **kwargs
        Passed to :func:`image_grid` (``n_cols``, ``padding``,
        ``value_range``, ``pad_value``).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ImportError
        If Pillow is not installed.
    ValueError
        For invalid ``scale`` or any argument rejected by :func:`image_grid`.

    Notes
    -----
    The saved size is ``scale * H_total`` by ``scale * W_total`` pixels,
    with ``H_total``/``W_total`` as in :func:`image_grid`.  Nearest-neighbour
    upscaling keeps pixels sharp instead of blurring them.
    """
    Image = _require_pillow()
    _, h, _ = _image_shape(image_shape)
    grid = image_grid(images, image_shape, **kwargs)
    scale = max(1, math.ceil(_MIN_SAVED_HEIGHT / h)) if scale is None else scale
    scale = _positive_int(scale, "scale")
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    # Pillow wants (H, W) for grayscale ("L") and (H, W, 3) for "RGB".
    picture = Image.fromarray(np.ascontiguousarray(grid[..., 0] if grid.shape[2] == 1 else grid))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG")
    return path


def plot_chains(chains, image_shape, path, *, value_range=(-1, 1), **kwargs) -> Path:
    """Save sampling chains as a grid: one row per chain, one column per step.

    Parameters
    ----------
    chains : array-like of shape (n_chains, n_steps, C*H*W)
        Recorded chain states; step 0 (the first column) is the initialiser.
    image_shape : tuple of int
        ``(C, H, W)`` or ``(H, W)``.
    path : str or path-like
        Output PNG file.
    value_range : (float, float) or None, default=(-1, 1)
        Passed to :func:`image_grid`; the default suits data scaled to
        ``[-1, 1]``.  A fixed range keeps brightness comparable across
        steps, which an automatic range would not.
    **kwargs
        Passed to :func:`save_image_grid` (``scale``, ``padding``, ...).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If ``chains`` is not 3-D or its last axis does not match ``image_shape``.
    ImportError
        If Pillow is not installed.
    """
    arr = _to_numpy(chains)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            f"chains must have shape (n_chains, n_steps, D) with no empty axis; got {arr.shape}"
        )
    n_chains, n_steps, d = arr.shape
    return save_image_grid(
        path,
        arr.reshape(n_chains * n_steps, d),
        image_shape,
        n_cols=n_steps,
        value_range=value_range,
        **kwargs,
    )


def plot_nearest_neighbours(
    queries, neighbours, image_shape, path, *, value_range=None, **kwargs
) -> Path:
    """Save queries next to their nearest neighbours: one row per query.

    Parameters
    ----------
    queries : array-like of shape (n, C*H*W)
        Query images (e.g. model samples).
    neighbours : array-like of shape (n, k, C*H*W)
        The ``k`` neighbours of each query (e.g. training images found by
        :func:`skefh.metrics.nearest_neighbours`), nearest first.
    image_shape : tuple of int
        ``(C, H, W)`` or ``(H, W)``.
    path : str or path-like
        Output PNG file.
    value_range : (float, float), optional
        Passed to :func:`image_grid`; default: min/max over queries and
        neighbours together, so both share one grey scale.
    **kwargs
        Passed to :func:`save_image_grid` (``scale``, ``padding``, ...).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If the shapes are inconsistent.
    ImportError
        If Pillow is not installed.
    """
    q = _to_numpy(queries)
    nb = _to_numpy(neighbours)
    if q.ndim != 2 or q.shape[0] == 0:
        raise ValueError(f"queries must have shape (n, D) with n >= 1; got {q.shape}")
    if nb.ndim != 3 or nb.shape[0] != q.shape[0] or nb.shape[2] != q.shape[1] or nb.shape[1] == 0:
        raise ValueError(
            f"neighbours must have shape (n, k, D) = ({q.shape[0]}, k, {q.shape[1]}) "
            f"with k >= 1; got {nb.shape}"
        )
    n, k, d = nb.shape
    rows = np.concatenate([q[:, None, :], nb], axis=1).reshape(n * (k + 1), d)
    return save_image_grid(
        path, rows, image_shape, n_cols=k + 1, value_range=value_range, **kwargs
    )


def _as_float(value: Any) -> float | None:
    """``float(value)`` for real scalars (incl. 0-d arrays/tensors), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "shape", None) == () and not isinstance(value, (str, bytes)):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return None


def plot_history(history, path=None, keys=None):
    """Plot training-history entries against the update counter.

    Parameters
    ----------
    history : sequence of mapping
        One record per training update, e.g. ``{"update": 10,
        "energy_data": -3.1, "energy_samples": -2.7, "energy_gap": -0.4,
        "grad_norm": 1.2, "seconds": 0.05}``.
    path : str or path-like, optional
        If given, the figure is saved there (format from the suffix);
        missing parent directories are created.
    keys : str or sequence of str, optional
        Entries to plot, one subplot each, top to bottom.  Default: every
        numeric entry of the first record except ``"update"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, with one axis per key (shared x axis).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``history`` is empty, no numeric entry is found, or a requested
        key appears in no record.
    TypeError
        If a record is not a mapping.

    Notes
    -----
    The x value of a record is its ``"update"`` entry, or its position in
    ``history`` when that entry is absent.  Missing and non-finite values
    (NaN, inf) are skipped, so a diverging run still plots.  The figure is
    drawn on a :class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`
    directly, without pyplot, so matplotlib's global backend and pyplot's
    figure registry are left untouched (no figures leak in long sweeps).

    Examples
    --------
    >>> hist = [{"update": i, "energy_gap": 1.0 / (i + 1), "grad_norm": 2.0}
    ...         for i in range(5)]
    >>> fig = plot_history(hist)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['energy_gap', 'grad_norm']
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    records = list(history)
    if not records:
        raise ValueError("history is empty")
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"history[{i}] must be a mapping; got {type(record).__name__}")

    if keys is None:
        keys = [k for k, v in records[0].items() if k != "update" and _as_float(v) is not None]
        if not keys:
            raise ValueError("the first history record has no numeric entries to plot")
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            raise ValueError("keys is empty")
        missing = [k for k in keys if not any(k in record for record in records)]
        if missing:
            available = sorted({str(k) for record in records for k in record})
            raise ValueError(f"keys {missing} appear in no history record; available: {available}")

    has_update = any(_as_float(record.get("update")) is not None for record in records)
    fig = Figure(figsize=(6.4, 0.6 + 1.8 * len(keys)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        xs, ys = [], []
        for i, record in enumerate(records):
            y = _as_float(record.get(key))
            if y is None or not math.isfinite(y):
                continue
            x = _as_float(record.get("update"))
            xs.append(i if x is None else x)
            ys.append(y)
        ax.plot(xs, ys, linewidth=1.0, marker="." if len(xs) <= 50 else None)
        ax.set_ylabel(str(key))
        ax.grid(True, alpha=0.3)
        if not xs:
            ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center")
    axes[-1].set_xlabel("update" if has_update else "record")
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig
