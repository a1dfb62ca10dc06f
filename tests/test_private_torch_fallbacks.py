"""The two private PyTorch APIs skefh uses, each taken away: the library falls back to public API.

- ``torch.ops.mkldnn._linear_pointwise`` (:mod:`skefh.nn.frozen`): a probe on first use decides
  whether :func:`dense` and :func:`conv2d` may take oneDNN's paths; otherwise they are
  ``F.linear`` and ``F.conv2d``.
- ``nn.Module._compiled_call_impl`` (:func:`skefh.nn.base.compiled`): a probe decides whether the
  compiled call can be installed; otherwise the block runs the module eagerly.

The broken operators below raise or answer wrongly when called, so a fallback that still called
them would fail these tests instead of passing by accident.
"""

import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skefh.nn import MLPStatistics, base, frozen
from skefh.nn.frozen import conv2d, dense
from skefh.samplers import sampling_mode

needs_onednn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this PyTorch build has no oneDNN"
)


def _raise_type_error(*args):
    raise TypeError("_linear_pointwise() takes a new argument")  # a changed signature


def _zeros_of_the_linear_shape(x, weight, bias, *args):
    return torch.zeros(x.shape[0], weight.shape[0])  # present, runs, gives the wrong numbers


#: What a later PyTorch might have in place of ``torch.ops.mkldnn``.
BROKEN_MKLDNN = {
    "operator removed": types.SimpleNamespace(),
    "signature changed": types.SimpleNamespace(_linear_pointwise=_raise_type_error),
    "values changed": types.SimpleNamespace(_linear_pointwise=_zeros_of_the_linear_shape),
}


@pytest.fixture(params=list(BROKEN_MKLDNN), ids=list(BROKEN_MKLDNN))
def broken_onednn(request, monkeypatch):
    """``torch.ops.mkldnn`` replaced by a broken stand-in, and the probe not yet run."""
    monkeypatch.setattr(torch.ops, "mkldnn", BROKEN_MKLDNN[request.param])
    monkeypatch.setattr(frozen, "_onednn_works", None)
    return request.param


def _value_and_input_gradient(fn, x):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (grad,) = torch.autograd.grad(out, x, direction)
    return out.detach(), grad, type(out.grad_fn).__name__


# ---------------------------------------------------------------------------------------------
# torch.ops.mkldnn._linear_pointwise


@needs_onednn
def test_the_probe_accepts_this_pytorchs_operator_and_leaves_the_global_rng_alone():
    """On a PyTorch whose operator works, the fast paths stay on (the behaviour is unchanged)."""
    state = torch.get_rng_state()
    assert frozen._onednn_linear_works()
    assert torch.equal(torch.get_rng_state(), state)  # the first dense() call draws nothing


def test_the_probe_rejects_a_broken_operator(broken_onednn):
    assert not frozen._onednn_available()
    assert frozen._onednn_works is False  # cached: the probe runs once


def test_dense_falls_back_to_linear_in_value_and_input_gradient(broken_onednn):
    weight, bias = torch.randn(6, 5), torch.randn(6)  # frozen: the fast path would apply
    x = torch.randn(4, 3, 5)
    expected, expected_grad, _ = _value_and_input_gradient(lambda v: F.linear(v, weight, bias), x)
    got, got_grad, grad_fn = _value_and_input_gradient(lambda v: dense(v, weight, bias), x)
    assert "FrozenDense" not in grad_fn
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-5, atol=1e-5)


def test_shallow_conv2d_falls_back_to_conv2d_in_value_and_input_gradient(broken_onednn):
    weight, bias = torch.randn(8, 1, 3, 3), torch.randn(8)  # one input channel: the shallow path
    x = torch.randn(2, 1, 9, 9)
    expected, expected_grad, _ = _value_and_input_gradient(lambda v: F.conv2d(v, weight, bias, padding=1), x)
    got, got_grad, grad_fn = _value_and_input_gradient(lambda v: conv2d(v, weight, bias, padding=1), x)
    assert "FrozenShallowConv" not in grad_fn
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_a_frozen_network_gives_the_fast_paths_gradient_after_the_fallback(monkeypatch):
    """The same sampling-mode input gradient with the operator (normal path) and without it."""
    net = MLPStatistics(7, 33)
    x = torch.randn(9, 7)
    monkeypatch.setattr(frozen, "_onednn_works", None)
    with sampling_mode(net):
        fast, fast_grad, _ = _value_and_input_gradient(net, x)
        assert frozen._onednn_works is True  # the first pass took the oneDNN paths
        monkeypatch.setattr(torch.ops, "mkldnn", BROKEN_MKLDNN["operator removed"])
        monkeypatch.setattr(frozen, "_onednn_works", None)
        plain, plain_grad, _ = _value_and_input_gradient(net, x)
    assert frozen._onednn_works is False
    torch.testing.assert_close(plain, fast, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plain_grad, fast_grad, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# nn.Module._compiled_call_impl


@pytest.fixture
def fake_compile(monkeypatch):
    """``torch.compile`` replaced by a wrapper that records its calls (no compilation: fast)."""
    calls = {"compile": 0, "run": 0}

    def compile_(fn, **kwargs):
        calls["compile"] += 1

        def run(*args, **kw):
            calls["run"] += 1
            return fn(*args, **kw)

        return run

    monkeypatch.setattr(torch, "compile", compile_)
    return calls


@pytest.fixture
def no_compiled_call_hook(monkeypatch):
    """A PyTorch whose ``nn.Module.__call__`` no longer reads ``_compiled_call_impl``."""
    monkeypatch.setattr(nn.Module, "__call__", lambda self, *args, **kwargs: self._call_impl(*args, **kwargs))
    monkeypatch.setattr(base, "_compiled_call_hook", None)


def test_the_compiled_call_probe_matches_the_hook():
    assert base._compiled_call_hook_works()  # torch >= 2.2 (the package's floor is above it)


def test_compiled_installs_the_call_and_restores_the_previous_one(fake_compile):
    module, x = nn.Linear(3, 2), torch.randn(4, 3)
    expected = module(x)
    for previous in [None, module._call_impl]:  # never compiled; compiled by the user before
        module._compiled_call_impl = previous
        with base.compiled(module, "max-autotune") as inside:
            assert inside is module
            torch.testing.assert_close(module(x), expected)
        assert module._compiled_call_impl is previous
    assert fake_compile == {"compile": 2, "run": 2}  # the module did run through the compiled call


def test_compiled_runs_eagerly_when_the_hook_is_gone(fake_compile, no_compiled_call_hook):
    assert not base._compiled_call_hook_works()
    module, x = nn.Linear(3, 2), torch.randn(4, 3)
    expected = module(x)
    before = dict(vars(module))
    with pytest.warns(RuntimeWarning, match="runs uncompiled"):
        with base.compiled(module, True) as inside:
            assert inside is module
            torch.testing.assert_close(module(x), expected)
            assert vars(module) == before  # nothing installed
    assert vars(module) == before
    assert base._compiled_call_hook is False  # cached
    assert fake_compile["compile"] == 0
