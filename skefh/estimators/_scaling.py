"""Maps between the units of X and the model's working units.

Images: the observed range [lo, hi] (one pair for all pixels) goes affinely to [-1, 1], the range
the reference code trains in, so raw 0-255 pixels work. Tabular data: per-feature
standardisation, or whitening (the principal axes of the training rows, each at unit variance).
Every map is affine, so densities transform with a constant Jacobian:
log p_X(x) = log p_W(w(x)) + log|det dw/dx|.

Why whitening: the working units' Gaussian base, the quadratic term ||w - mu||^2, is isotropic.
Strongly correlated features (breast_cancer's radius, perimeter and area) put the data on a thin
ridge that the network must carve out of it; the density is then so steep across the ridge that
Langevin chains barely move and annealed importance sampling cannot estimate log Z. Whitened, the
ridge is as wide as it is long, and the network has only the data's non-Gaussian shape to learn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RangeMap", "check_magnitudes", "fit_range_map"]


class RangeMap:
    """Affine map ``w = ((x - offset) @ rotation) * scale`` and its inverse.

    Parameters
    ----------
    offset, scale : ndarray of shape (n_features,)
    kind : {"image", "standardise", "whiten"}
    rotation : ndarray of shape (n_features, n_features) or None, default=None
        An orthogonal matrix whose columns are the axes of the working units (whitening: the
        principal axes of the training rows); None is the identity.
    """

    #: Maps pickled before whitening existed have no rotation.
    rotation = None

    def __init__(self, offset: np.ndarray, scale: np.ndarray, kind: str, rotation: np.ndarray | None = None):
        self.offset = np.asarray(offset, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.kind = kind
        if rotation is not None:
            self.rotation = np.asarray(rotation, dtype=np.float64)

    @property
    def per_feature(self) -> bool:
        """Whether each working coordinate depends on one feature only (no rotation)."""
        return self.rotation is None

    def to_working(self, X: np.ndarray) -> np.ndarray:
        """X in data units -> float32 in working units."""
        centred = X - self.offset
        if self.rotation is not None:
            centred = centred @ self.rotation
        return (centred * self.scale).astype(np.float32, copy=False)

    def to_data(self, W: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Working units -> data units, as ``dtype``."""
        unscaled = W / self.scale
        if self.rotation is not None:
            unscaled = unscaled @ self.rotation.T
        return (unscaled + self.offset).astype(dtype, copy=False)

    @property
    def log_abs_det_jacobian(self) -> float:
        """log|det dw/dx| of the map, the same for every sample (a rotation's is 0)."""
        return float(np.sum(np.log(np.abs(self.scale))))

    def __repr__(self) -> str:
        return f"RangeMap(kind={self.kind!r}, n_features={self.offset.size})"


def fit_range_map(X: np.ndarray, kind: str) -> RangeMap:
    """Fit the map on training data ``X`` of shape (n_samples, n_features).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    kind : {"image", "standardise", "whiten"}
        "image": the global [min, max] of X to [-1, 1] (a constant image maps to 0);
        "standardise": per-feature mean 0 and standard deviation 1 (constant features are
        only centred); "whiten": mean 0 and identity covariance, along the principal axes of X
        (directions in which X does not vary, such as constant features or more features than
        rows, are only centred).

    Returns
    -------
    RangeMap
    """
    n_features = X.shape[1]
    if kind == "image":
        lo, hi = float(np.min(X)), float(np.max(X))
        half_range = (hi - lo) / 2.0
        scale = 1.0 / half_range if half_range > 0 else 1.0
        return RangeMap(np.full(n_features, (lo + hi) / 2.0), np.full(n_features, scale), kind)
    if kind == "standardise":
        mean = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        std[~(std > 0)] = 1.0
        return RangeMap(mean, 1.0 / std, kind)
    if kind == "whiten":
        mean = X.mean(axis=0, dtype=np.float64)
        centred = X.astype(np.float64) - mean
        variances, axes = np.linalg.eigh(centred.T @ centred / X.shape[0])
        # Round-off leaves directions without variance at about 1e-16 of the largest.
        flat = ~(variances > _FLAT_DIRECTION * max(float(variances.max()), 0.0))
        variances[flat] = 1.0
        return RangeMap(mean, 1.0 / np.sqrt(variances), kind, rotation=axes)
    raise ValueError(f"unknown range map {kind!r}")


#: Variance, relative to the largest, below which a principal direction counts as flat.
_FLAT_DIRECTION = 1e-10

#: Largest magnitude of a row in working units (the training data's scale, about 1) that the
#: float32 networks evaluate: their energies square the values, and float32 overflows at 3e38.
MAX_WORKING_MAGNITUDE = 1e15


def check_magnitudes(X: np.ndarray, range_map: "RangeMap | None") -> None:
    """Refuse, by name, values that would overflow the models' float32 arithmetic.

    Without a range map (data a fit is about to scale), values beyond float32's range; with
    one, values more than :data:`MAX_WORKING_MAGNITUDE` times the training data's scale.
    Unchecked, such rows would come back as NaN features and scores from deep inside the
    network.

    Raises
    ------
    ValueError
    """
    if X.size == 0:
        return
    largest = float(np.abs(X).max())
    if range_map is None:
        if largest > np.finfo(np.float32).max:
            raise ValueError(f"X has values of magnitude up to {largest:.3g}, beyond float32's range "
                             f"({np.finfo(np.float32).max:.3g}), in which the model computes")
        return
    with np.errstate(over="ignore", invalid="ignore"):
        working = float(np.abs(range_map.to_working(X)).max())
    if not working <= MAX_WORKING_MAGNITUDE:
        raise ValueError(
            f"X has values of magnitude up to {largest:.3g}, more than {MAX_WORKING_MAGNITUDE:.0e} times the "
            "training data's scale, where the model's float32 energies overflow; rescale the input or drop "
            "those rows")
