"""Densities you can check: quadrature on a 2-D grid, and whether a model's samples come from the
density its ``score_samples`` describes (by the MMD test of :mod:`skefh.metrics.mmd`).

Everything here takes callables and arrays (and, for :func:`sample_score_agreement`, any object
with ``score_samples`` and ``sample``), so that it measures scikit-learn's density estimators and
skefh's alike.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import logsumexp

from .mmd import mmd_test

__all__ = [
    "GridDensity",
    "grid_log_partition",
    "SampleScoreAgreement",
    "sample_score_agreement",
]


def _box(low, high) -> tuple[np.ndarray, np.ndarray]:
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), (2,)).copy()
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), (2,)).copy()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise ValueError(f"the box needs finite low < high in both dimensions, got low={low}, high={high}")
    return low, high


def _evaluate(fn, points: np.ndarray, batch_size: int) -> np.ndarray:
    """``fn`` on the rows of ``points`` in batches, as a float64 vector checked for NaN / +inf."""
    parts = []
    for start in range(0, len(points), batch_size):
        chunk = points[start:start + batch_size]
        values = np.asarray(fn(chunk), dtype=np.float64).reshape(-1)
        if values.shape != (len(chunk),):
            raise ValueError(f"the log-density returned {values.size} values for {len(chunk)} rows")
        parts.append(values)
    values = np.concatenate(parts)
    if np.isnan(values).any() or np.isposinf(values).any():
        bad = int(np.sum(np.isnan(values) | np.isposinf(values)))
        raise ValueError(f"the log-density is NaN or +inf at {bad} of {len(values)} grid points")
    return values


@dataclass
class GridDensity:
    """A 2-D log-density normalised by quadrature on a grid of ``n`` x ``n`` cells.

    Attributes
    ----------
    log_partition : float
        log of the integral of ``exp(log_density_fn)`` over the box (midpoint rule).
    low, high : ndarray of shape (2,)
        Corners of the box.
    n : int
        Cells per side.
    centres : ndarray of shape (n * n, 2)
        Cell centres, row-major: point ``i * n + j`` has x0 from the i-th and x1 from the j-th
        column of cells.
    log_values : ndarray of shape (n * n,)
        The unnormalised log-density at the centres.
    probabilities : ndarray of shape (n * n,)
        Normalised probability of each cell (sums to 1).
    log_density_fn : callable
        The unnormalised log-density, kept so that :meth:`log_density` is exact at any point.
    """

    log_partition: float
    low: np.ndarray
    high: np.ndarray
    n: int
    centres: np.ndarray
    log_values: np.ndarray
    probabilities: np.ndarray
    log_density_fn: object

    @property
    def cell_size(self) -> np.ndarray:
        """Side lengths of one cell, shape (2,)."""
        return (self.high - self.low) / self.n

    def log_density(self, X, batch_size: int = 65536) -> np.ndarray:
        """Normalised log-density at the rows of ``X``: ``log_density_fn(X) - log_partition``.

        The normalisation counts only the mass inside the box; outside it the values are the
        callable's, shifted by the same constant (check :meth:`border_mass` to see whether the
        box held the mass).

        Parameters
        ----------
        X : array-like of shape (m, 2)
        batch_size : int, default=65536

        Returns
        -------
        ndarray of shape (m,)
        """
        X = np.asarray(X, dtype=np.float64).reshape(-1, 2)
        return _evaluate(self.log_density_fn, X, batch_size) - self.log_partition

    def sample(self, n_samples: int, random_state=None) -> np.ndarray:
        """Draw from the grid distribution: a cell by its probability, then a uniform point in it.

        Parameters
        ----------
        n_samples : int
        random_state : int, numpy Generator or None

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        rng = np.random.default_rng(random_state)
        cells = rng.choice(len(self.probabilities), size=int(n_samples), p=self.probabilities)
        jitter = rng.uniform(-0.5, 0.5, size=(int(n_samples), 2)) * self.cell_size
        return self.centres[cells] + jitter

    def border_mass(self, cells: int = 1) -> float:
        """Probability in the outermost ``cells`` rings of cells.

        A box that holds the distribution puts almost nothing there; a sizeable value says
        that the box cuts off mass (and :attr:`log_partition` is too small).

        Parameters
        ----------
        cells : int, default=1

        Returns
        -------
        float
        """
        cells = int(cells)
        if not 1 <= cells <= self.n // 2:
            raise ValueError(f"cells must be in [1, n // 2] = [1, {self.n // 2}], got {cells}")
        p = self.probabilities.reshape(self.n, self.n)
        inner = p[cells:self.n - cells, cells:self.n - cells].sum()
        return float(max(0.0, 1.0 - inner))

    def inside(self, X) -> np.ndarray:
        """Boolean mask of the rows of ``X`` inside the box."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, 2)
        return np.all((X >= self.low) & (X <= self.high), axis=1)


def grid_log_partition(log_density_fn, low, high, n: int = 400, batch_size: int = 65536) -> GridDensity:
    """Normalise a 2-D log-density by quadrature on an ``n`` x ``n`` grid.

    The integral of ``exp(log_density_fn)`` over the box ``[low, high]`` is approximated by the
    midpoint rule: ``log Z = logsumexp(f(centres)) + log(cell area)``. Choose a box that holds
    the mass (for instance the data's range padded by a few bandwidths) and check
    :meth:`GridDensity.border_mass`.

    Parameters
    ----------
    log_density_fn : callable
        Maps an (m, 2) float64 array to m log-densities (unnormalised is fine; -inf is zero
        density; NaN and +inf raise).
    low, high : float or array-like of shape (2,)
        Corners of the box.
    n : int, default=400
        Cells per side.
    batch_size : int, default=65536
        Rows per call of ``log_density_fn``.

    Returns
    -------
    GridDensity

    Examples
    --------
    >>> import numpy as np
    >>> grid = grid_log_partition(lambda x: -0.5 * (x ** 2).sum(1), -8, 8, n=200)
    >>> bool(abs(grid.log_partition - np.log(2 * np.pi)) < 1e-6)
    True
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    low, high = _box(low, high)
    h = (high - low) / n
    axes = [low[d] + (np.arange(n) + 0.5) * h[d] for d in range(2)]
    a, b = np.meshgrid(axes[0], axes[1], indexing="ij")
    centres = np.column_stack([a.ravel(), b.ravel()])
    log_values = _evaluate(log_density_fn, centres, batch_size)
    total = logsumexp(log_values)
    if not np.isfinite(total):
        raise ValueError("the log-density is -inf at every grid point: the box misses the mass")
    probabilities = np.exp(log_values - total)
    probabilities /= probabilities.sum()
    log_partition = float(total + math.log(h[0] * h[1]))
    return GridDensity(log_partition, low, high, n, centres, log_values, probabilities, log_density_fn)


@dataclass
class SampleScoreAgreement:
    """Result of :func:`sample_score_agreement`: do ``sample`` and ``score_samples`` describe the
    same distribution?

    Attributes
    ----------
    mmd : float
        Unbiased squared MMD between the model's samples and draws from the grid-normalised
        density of its ``score_samples``.
    p_value : float
        Permutation p-value of that MMD (small: the two differ).
    mean_log_density_samples : float
        Mean grid-normalised log-density of the model's own samples.
    mean_log_density_grid : float
        The same for the grid draws (what a sampler of the scored density would get).
    log_density_gap : float
        ``mean_log_density_samples - mean_log_density_grid`` in nats; about 0 when they agree,
        negative when the samples sit where the scored density is low (e.g. wider).
    log_density_gap_se : float
        Standard error of that gap.
    log_mass : float
        log of the integral of ``exp(score_samples)`` over the box, ``log Z_grid - log Z_est``:
        0 for a normalised density whose mass is in the box. (With ``log_density`` given, the
        log-integral of that callable instead.)
    log_partition_estimator : float or None
        The estimator's stored ``log_partition_``, where it has one (None with ``log_density``).
    log_partition_grid : float or None
        log Z of the same unnormalised density by quadrature (``log_partition_estimator +
        log_mass``), where the estimator stores one.
    border_mass : float
        Probability of the scored density in the box's outer rings (5 % of the cells per side).
    edge_mass : float
        Probability in the outermost ring of cells.
    samples_outside : float
        Fraction of the model's samples outside the box.
    n_samples, n_grid : int
    """

    mmd: float
    p_value: float
    mean_log_density_samples: float
    mean_log_density_grid: float
    log_density_gap: float
    log_density_gap_se: float
    log_mass: float
    log_partition_estimator: float | None
    log_partition_grid: float | None
    border_mass: float
    edge_mass: float
    samples_outside: float
    n_samples: int
    n_grid: int

    def agrees(self, alpha: float = 0.01, max_gap: float = 0.25) -> bool:
        """True when the MMD test does not reject at ``alpha`` and the log-density gap is
        within ``max_gap`` nats."""
        return bool(self.p_value >= alpha and abs(self.log_density_gap) <= max_gap)

    def to_dict(self) -> dict:
        return asdict(self)


def _draw(estimator, n_samples, seed) -> np.ndarray:
    """``estimator.sample(n_samples)``, with ``random_state`` where it takes one; the first
    element where it returns a tuple (``GaussianMixture`` returns samples and labels)."""
    try:
        takes_seed = "random_state" in inspect.signature(estimator.sample).parameters
    except (TypeError, ValueError):
        takes_seed = False
    out = estimator.sample(n_samples, random_state=seed) if takes_seed else estimator.sample(n_samples)
    if isinstance(out, tuple):
        out = out[0]
    return np.asarray(out, dtype=np.float64)


def sample_score_agreement(estimator, low, high, n_samples: int = 1000, n_grid: int = 300,
                           n_permutations: int = 200, log_density=None, random_state=None) -> SampleScoreAgreement:
    """Compare a fitted 2-D density model's samples with the density its ``score_samples`` gives.

    ``score_samples`` (normalised or not) is normalised on an ``n_grid`` x ``n_grid`` grid over
    the box (:func:`grid_log_partition`); ``n_samples`` of the model's own ``sample`` are compared
    with as many draws from that grid density by an MMD permutation test and by their mean
    grid log-density. A model whose sampler draws from the density it scores gives a large
    p-value and a gap near 0.

    Parameters
    ----------
    estimator : object
        Fitted, with ``score_samples(X)`` and ``sample(n)`` (``sample`` may take
        ``random_state`` and may return a tuple whose first element is the samples).
    low, high : float or array-like of shape (2,)
        The box; it should hold the data with a margin.
    n_samples : int, default=1000
    n_grid : int, default=300
    n_permutations : int, default=200
    log_density : callable, optional
        The log-density to normalise instead of ``estimator.score_samples`` (e.g. an
        unnormalised one where ``score_samples`` cannot estimate log Z).
    random_state : int or None
        Seeds the model's samples, the grid draws and the permutations.

    Returns
    -------
    SampleScoreAgreement
    """
    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(2**31 - 1))
    fn = estimator.score_samples if log_density is None else log_density
    grid = grid_log_partition(fn, low, high, n=n_grid)
    samples = _draw(estimator, n_samples, seed)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"sample_score_agreement needs a 2-D model; sample returned shape {samples.shape}")
    draws = grid.sample(len(samples), rng)
    finite = np.all(np.isfinite(samples), axis=1)
    if not finite.all():
        raise ValueError(f"{int((~finite).sum())} of the model's {len(samples)} samples are not finite")
    test = mmd_test(samples, draws, n_permutations=n_permutations, random_state=rng)
    ls, lg = grid.log_density(samples), grid.log_density(draws)
    gap = float(ls.mean() - lg.mean())
    with np.errstate(invalid="ignore"):
        se = float(np.sqrt(ls.var(ddof=1) / len(ls) + lg.var(ddof=1) / len(lg)))
    stored = getattr(estimator, "log_partition_", None) if log_density is None else None
    stored = float(stored) if stored is not None and np.isscalar(stored) else None
    return SampleScoreAgreement(
        mmd=test.statistic, p_value=test.p_value,
        mean_log_density_samples=float(ls.mean()), mean_log_density_grid=float(lg.mean()),
        log_density_gap=gap, log_density_gap_se=se, log_mass=grid.log_partition,
        log_partition_estimator=stored,
        log_partition_grid=None if stored is None else stored + grid.log_partition,
        border_mass=grid.border_mass(max(1, grid.n // 20)), edge_mass=grid.border_mass(1),
        samples_outside=float(1.0 - grid.inside(samples).mean()),
        n_samples=len(samples), n_grid=grid.n,
    )
