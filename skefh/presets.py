"""Named settings: the paper's recipe, and CPU-sized presets that finish on a laptop.

One source of truth for the example scripts, the benchmarks and the ``skefh`` command:

>>> from skefh.presets import make_estimator, preset_params
>>> preset_params("nnefh", "cpu")["n_filters"]
32
>>> make_estimator("ebm", "cpu", max_iter=10).langevin_steps
30

``"paper"`` is the paper's setup as the estimators' defaults encode it (network with 128
filters, U 1024, z 2048; M=5, L=60; step 1, temperature 5e-5, energy divided by the batch size;
batch 64; Adam 1e-4) with the paper's 50,000 updates, the GRBM reference's settings, and the
library's stabiliser (the energy penalty ``energy_l2``). ``"paper-original"`` drops the
stabiliser: the paper's recipe read literally, which diverges (see the stability page).
``"cpu"`` shrinks the network and the sampler so that Fashion-MNIST trains in minutes on two
CPU cores.
"""

from __future__ import annotations

__all__ = ["PRESETS", "preset_params", "make_estimator", "estimator_class"]

PRESETS: dict[str, dict[str, dict]] = {
    "paper": {
        "nnefh": dict(max_iter=50_000),
        "ebm": dict(max_iter=50_000),
        "grbm": dict(max_iter=50_000),
    },
    "paper-original": {
        "nnefh": dict(max_iter=50_000, energy_l2=0.0),
        "ebm": dict(max_iter=50_000, energy_l2=0.0),
        "grbm": dict(max_iter=50_000, energy_l2=0.0),
    },
    "cpu": {
        # The same sampler budget (30 Langevin steps per update) for the NN-EFH and the EBM.
        "nnefh": dict(n_filters=32, n_statistics=256, n_components=512, gibbs_steps=2, langevin_steps=15,
                      max_iter=1500),
        "ebm": dict(n_filters=32, n_statistics=256, langevin_steps=30, max_iter=1500),
        "grbm": dict(n_components=1024, gibbs_steps=10, langevin_steps=10, batch_size=256, max_iter=1500),
    },
}


def estimator_class(model: str):
    """The estimator class for "nnefh", "ebm" or "grbm"."""
    from . import EBM, GRBM, NNEFH

    classes = {"nnefh": NNEFH, "ebm": EBM, "grbm": GRBM}
    try:
        return classes[model.lower()]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(classes)}") from None


def preset_params(model: str, preset: str = "cpu") -> dict:
    """Estimator parameters of a named preset (a fresh dict; change it freely).

    Parameters
    ----------
    model : {"nnefh", "ebm", "grbm"}
    preset : {"cpu", "paper", "paper-original"}, default="cpu"

    Returns
    -------
    dict
    """
    estimator_class(model)
    try:
        return dict(PRESETS[preset][model.lower()])
    except KeyError:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}") from None


def make_estimator(model: str, preset: str = "cpu", **overrides):
    """An unfitted estimator with a preset's parameters, updated by ``overrides``.

    Parameters
    ----------
    model : {"nnefh", "ebm", "grbm"}
    preset : {"cpu", "paper", "paper-original"}, default="cpu"
    **overrides
        Any estimator parameter.

    Returns
    -------
    NNEFH, EBM or GRBM
    """
    return estimator_class(model)(**{**preset_params(model, preset), **overrides})
