"""What NNEFH and EBM share: the sufficient-statistics network U and persistent training chains.

Both build U from the same parameters (``statistics``, ``n_statistics``, ``n_filters``,
``attention``, ``downsample``, ``activation``, ``spectral_norm``), may compile it, and may keep a
replay buffer of chain states; the GRBM has none of these. The mixin fills the base class's
hooks (:meth:`_replay_buffer`, :meth:`_compiled`) instead of the base reading those parameters.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..nn import build_statistics_net
from ..nn.base import compiled
from ..samplers import KernelJump, ReplayBuffer
from ..training import AnnealedRestarts
from ._resolve import ByImageSize

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

    #: Constraints of the parameters NNEFH and EBM share (the network U, the model's
    #: temperature and the chains), merged into theirs as the base class's are.
    _parameter_constraints: dict = {
        "n_statistics": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_filters": [Interval(Integral, 1, None, closed="left")],
        "statistics": [StrOptions({"auto", "conv", "mlp"}), callable],
        "attention": ["boolean", StrOptions({"last"})],
        "downsample": [StrOptions({"maxpool", "avgpool", "stride"})],
        "activation": [StrOptions({"leaky_relu", "swish"})],
        "spectral_norm": ["boolean"],
        "temperature": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "chain_bounds": [StrOptions({"auto"}), tuple, list, None],
        "replay_buffer": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "replay_reinit": [Interval(Real, 0, 1, closed="both")],
        "sampler_precision": [StrOptions({"float32", "bfloat16"})],
        "metropolis": ["boolean", StrOptions({"auto"})],
        "mode_jumps": ["boolean", StrOptions({"auto"})],
        "compile": ["boolean", StrOptions({"default", "reduce-overhead", "max-autotune"})],
        "gradient_penalty": [Interval(Real, 0, None, closed="left")],
        "annealed_restarts": [Interval(Integral, 0, None, closed="left"), ByImageSize],
        "annealed_restart_every": [Interval(Integral, 1, None, closed="left")],
        "annealed_restart_steps": [Interval(Integral, 1, None, closed="left")],
    }

    def _trainer_options(self) -> dict:
        # A model pickled before the penalty existed trained without it.
        return {"gradient_penalty": self._trained_params.get("gradient_penalty", 0.0)}

    def _build_statistics(self, input_shape, generator):
        # The trained parameters, not the current ones: a pickle rebuilds the network of the fit
        # (spectral normalisation) even after set_params.
        p = self._trained_params
        kind = statistics_kind(p["statistics"], self.image_shape_)
        # Layers draw their initial weights from torch's global RNG; fork it so that the
        # estimator's seed decides them without disturbing the caller's RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            return build_statistics_net(
                kind,
                input_shape,
                p["n_statistics"],
                n_filters=p["n_filters"],
                attention=p["attention"],
                activation=p["activation"],
                spectral_norm=p["spectral_norm"],
                downsample=p["downsample"],
            )

    def _training_jump(self):
        # A model pickled before 0.7 has no resolved mode_jumps: it trained without the move.
        if not self._trained_params.get("mode_jumps", False) or self._bound_rows is None or len(self._bound_rows) < 2:
            return None  # one row is one mode: nothing to jump between
        dtype = next(self.module_.parameters()).dtype
        rows = self._to_tensor(self._bound_rows).to(dtype).reshape(len(self._bound_rows), *self.module_.input_shape)
        p = self._trained_params
        box = self._chain_box(p.get("chain_bounds"), p.get("metropolis", False))
        return KernelJump(rows, bounds=self._box_tensors(box, dtype))

    def _box_tensors(self, box, dtype=torch.float32):
        """A box from :meth:`_chain_box` as two tensors of the input shape (None stays None)."""
        if box is None:
            return None
        shape = self._input_shape()
        return tuple(torch.as_tensor(b, dtype=dtype, device=self.device_).expand(shape).clone() for b in box)

    # -- the density on the chains' box -----------------------------------------------------------
    def _density_box(self, dtype=torch.float32):
        """The box the scored density lives on, in working units, or None for all of R^D.

        Metropolis-adjusted chains with a box (``chain_bounds``) sample the model's density
        restricted to the box exactly (proposals that leave it are reflected back in at the face
        they crossed, with the reflected proposal's density in the acceptance ratio), so ``score`` measures
        that density: ``sample`` and ``score`` then describe one distribution. Clipped
        unadjusted chains sample no density exactly; their models score the unrestricted one.
        """
        p = getattr(self, "_trained_params", None)
        if not p or not p.get("metropolis", False):
            return None
        return self._box_tensors(self._chain_box(p.get("chain_bounds"), True), dtype)

    def _unnormalised_log_density(self, X) -> np.ndarray:
        values = super()._unnormalised_log_density(X)
        box = self._density_box(torch.float64)
        if box is None:
            return values
        working = self.range_map_.to_working(self._validate_input(X, reset=False)).astype(np.float64)
        low, high = (b.reshape(1, -1).cpu().numpy() for b in box)
        inside = np.all((working >= low) & (working <= high), axis=1)
        return np.where(inside, values, -np.inf)  # no mass outside the box

    def _reverse_start(self, rows: torch.Tensor) -> torch.Tensor:
        box = self._density_box(rows.dtype)
        return rows if box is None else torch.minimum(torch.maximum(rows, box[0]), box[1])

    def _training_callbacks(self) -> list:
        p = self._trained_params
        n_states = p.get("annealed_restarts", 0)  # a model pickled before 0.23 trained without them
        if n_states < 1:
            return []
        if p["replay_buffer"] < 1:
            raise ValueError(
                f"annealed_restarts={n_states} replaces chains of the replay buffer, and replay_buffer is "
                f"{p['replay_buffer']!r}: set replay_buffer to a positive size, or annealed_restarts=0")
        return [AnnealedRestarts(self._annealing_path, n_states, p["annealed_restart_every"],
                                 n_chains=self.ais_chains, n_steps=p["annealed_restart_steps"])]

    def _replay_buffer(self):
        size = self._trained_params["replay_buffer"]
        if size < 1:
            return None  # the paper's recipe: every chain starts from noise
        return ReplayBuffer(size, self.replay_reinit)

    #: Default Gibbs rounds of ``sample``, in training rounds, for Metropolis-adjusted chains.
    _exact_chain_rounds_factor = 20

    def _default_budget(self, settings, init: str) -> tuple:
        """Metropolis-adjusted chains (the tabular default) leave the model's density invariant,
        so more steps only bring them nearer to it: ``sample`` runs twenty times the training
        rounds, enough on 2-D data for its samples to pass the agreement test with the
        grid-normalised ``score_samples`` that the training budget fails (the persistent
        training chains lag the model). Unadjusted chains trained from noise at every update (the
        image default) generate best from noise at about one and a half times their training
        steps, and worse at twice them or more (see the generation page): half as many rounds
        again where the training rounds are even (the NN-EFH's 2 x 15 becomes 3 x 15), otherwise
        half as many steps again per round (the EBM's single block of 30 becomes 45).
        Persistent training chains keep their budget."""
        trained = getattr(self, "_trained_params", None) or self._resolve_params()
        rounds, steps = settings.n_gibbs, settings.n_langevin
        if trained["metropolis"]:
            return self._exact_chain_rounds_factor * rounds, steps
        if init == "noise" and trained["replay_buffer"] == 0:
            if rounds % 2 == 0:
                return rounds * 3 // 2, steps
            return rounds, math.ceil(1.5 * steps)
        return rounds, steps

    def _likelihood_advice(self) -> str:
        if self.image_shape_ is not None:
            if self._trained_params.get("metropolis", False):
                return ""  # chains that sample the density: a larger AIS budget is the remedy
            # Measured on digits and Fashion-MNIST (likelihood page): neither a larger AIS budget
            # nor temperature 1 made the short-run models' densities estimable; the density
            # preset and the tabular recipe on dequantised pixels did.
            model = type(self).__name__.lower()
            return (
                " Image models trained on unadjusted chains (as at the defaults) have densities far "
                f"too peaked for AIS. The preset skefh.presets.make_estimator('{model}', 'density') "
                "trains an image model whose chains sample its density and whose score works, at "
                "the cost of noisier samples: for the NN-EFH on 8x8 digits, and on 28x28 "
                "Fashion-MNIST at the edge of what AIS estimates (its steps and data noise follow "
                "the image size; a fit may need another AIS budget or seed in "
                "estimate_log_partition), for the EBM on 8x8 digits only (on Fashion-MNIST its "
                "density was not estimable); the GRBM's score works on images "
                "at its defaults, and for small images so does this model fitted as a table "
                "(image_shape=None) on dequantised pixels (integer values plus uniform noise in "
                "[0, 1)). See the likelihood page of the docs."
            )
        return (
            " On a small table, fewer updates (max_iter) give a smoother density whose log Z is "
            "easier to estimate."
        )

    def _compiled(self):
        """torch.compile the statistics network for the duration of a block, if asked to."""
        return compiled(self.module_.statistics, self.compile)
