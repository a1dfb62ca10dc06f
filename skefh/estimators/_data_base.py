"""The NN-EFH's annealing base: the quadratic term's Gaussian and one fitted to the data.

Annealed importance sampling (``score``, ``estimate_log_partition``) moves chains from a
normalised base density to the model's. The NN-EFH's base is an equal mixture of two Gaussians:
N(mu, tau I / 2), the model with its network silenced, where an untrained model's mass is, and
a diagonal Gaussian with the training data's moments, where a trained one's is. The moments are
kept from ``fit`` (``data_moments_``) and saved with checkpoints.
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

    def _annealing_path(self):
        # Chains start from an equal mixture of N(mu, tau I / 2) (the quadratic term alone:
        # where an untrained network's mass is) and a Gaussian fitted to the training data
        # (where a trained one's is). The data component's variance adds tau / 2, the spread of
        # exp(-F / tau) about any point where the statistics are locally linear.
        tau = self.module_.temperature
        mu = self.module_.mu.detach()
        means, variances = [mu], [torch.full_like(mu, 0.5 * tau)]
        if self.data_moments_ is not None:
            mean, var = (
                torch.as_tensor(a, dtype=mu.dtype, device=mu.device).reshape(mu.shape)
                for a in self.data_moments_
            )
            means.append(mean)
            variances.append(var + 0.5 * tau)
        return GaussianMixtureBasePath(self.module_, torch.stack(means), torch.stack(variances),
                                       bounds=self._density_box(mu.dtype))

    def _extra_state(self) -> dict:
        if self.data_moments_ is None:
            return {}
        return {"data_moments": torch.from_numpy(self.data_moments_)}

    def _load_extra_state(self, state: dict) -> None:
        # Checkpoints written before the data component existed fall back to the quadratic base.
        moments = state.get("data_moments")
        self.data_moments_ = None if moments is None else moments.numpy()
