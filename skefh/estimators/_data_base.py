"""The NN-EFH's annealing base: the quadratic term's Gaussian, one fitted to the data, and
kernels on training rows.

Annealed importance sampling (``score``, ``estimate_log_partition``) moves chains from a
normalised base density to the model's. The NN-EFH's base is a mixture of three parts, a third
of the weight each: N(mu, tau I / 2), the model with its network silenced, where an untrained
model's mass is; a diagonal Gaussian with the training data's moments, where a trained one's is
on the whole; and narrow Gaussian kernels on the training rows the estimator keeps for its lower
bound, where a sharp density's mass is. Without the kernels, chains on 28x28 images missed
mass that chains started at training rows find (the likelihood page of the docs, "On
Fashion-MNIST"). The moments are kept from ``fit``
(``data_moments_``) and saved with checkpoints; checkpoints keep no rows, so a model loaded
from one anneals from the first two parts.
"""

from __future__ import annotations

import numpy as np
import torch

from ..samplers import GaussianMixtureBasePath

__all__ = ["DataMomentsBaseMixin"]


class DataMomentsBaseMixin:
    """``_annealing_path`` from the data's moments, for :class:`~skefh.NNEFH`."""

    def _initialise(self, X):
        super()._initialise(X)
        working = self.range_map_.to_working(X).astype(np.float64)
        self.data_moments_ = np.stack([working.mean(0), working.var(0)])

    #: Variance of the base's kernels on training rows, in units of the temperature.
    _base_kernel_variance = 0.25
    #: The kernels' share of the base's weight (the rest is split between the two Gaussians).
    _base_kernel_share = 1.0 / 3.0

    def _annealing_path(self):
        # Chains start from N(mu, tau I / 2) (the quadratic term alone: where an untrained
        # network's mass is), a Gaussian fitted to the training data (where a trained one's is
        # on the whole) and kernels on training rows (where a sharp one's is), an equal share of
        # the weight each. The data component's variance adds tau / 2, the spread of exp(-F / tau)
        # about any point where the statistics are locally linear.
        tau = self.module_.temperature
        mu = self.module_.mu.detach()
        means, variances = [mu.unsqueeze(0)], [torch.full_like(mu, 0.5 * tau).unsqueeze(0)]
        if self.data_moments_ is not None:
            mean, var = (
                torch.as_tensor(a, dtype=mu.dtype, device=mu.device).reshape(mu.shape)
                for a in self.data_moments_
            )
            means.append(mean.unsqueeze(0))
            variances.append((var + 0.5 * tau).unsqueeze(0))
        share = self._base_kernel_share
        weights = [torch.full((1,), (1.0 - share) / len(means), dtype=torch.float64) for _ in means]
        if self._bound_rows is None or not len(self._bound_rows):
            weights = None  # equal weights, as before the kernels existed
        else:
            rows = self._to_tensor(self._bound_rows).to(device=mu.device, dtype=mu.dtype)
            rows = rows.reshape(len(rows), *mu.shape)
            means.append(rows)
            variances.append(torch.full_like(rows, self._base_kernel_variance * tau))
            weights.append(torch.full((len(rows),), share / len(rows), dtype=torch.float64))
        return GaussianMixtureBasePath(self.module_, torch.cat(means), torch.cat(variances),
                                       bounds=self._density_box(mu.dtype),
                                       weights=None if weights is None else torch.cat(weights))

    def _extra_state(self) -> dict:
        if self.data_moments_ is None:
            return {}
        return {"data_moments": torch.from_numpy(self.data_moments_)}

    def _load_extra_state(self, state: dict) -> None:
        # Checkpoints written before the data component existed fall back to the quadratic base.
        moments = state.get("data_moments")
        self.data_moments_ = None if moments is None else moments.numpy()
