"""Maps between the units of X and the model's working units.

Images: the observed range [lo, hi] (one pair for all pixels) goes affinely to [-1, 1], the range
the reference code trains in, so raw 0-255 pixels work. Tabular data: per-feature
standardisation. Both maps are affine, so densities transform with a constant Jacobian:
log p_X(x) = log p_W(w(x)) + log|det dw/dx|.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RangeMap", "check_magnitudes", "fit_range_map"]


class RangeMap:
    """Affine map ``w = (x - offset) * scale`` and its inverse.

    Parameters
    ----------
    offset, scale : ndarray of shape (n_features,)
    kind : {"image", "standardise"}
    """

    def __init__(self, offset: np.ndarray, scale: np.ndarray, kind: str):
        self.offset = np.asarray(offset, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.kind = kind

    def to_working(self, X: np.ndarray) -> np.ndarray:
        """X in data units -> float32 in working units."""
        return ((X - self.offset) * self.scale).astype(np.float32, copy=False)

    def to_data(self, W: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Working units -> data units, as ``dtype``."""
        return (W / self.scale + self.offset).astype(dtype, copy=False)

    @property
    def log_abs_det_jacobian(self) -> float:
        """log|det dw/dx| of the map, the same for every sample."""
        return float(np.sum(np.log(np.abs(self.scale))))

    def __repr__(self) -> str:
        return f"RangeMap(kind={self.kind!r}, n_features={self.offset.size})"


def fit_range_map(X: np.ndarray, kind: str) -> RangeMap:
    """Fit the map on training data ``X`` of shape (n_samples, n_features).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    kind : {"image", "standardise"}
        "image": the global [min, max] of X to [-1, 1] (a constant image maps to 0);
        "standardise": per-feature mean 0 and standard deviation 1 (constant features are
        only centred).

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
    raise ValueError(f"unknown range map {kind!r}")


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
