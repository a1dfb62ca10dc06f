"""The estimators' parameters, generated from one spec (skefh/estimators/_params.py), pinned.

scikit-learn reads parameter names from ``inspect.signature(cls.__init__)``; the spec builds that
signature, the constraints and the docstring entries. These tests pin the public signatures
(names, order, defaults, kinds) to explicit lists, so that a change to the spec that moves or
renames a parameter or changes a default fails here, and check that the three generated pieces
agree with one another.
"""

import inspect
import re

import numpy as np
import pytest
from sklearn.base import clone

from skefh import EBM, GRBM, NNEFH
from skefh.estimators._params import ParameterSpec, _show

_NETWORK = [("n_statistics", 1024), ("n_filters", 128), ("image_shape", "auto"), ("statistics", "auto"),
            ("attention", True), ("downsample", "maxpool"), ("activation", "leaky_relu"), ("spectral_norm", False)]
_RUN = [("device", "auto"), ("random_state", None), ("verbose", 0), ("checkpoint_path", None),
        ("checkpoint_every", 1000), ("on_divergence", "raise"), ("callbacks", None), ("log_partition", "auto"),
        ("ais_chains", 64), ("ais_steps", 1000)]

# (name, default) in signature order; the first POSITIONAL of each list is positional-or-keyword.
EXPECTED = {
    NNEFH: (1, [("n_components", 2048), *_NETWORK, ("gibbs_steps", 5), ("langevin_steps", 60),
                ("step_size", 0.05), ("temperature", 1e-3), ("latent_temperature", None),
                ("chain_bounds", "auto"), ("negative_init", "noise"), ("replay_buffer", 10_000),
                ("replay_reinit", 0.05),
                ("sampler_precision", "float32"), ("compile", False), ("batch_size", 64),
                ("learning_rate", 1e-4), ("max_iter", 1000), ("optimizer", "adam"), ("lr_schedule", "constant"),
                ("data_noise", 0.03), ("max_grad_norm", 1.0), ("energy_l2", 0.0), ("latent_l2", 0.0),
                ("weight_decay", 0.0), ("latent_statistics", "sample"), ("features", "U"), *_RUN]),
    EBM: (0, [*_NETWORK, ("langevin_steps", 100), ("step_size", 0.05), ("temperature", 1e-3),
              ("chain_bounds", "auto"), ("replay_buffer", 10_000), ("replay_reinit", 0.05),
              ("sampler_precision", "float32"), ("compile", False),
              ("batch_size", 64), ("learning_rate", 1e-4), ("max_iter", 1000), ("optimizer", "adam"),
              ("lr_schedule", "constant"), ("data_noise", 0.03), ("max_grad_norm", 1.0), ("energy_l2", 0.0),
              ("weight_decay", 0.0), ("features", "U"), *_RUN]),
    GRBM: (1, [("n_components", 4096), ("image_shape", "auto"), ("gibbs_steps", 100), ("langevin_steps", 10),
               ("step_size", 20.0), ("energy_scale", "batch"), ("step_schedule", "cosine"),
               ("sampler", "gibbs_langevin"), ("negative_samples", "all"), ("sample_mean", True),
               ("init_var", 1.0), ("batch_size", 512), ("learning_rate", 0.01), ("max_iter", 1000),
               ("optimizer", "sgd"), ("lr_schedule", "cosine"), ("data_noise", 0.0), ("max_grad_norm", 10.0),
               ("energy_l2", 0.0), ("weight_decay", 0.0), ("features", "mean"), *_RUN]),
}
ESTIMATORS = list(EXPECTED)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_public_signature_is_pinned(cls):
    n_positional, expected = EXPECTED[cls]
    params = list(inspect.signature(cls.__init__).parameters.values())
    assert params[0].name == "self"
    got = [(p.name, p.default) for p in params[1:]]
    assert got == expected
    for value, (_, default) in zip((p.default for p in params[1:]), expected):
        assert type(value) is type(default)  # 1.0 is not 1, True is not 1
    kinds = [p.kind for p in params[1:]]
    assert kinds == ([inspect.Parameter.POSITIONAL_OR_KEYWORD] * n_positional
                     + [inspect.Parameter.KEYWORD_ONLY] * (len(expected) - n_positional))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_init_stores_every_argument_unchanged(cls):
    n_positional, expected = EXPECTED[cls]
    est = cls()
    assert est.get_params(deep=False) == dict(expected)
    assert set(vars(est)) == {name for name, _ in expected}  # nothing else is set in __init__
    marker = object()
    assert cls(callbacks=[marker]).callbacks[0] is marker
    if n_positional:
        first = expected[0][0]
        assert getattr(cls(7), first) == 7
    else:
        with pytest.raises(TypeError):
            cls(7)
    with pytest.raises(TypeError, match="unexpected"):
        cls(not_a_parameter=1)
    changed = cls(batch_size=3, random_state=np.random.RandomState(0))
    again = clone(changed)
    assert again.batch_size == 3 and again is not changed
    assert repr(cls(batch_size=3)) == f"{cls.__name__}(batch_size=3)"  # sklearn shows changed values only
    assert cls().set_params(verbose=2).verbose == 2


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_constraints_and_docstring_cover_exactly_the_signature(cls):
    names = [name for name, _ in EXPECTED[cls][1]]
    assert list(cls._parameter_constraints) == names
    doc = cls.__doc__
    assert "{parameters}" not in doc
    section = doc[doc.index("Parameters\n"):doc.index("Attributes\n")]
    entries = re.findall(r"^\s*(\w+) : .*, default=(.*)$", section, flags=re.MULTILINE)
    assert [name for name, _ in entries] == names
    defaults = dict(EXPECTED[cls][1])
    for name, shown in entries:
        assert shown == _show(defaults[name]), name


@pytest.mark.parametrize(
    "cls, params",
    [(GRBM, {"batch_size": 0}), (GRBM, {"optimizer": "rmsprop"}), (GRBM, {"features": "U"}),
     (EBM, {"replay_reinit": 1.5}), (EBM, {"n_filters": 0}), (EBM, {"statistics": "resnet"}),
     (NNEFH, {"negative_init": 1.5}), (NNEFH, {"compile": "fast"}), (NNEFH, {"latent_statistics": "mode"}),
     (NNEFH, {"max_grad_norm": 0.0}), (GRBM, {"log_partition": "quadrature"}), (EBM, {"checkpoint_every": 0})],
)
def test_constraints_reject_bad_values(cls, params):
    X = np.random.default_rng(0).normal(size=(8, 64))
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter of {cls.__name__} must be"):
        cls(**params).fit(X)


def test_a_spec_refuses_overrides_of_parameters_it_lacks():
    with pytest.raises(ValueError, match="not in the signature"):
        ParameterSpec(("batch_size",), learning_rate=dict(default=1.0))


def test_defaults_are_shown_as_the_docstrings_write_them():
    assert [_show(v) for v in (1e-3, 1e-4, 5e-5, 3.2e-3, 0.05, 0.01, 20.0, 0.0, "auto", None, True, 64)] == [
        "1e-3", "1e-4", "5e-5", "3.2e-3", "0.05", "0.01", "20.0", "0.0", '"auto"', "None", "True", "64"]
