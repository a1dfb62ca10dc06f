"""Train on the paths of chains from noise: extra training chains carried from N(0, I) for as long as
``sample(init="noise")`` runs them.

A model trained with persistent chains (the replay buffer) keeps its buffer's chains near the data,
but its chains from noise settle in minima of a few classes. This experiment adds ``--paths``
chains to every training update that start from N(0, I) and are carried for ``--lifetime`` updates
(``lifetime x gibbs_steps x langevin_steps`` Langevin steps: 300 at the ``cpu`` preset with a
lifetime of 10, the ``10x30`` budget of ``sample_budget.py``) before they restart from noise. Their
restarts are staggered, so every update sees chains of every age from 1 to the lifetime; their
final states join the buffer's as negative samples. The cost per update grows by ``paths`` chains
of the training budget. The generation page reports what it did on Fashion-MNIST.

Everything after ``--`` is passed to ``benchmarks/sample_quality.py``, whose estimators train with
this sampler (NN-EFH and EBM)::

    python benchmarks/noise_paths.py --paths 16 --lifetime 10 -- --dataset fashion-mnist \\
        --models nnefh --continue-from results/sample_quality/f4-cpu-nnefh-nnefh.joblib \\
        --updates 1000 --eval-every 500 --save-models --name g1-f4-paths16x10
    python benchmarks/sample_budget.py results/sample_quality/g1-f4-paths16x10-nnefh.joblib --budgets 10x30
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Optional
from unittest import mock

import sample_quality
import torch

import skefh.estimators._training as estimator_training
from skefh.nn.base import EnergyModel
from skefh.samplers import TrainingSampler, gibbs_langevin


class NoisePathSampler(TrainingSampler):
    """The estimators' training sampler plus ``n_paths`` chains restarted from noise every
    ``lifetime`` updates.

    Parameters
    ----------
    *args, **kwargs
        As :class:`skefh.samplers.TrainingSampler`.
    n_paths : int
        Extra chains per update.
    lifetime : int
        Updates a chain is carried before it restarts from N(0, I).
    """

    def __init__(self, *args, n_paths: int, lifetime: int, **kwargs):
        super().__init__(*args, **kwargs)
        if n_paths < 1 or lifetime < 1:
            raise ValueError(f"need n_paths >= 1 and lifetime >= 1, got {n_paths} and {lifetime}")
        self.n_paths, self.lifetime = int(n_paths), int(lifetime)
        self.paths: Optional[torch.Tensor] = None
        # Staggered ages: one chain in every `lifetime` restarts at each update once the pool runs.
        self.ages = torch.arange(self.n_paths) % self.lifetime

    def __call__(self, model: EnergyModel, x_pos: torch.Tensor, generator: Optional[torch.Generator] = None) -> dict:
        out = super().__call__(model, x_pos, generator)
        if "xs" in out:
            raise ValueError("noise paths support samplers that keep the last state only (NN-EFH, EBM)")
        dtype = next(model.parameters()).dtype
        shape = (self.n_paths, *model.input_shape)
        if self.paths is None:
            self.paths = torch.randn(shape, generator=generator, device=x_pos.device, dtype=dtype)
        expired = self.ages >= self.lifetime
        if bool(expired.any()):
            rows = expired.nonzero().flatten().to(self.paths.device)
            self.paths[rows] = torch.randn((len(rows), *model.input_shape), generator=generator,
                                           device=self.paths.device, dtype=dtype)
            self.ages[expired] = 0
        paths = gibbs_langevin(model, self.paths, None, self.settings, generator=generator)
        self.paths = paths["x"]
        self.ages += 1
        out["x"] = torch.cat([out["x"], paths["x"]])
        if out.get("z") is not None:
            out["z"] = torch.cat([out["z"], paths["z"]])
        return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=16, help="extra chains from noise per update")
    parser.add_argument("--lifetime", type=int, default=10, help="updates before a chain restarts from noise")
    args = parser.parse_args(argv[:split])
    factory = functools.partial(NoisePathSampler, n_paths=args.paths, lifetime=args.lifetime)
    with mock.patch.object(estimator_training, "TrainingSampler", factory):
        sample_quality.main(argv[split + 1:])


if __name__ == "__main__":
    main()
