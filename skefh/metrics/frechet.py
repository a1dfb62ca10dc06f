"""Fréchet distance between Gaussian fits of two feature sets, and FID.

The Fréchet (2-Wasserstein) distance between N(m_a, S_a) and N(m_b, S_b) is

    ||m_a - m_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2}).

The Fréchet Inception Distance (FID) is this quantity computed on a specific
network's features.  Here :func:`fid` accepts any feature extractor; only the
``"inception"`` path (torch-fidelity's TensorFlow-compatible Inception-v3 with
user-supplied weights) yields numbers that can be compared with published FIDs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._arrays import to_numpy as _to_numpy

__all__ = ["FIDResult", "fid", "frechet_distance", "frechet_distance_from_stats"]

_INCEPTION_NAME = "inception-v3-compat"
_INCEPTION_HELP = (
    "feature_extractor='inception' needs (1) the optional package torch-fidelity "
    "(`pip install torch-fidelity`) and (2) a local copy of the Inception-v3 FID weights "
    "file, passed as `weights_path=` (torch-fidelity's "
    "'weights-inception-2015-12-05-6726825d.pth'). skefh never downloads weights. "
    "Alternatively pass a callable feature extractor, which gives an 'FID-<name>' that "
    "is not comparable with published FIDs."
)


def _feature_matrix(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 (n, d) array with n >= 2."""
    arr = np.asarray(_to_numpy(x), dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(
            f"{name} needs at least 2 samples to estimate a covariance; got {arr.shape[0]}"
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Unbiased (ddof=1) covariance, as in the reference FID implementations.
    # atleast_2d because np.cov returns a 0-d array for a single feature.
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """Squared Fréchet distance between two Gaussians given by their moments.

    Parameters
    ----------
    mu_a, mu_b : array-like of shape (d,)
        Means.  Scalars are accepted for ``d == 1``.
    sigma_a, sigma_b : array-like of shape (d, d)
        Covariance matrices (symmetric positive semi-definite).  Scalars are
        accepted for ``d == 1``.

    Returns
    -------
    float
        ``||mu_a - mu_b||^2 + tr(sigma_a) + tr(sigma_b)
        - 2 tr((sigma_a sigma_b)^{1/2})``, clipped below at 0.

    Raises
    ------
    ValueError
        If a mean is not 1-D, a covariance is not square, the dimensions
        disagree, or any entry is not finite.

    Notes
    -----
    ``sigma_a @ sigma_b`` is similar to the PSD matrix
    ``sigma_a^{1/2} sigma_b sigma_a^{1/2}``, so its eigenvalues are real and
    non-negative in exact arithmetic and ``tr((sigma_a sigma_b)^{1/2})`` is the
    sum of their square roots.  They are computed with :func:`numpy.linalg.eigvals`
    in float64; rounding can leave tiny imaginary parts or negative real parts,
    so the real parts are clipped at 0 before the square root.  This avoids
    :func:`scipy.linalg.sqrtm` (whose ``disp`` argument is deprecated) and the
    complex-valued square roots it can return for singular covariances.  The
    final value is clipped at 0 because a squared distance cannot be negative;
    slightly negative results only arise from rounding.

    Examples
    --------
    >>> frechet_distance_from_stats([0.0], [[1.0]], [3.0], [[4.0]])  # 3**2 + (1 - 2)**2
    10.0
    """
    mu_a = np.atleast_1d(np.asarray(_to_numpy(mu_a), dtype=np.float64))
    mu_b = np.atleast_1d(np.asarray(_to_numpy(mu_b), dtype=np.float64))
    sigma_a = np.atleast_2d(np.asarray(_to_numpy(sigma_a), dtype=np.float64))
    sigma_b = np.atleast_2d(np.asarray(_to_numpy(sigma_b), dtype=np.float64))
    for name, mu in (("mu_a", mu_a), ("mu_b", mu_b)):
        if mu.ndim != 1:
            raise ValueError(f"{name} must be 1-D; got shape {mu.shape}")
    for name, sigma in (("sigma_a", sigma_a), ("sigma_b", sigma_b)):
        if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
            raise ValueError(f"{name} must be a square matrix; got shape {sigma.shape}")
    d = mu_a.shape[0]
    if not (mu_b.shape[0] == d and sigma_a.shape[0] == d and sigma_b.shape[0] == d):
        raise ValueError(
            "dimension mismatch: mu_a "
            f"{mu_a.shape}, sigma_a {sigma_a.shape}, mu_b {mu_b.shape}, sigma_b {sigma_b.shape}"
        )
    for name, arr in (("mu_a", mu_a), ("sigma_a", sigma_a), ("mu_b", mu_b), ("sigma_b", sigma_b)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")

    diff = mu_a - mu_b
    eigenvalues = np.linalg.eigvals(sigma_a @ sigma_b)
    trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues.real, 0.0, None)))
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def frechet_distance(features_a, features_b) -> float:
    """Squared Fréchet distance between Gaussians fitted to two feature sets.

    Parameters
    ----------
    features_a : array-like of shape (n_a, d)
        First feature set, one sample per row (NumPy array or torch tensor).
    features_b : array-like of shape (n_b, d)
        Second feature set with the same number of columns.

    Returns
    -------
    float
        ``||m_a - m_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^{1/2})`` where
        ``m`` are the sample means and ``S`` the unbiased (``ddof=1``) sample
        covariances.  Always >= 0; 0 for identical sets.

    Raises
    ------
    ValueError
        If an input is not 2-D, has fewer than 2 rows, contains non-finite
        values, or the two sets differ in dimensionality.

    See Also
    --------
    frechet_distance_from_stats : the same distance from precomputed moments.
    fid : the distance on features of a (chosen) network.

    Notes
    -----
    Computed in float64 with NumPy; see :func:`frechet_distance_from_stats`
    for how the matrix square root is handled.  With fewer samples than
    dimensions the covariances are singular; the distance is still defined
    but is a noisy, biased estimate.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 3))
    >>> round(frechet_distance(x, x), 8)
    0.0
    >>> round(frechet_distance(x, x + 1.0), 6)  # mean shift of 1 in each of 3 dims
    3.0
    """
    a = _feature_matrix(features_a, "features_a")
    b = _feature_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feature sets differ in dimensionality: {a.shape[1]} (features_a) "
            f"vs {b.shape[1]} (features_b)"
        )
    mu_a, sigma_a = _gaussian_stats(a)
    mu_b, sigma_b = _gaussian_stats(b)
    return frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b)


