"""Signature, constraints and docstring of every estimator agree (after scikit-learn's
``test_docstring_parameters``), and ``__init__`` only stores its arguments."""

import inspect

import numpy as np
import pytest
from sklearn.base import clone

from skefh import EBM, GRBM, NNEFH

docscrape = pytest.importorskip("numpydoc.docscrape")

ESTIMATORS = [NNEFH, EBM, GRBM]
PUBLIC_METHODS = ["fit", "partial_fit", "transform", "sample", "sample_chains", "score", "score_samples",
                  "estimate_log_partition", "free_energy", "get_feature_names_out"]


def _signature(cls):
    return list(inspect.signature(cls.__init__).parameters.values())[1:]


def _shown(value):
    """A default as the docstrings write it."""
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_init_is_written_in_the_class(cls):
    assert "__init__" in vars(cls)
    source = inspect.getsource(cls)
    assert "{parameters}" not in source
    for p in _signature(cls):
        assert f"self.{p.name} = {p.name}\n" in source, p.name


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_signature_constraints_and_docstring_agree(cls):
    params = _signature(cls)
    names = [p.name for p in params]
    assert sorted(cls._parameter_constraints) == sorted(names)
    documented = docscrape.ClassDoc(cls)["Parameters"]
    assert [entry.name for entry in documented] == names  # same order as the signature
    for entry, p in zip(documented, params):
        assert entry.desc or entry.name in ("batch_size", "checkpoint_every", "optimizer", "lr_schedule",
                                            "step_schedule"), f"{entry.name} is not described"
        default = entry.type.rsplit("default=", 1)
        assert len(default) == 2, f"{entry.name}: no default in {entry.type!r}"
        shown = default[1].strip()
        if isinstance(p.default, float) and 0 < abs(p.default) < 0.01:
            assert float(shown) == p.default, entry.name
        else:
            assert shown == _shown(p.default), entry.name
    # Keyword-only after the first (as scikit-learn's estimators are).
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", PUBLIC_METHODS)
def test_public_methods_document_their_parameters(cls, method):
    names = [name for name in inspect.signature(getattr(cls, method)).parameters if name not in ("self", "cls")]
    documented = []
    for entry in docscrape.FunctionDoc(getattr(cls, method))["Parameters"]:
        documented += [name.strip() for name in entry.name.split(",")]
    assert documented == names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_init_stores_every_argument_unchanged(cls):
    params = _signature(cls)
    est = cls()
    assert set(vars(est)) == {p.name for p in params}  # nothing else is set in __init__
    marker = object()
    assert cls(callbacks=[marker]).callbacks[0] is marker
    with pytest.raises(TypeError):
        cls(not_a_parameter=1)
    changed = cls(batch_size=3, random_state=np.random.RandomState(0))
    assert clone(changed).batch_size == 3
    assert repr(cls(batch_size=3)) == f"{cls.__name__}(batch_size=3)"


@pytest.mark.parametrize("cls", [NNEFH, EBM])
def test_the_class_docstring_says_where_training_chains_start(cls):
    """The summary says what the defaults do: chains restarted from noise for images, a replay
    buffer for tabular data (as the "auto" values resolve)."""
    summary = " ".join(docscrape.ClassDoc(cls)["Extended Summary"])
    est = cls()
    est.image_shape_ = (1, 28, 28)
    assert est._resolve_params()["replay_buffer"] == 0
    assert "restarted from noise" in summary
    est.image_shape_ = None
    assert est._resolve_params()["replay_buffer"] > 0
    assert "replay buffer" in summary
