"""What NNEFH and EBM share: the sufficient-statistics network U and persistent training chains.

Both build U from the same parameters (``statistics``, ``n_statistics``, ``n_filters``,
``attention``, ``downsample``, ``activation``, ``spectral_norm``), may compile it, and may keep a
replay buffer of chain states; the GRBM has none of these. The mixin fills the base class's
hooks (:meth:`_replay_buffer`, :meth:`_compiled`) instead of the base reading those parameters.
"""

from __future__ import annotations

import torch

from ..nn import build_statistics_net
from ..nn.base import compiled
from ..samplers import ReplayBuffer

__all__ = ["NeuralStatisticsMixin", "statistics_kind"]


def statistics_kind(statistics, image_shape):
    """'auto' -> the conv net for images, the MLP for tabular data."""
    if statistics == "auto":
        return "conv" if image_shape is not None else "mlp"
    if statistics == "conv" and image_shape is None:
        raise ValueError("statistics='conv' needs image data: set image_shape=(C, H, W)")
    return statistics


class NeuralStatisticsMixin:
    """Builds, compiles and feeds the network U of an estimator derived from
    :class:`skefh.estimators._base.BaseEnergyEstimator` (put the mixin first)."""

    def _build_statistics(self, input_shape, generator):
        kind = statistics_kind(self.statistics, self.image_shape_)
        # Layers draw their initial weights from torch's global RNG; fork it so that the
        # estimator's seed decides them without disturbing the caller's RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            return build_statistics_net(
                kind,
                input_shape,
                self.n_statistics,
                n_filters=self.n_filters,
                attention=self.attention,
                activation=self.activation,
                spectral_norm=self.spectral_norm,
                downsample=self.downsample,
            )

    def _replay_buffer(self):
        if self.replay_buffer < 1:
            return None  # the paper's recipe: every chain starts from noise
        return ReplayBuffer(self.replay_buffer, self.replay_reinit)

    def _compiled(self):
        """torch.compile the statistics network for the duration of a block, if asked to."""
        return compiled(self.module_.statistics, self.compile)
