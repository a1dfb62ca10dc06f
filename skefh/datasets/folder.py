"""Loader for class-per-folder image trees."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._common import scale_to_unit

__all__ = ["load_image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
)


def _import_pillow():
    # Pillow is optional for the package as a whole; only this loader needs it.
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("load_image_folder needs Pillow: pip install pillow") from exc
    return Image


def _check_image_shape(image_shape, grayscale: bool) -> tuple[int, int, int] | None:
    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (channels, height, width), got {image_shape!r}")
    expected_channels = 1 if grayscale else 3
    if shape[0] != expected_channels:
        raise ValueError(
            f"image_shape {shape} has {shape[0]} channels but grayscale={grayscale} "
            f"produces {expected_channels}"
        )
    return shape


def list_image_files(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """Return sorted class names and the image files and labels below ``root``."""
    class_dirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not class_dirs:
        raise ValueError(f"{root}: no class sub-directories found (expected root/<class>/<image>)")
    files: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        images = sorted(
            p
            for p in class_dir.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        files.extend(images)
        labels.extend([label] * len(images))
    if not files:
        extensions = " ".join(sorted(IMAGE_EXTENSIONS))
        raise ValueError(
            f"{root}: no image files found in the class folders "
            f"({', '.join(p.name for p in class_dirs)}); recognised extensions: {extensions}"
        )
    return [p.name for p in class_dirs], files, labels


def _read_image(Image, path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """Read one image as a (channels, height, width) uint8 array."""
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None and image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except Exception as exc:  # Pillow raises many types for damaged files
        raise ValueError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from exc
    if pixels.ndim == 2:
        return pixels[np.newaxis]
    return np.moveaxis(pixels, -1, 0)


def load_image_folder(
    root: str | os.PathLike,
    image_shape: tuple[int, int, int] | None = None,
    grayscale: bool = False,
) -> Bunch:
    """Load a class-per-folder image tree.

    Parameters
    ----------
    root : str or path-like
        Directory laid out as ``root/<class>/**/<image>``. Each sub-directory
        is one class (searched recursively); hidden directories are ignored.
    image_shape : tuple of int (channels, height, width), optional
        If given, every image is resized to ``(height, width)`` with bilinear
        filtering; ``channels`` must be 1 if ``grayscale`` else 3. If None,
        all images must have the same size.
    grayscale : bool, default=False
        Convert images to 8-bit grayscale ("L") instead of "RGB".

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` float32 (n_images, C*H*W) in [0, 1], channel-planar (all red
        values, then green, then blue); ``y`` int64 class indices;
        ``image_shape`` (C, H, W); ``target_names`` the sorted class folder
        names (``y == i`` means ``target_names[i]``); ``filenames`` array of
        paths in the order of ``X``.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist or is not a directory.
    ValueError
        If there are no class folders or no images, images differ in size
        while ``image_shape`` is None, an image cannot be decoded (the message
        names the file), or ``image_shape`` is malformed.
    ImportError
        If Pillow is not installed.

    Notes
    -----
    Classes are the sorted folder names mapped to ``0 .. C-1``; files within
    a class are sorted by path, so the result is deterministic. Recognised
    extensions (case-insensitive): .png .jpg .jpeg .bmp .ppm .pgm .tif .tiff
    .webp. An empty class folder still gets an index.

    Examples
    --------
    >>> data = load_image_folder("images/train", image_shape=(3, 32, 32))  # doctest: +SKIP
    >>> data.X.shape[1]  # doctest: +SKIP
    3072
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    shape = _check_image_shape(image_shape, grayscale)
    Image = _import_pillow()
    target_names, files, labels = list_image_files(root)

    mode = "L" if grayscale else "RGB"
    target_size = None if shape is None else (shape[2], shape[1])  # Pillow wants (W, H)
    pixels: np.ndarray | None = None
    for index, path in enumerate(files):
        image = _read_image(Image, path, mode, target_size)
        if pixels is None:
            pixels = np.empty((len(files), *image.shape), dtype=np.uint8)
        elif image.shape != pixels.shape[1:]:
            first, this = pixels.shape[2:], image.shape[1:]
            raise ValueError(
                f"images have different sizes (height x width): {first[0]}x{first[1]} in "
                f"{files[0]} but {this[0]}x{this[1]} in {path}; pass "
                f"image_shape=({image.shape[0]}, H, W) to resize them all"
            )
        pixels[index] = image

    return Bunch(
        X=scale_to_unit(pixels.reshape(len(files), -1)),
        y=np.array(labels, dtype=np.int64),
        image_shape=tuple(int(s) for s in pixels.shape[1:]),
        target_names=target_names,
        filenames=np.array([str(p) for p in files]),
    )