@dataclass(frozen=True)
class FIDResult:
    """Outcome of :func:`fid`.

    Attributes
    ----------
    value : float
        Squared Fréchet distance between the Gaussian fits of the features.
    extractor : str
        Name of the feature extractor (``"inception-v3-compat"`` on the
        Inception path, otherwise the callable's ``__name__``).
    comparable_to_published : bool
        True only for the torch-fidelity Inception-v3 path.  Anything else is
        an "FID-<extractor>" on a different scale from published FIDs.
    n_a, n_b : int
        Number of images in each set.
    """

    value: float
    extractor: str
    comparable_to_published: bool
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain ``dict`` (e.g. for JSON logs)."""
        return dataclasses.asdict(self)


def _image_matrix(x: Any, name: str) -> np.ndarray:
    # Keep the caller's dtype: a torch extractor with float32 weights would
    # break if every batch were silently promoted to float64.
    arr = _to_numpy(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_images, n_pixels); got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 images; got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _extract(
    extractor: Callable[[np.ndarray], Any], images: np.ndarray, batch_size: int, name: str
) -> np.ndarray:
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        feats = np.asarray(_to_numpy(extractor(batch)), dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] != batch.shape[0]:
            raise ValueError(
                f"feature extractor must map a ({batch.shape[0]}, D) batch to "
                f"({batch.shape[0]}, F) features; got shape {feats.shape} for {name}"
            )
        chunks.append(feats)
    return np.concatenate(chunks, axis=0)


def _check_inception_shape(image_shape, n_pixels: int) -> tuple[int, int, int]:
    if image_shape is None:
        raise ValueError(
            "feature_extractor='inception' needs image_shape=(3, H, W) to unflatten the rows"
        )
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or shape[0] != 3 or min(shape) < 1:
        raise ValueError(
            f"image_shape must be (3, H, W) for Inception-v3 (RGB); got {image_shape}. "
            "Grayscale images can be repeated over 3 channels first."
        )
    if shape[0] * shape[1] * shape[2] != n_pixels:
        raise ValueError(
            f"image_shape {shape} holds {shape[0] * shape[1] * shape[2]} values but the "
            f"image rows have {n_pixels}"
        )
    return shape


def _require_inception(weights_path) -> tuple[type, Path]:
    """Check the Inception prerequisites before any expensive work; never download."""
    if weights_path is None:
        raise ValueError(_INCEPTION_HELP)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as exc:
        raise ImportError(_INCEPTION_HELP) from exc
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"weights_path {str(path)!r} is not a file. {_INCEPTION_HELP}")
    return FeatureExtractorInceptionV3, path


def _inception_extractor(
    extractor_cls: type, path: Path, image_shape: tuple[int, int, int], device
) -> Callable[[np.ndarray], np.ndarray]:
    """Build a batch function: rows in [0, 1] -> 2048-d Inception pool features."""
    import torch

    # Passing the path explicitly stops torch-fidelity from downloading weights.
    model = extractor_cls(_INCEPTION_NAME, ["2048"], feature_extractor_weights_path=str(path))
    model = model.to(device).eval()

    def inception_v3(batch: np.ndarray) -> np.ndarray:
        # torch-fidelity expects uint8 NCHW images in [0, 255], as produced by
        # saving images to 8-bit files; rounding matches that quantisation.
        pixels = np.clip(np.rint(np.asarray(batch, dtype=np.float64) * 255.0), 0, 255)
        pixels = pixels.astype(np.uint8).reshape(-1, *image_shape)
        with torch.no_grad():
            (features,) = model(torch.from_numpy(pixels).to(device))
        return features.detach().cpu().numpy()

    return inception_v3


def fid(
    images_a,
    images_b,
    *,
    feature_extractor,
    batch_size: int = 256,
    device="cpu",
    weights_path=None,
    image_shape=None,
) -> FIDResult:
    """Fréchet distance between two image sets in a feature space.

    Parameters
    ----------
    images_a, images_b : array-like of shape (n, D)
        Images as flattened rows (NumPy arrays or torch tensors), at least 2
        per set.  For ``feature_extractor="inception"`` the rows must be
        channel-planar RGB ``(3*H*W)`` with values in ``[0, 1]``.
    feature_extractor : callable or {"inception"}
        A callable mapping an ndarray batch of shape (n, D) (a slice of the
        input, dtype preserved) to features of shape (n, F) (ndarray or torch
        tensor), or the string ``"inception"`` for torch-fidelity's
        TensorFlow-compatible Inception-v3 2048-d pool features.
    batch_size : int, default=256
        Number of images passed to the extractor at once.
    device : str or torch.device, default="cpu"
        Device for the Inception network; unused for callables (they manage
        their own device).
    weights_path : str or path-like, optional
        Local Inception-v3 FID weights file (torch-fidelity's
        ``weights-inception-2015-12-05-6726825d.pth``).  Required for
        ``"inception"``; nothing is ever downloaded.
    image_shape : tuple of int, optional
        ``(3, H, W)``; required for ``"inception"`` to unflatten the rows.

    Returns
    -------
    FIDResult
        ``value`` (the squared Fréchet distance of the features), the
        extractor's name, ``comparable_to_published`` and the set sizes.

    Raises
    ------
    ValueError
        For malformed images, a bad ``batch_size``, an unknown extractor
        string, an extractor returning the wrong shape, or, on the Inception
        path, a missing ``weights_path``/``image_shape`` or values outside
        ``[0, 1]``.
    ImportError
        If ``"inception"`` is requested and torch-fidelity is not installed.
    FileNotFoundError
        If ``weights_path`` does not point to a file.

    Notes
    -----
    FID values depend entirely on the feature extractor, its exact weights
    and its preprocessing.  Only the ``"inception"`` path (TF-compatible
    Inception-v3, images quantised to uint8 and resized by torch-fidelity)
    gives numbers comparable with published FIDs, and ``comparable_to_published``
    is True only there.  Any other extractor yields an "FID-<name>" (e.g.
    FID in the feature space of a classifier trained on MNIST) which is
    useful for comparing models within one study but must not be put next
    to published FIDs.  The estimate is biased upwards for small sets;
    compare values computed with equal set sizes.

    Examples
    --------
    >>> import numpy as np
    >>> def identity(batch):
    ...     return batch
    >>> x = np.random.default_rng(0).normal(size=(200, 4))
    >>> res = fid(x, x + 0.5, feature_extractor=identity)
    >>> round(res.value, 6), res.extractor, res.comparable_to_published
    (1.0, 'identity', False)
    """
    a = _image_matrix(images_a, "images_a")
    b = _image_matrix(images_b, "images_b")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")

    if isinstance(feature_extractor, str):
        if feature_extractor.lower() != "inception":
            raise ValueError(
                f"unknown feature_extractor {feature_extractor!r}; use 'inception' or a callable"
            )
        extractor_cls, path = _require_inception(weights_path)
        shape = _check_inception_shape(image_shape, a.shape[1])
        if b.shape[1] != a.shape[1]:
            raise ValueError(
                f"images_a rows have {a.shape[1]} values but images_b rows have {b.shape[1]}"
            )
        for name, arr in (("images_a", a), ("images_b", b)):
            if arr.min() < 0 or arr.max() > 1:
                raise ValueError(
                    f"{name} must lie in [0, 1] for the Inception path; got range "
                    f"[{arr.min():.4g}, {arr.max():.4g}]. Rescale first, e.g. (x + 1) / 2."
                )
        extractor = _inception_extractor(extractor_cls, path, shape, device)
        name, comparable = _INCEPTION_NAME, True
    elif callable(feature_extractor):
        extractor = feature_extractor
        name = getattr(feature_extractor, "__name__", type(feature_extractor).__name__)
        comparable = False
    else:
        raise ValueError(
            "feature_extractor must be a callable or the string 'inception'; "
            f"got {type(feature_extractor).__name__}"
        )

    feats_a = _extract(extractor, a, batch_size, "images_a")
    feats_b = _extract(extractor, b, batch_size, "images_b")
    for label, feats in (("images_a", feats_a), ("images_b", feats_b)):
        if not np.all(np.isfinite(feats)):
            raise ValueError(f"feature extractor {name!r} returned non-finite features for {label}")
    value = frechet_distance(feats_a, feats_b)
    return FIDResult(
        value=value,
        extractor=str(name),
        comparable_to_published=comparable,
        n_a=int(a.shape[0]),
        n_b=int(b.shape[0]),
    )
