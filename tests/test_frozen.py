"""The oneDNN paths for frozen weights (skefh.nn.frozen) against F.linear and F.conv2d."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from skefh.nn import MLPStatistics, frozen
from skefh.nn.frozen import Dense, conv2d, dense, set_onednn_paths
from skefh.samplers import sampling_mode

pytestmark = pytest.mark.skipif(
    not frozen._onednn_available(), reason="this PyTorch build has no oneDNN linear operators"
)


def _value_and_input_gradient(fn, x, grad_output_seed=0):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_output_seed))
    (grad,) = torch.autograd.grad(out, x, direction)
    return out.detach(), grad, out.grad_fn


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 70),
    n_in=st.integers(1, 300),
    n_out=st.integers(1, 300),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_equals_linear_in_value_and_input_gradient(rows, n_in, n_out, with_bias, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, n_in, generator=gen)
    weight = torch.randn(n_out, n_in, generator=gen) / n_in**0.5
    bias = torch.randn(n_out, generator=gen) if with_bias else None
    expected, expected_grad, _ = _value_and_input_gradient(lambda v: F.linear(v, weight, bias), x)
    got, got_grad, grad_fn = _value_and_input_gradient(lambda v: dense(v, weight, bias), x)
    assert "FrozenDense" in type(grad_fn).__name__  # the fast path was the one tested
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-5, atol=1e-5)


def test_dense_keeps_leading_dimensions():
    weight, bias = torch.randn(6, 5), torch.randn(6)
    x = torch.randn(2, 3, 5)
    got = dense(x, weight, bias)
    torch.testing.assert_close(got, F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)


def test_dense_is_plain_linear_wherever_the_fast_path_does_not_apply():
    weight, x = torch.randn(4, 3), torch.randn(2, 3, requires_grad=True)
    trainable = weight.clone().requires_grad_(True)
    assert "FrozenDense" in type(dense(x, weight).grad_fn).__name__
    for name, out in {
        "weight requires grad": dense(x, trainable),
        "bias requires grad": dense(x, weight, torch.zeros(4, requires_grad=True)),
        "float64": dense(x.double(), weight.double()),
    }.items():
        assert "FrozenDense" not in type(out.grad_fn).__name__, name
    with torch.autocast("cpu", torch.bfloat16):
        assert dense(x, weight).dtype == torch.bfloat16  # autocast keeps PyTorch's path
    previous = set_onednn_paths(False)
    try:
        assert "FrozenDense" not in type(dense(x, weight).grad_fn).__name__
    finally:
        set_onednn_paths(previous)


def test_a_weight_changed_in_place_before_the_backward_pass_is_an_error():
    weight, x = torch.randn(4, 3), torch.randn(2, 3, requires_grad=True)
    out = dense(x, weight)
    with torch.no_grad():
        weight.mul_(-2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_dense_in_inference_mode_gives_the_linear_values():
    layer = Dense(5, 3).requires_grad_(False)
    x = torch.randn(4, 5)
    with torch.inference_mode():
        got = layer(x)
    torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    channels=st.integers(1, 4),
    out_channels=st.integers(1, 40),
    height=st.integers(3, 17),
    width=st.integers(3, 17),
    padding=st.sampled_from([0, 1, (1, 0), (0, 1)]),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_shallow_conv2d_equals_conv2d_in_value_and_input_gradient(
    channels, out_channels, height, width, padding, channels_last, seed
):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, channels, height, width, generator=gen)
    weight = torch.randn(out_channels, channels, 3, 3, generator=gen)
    bias = torch.randn(out_channels, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        weight = weight.contiguous(memory_format=torch.channels_last)
    expected, expected_grad, _ = _value_and_input_gradient(
        lambda v: F.conv2d(v, weight, bias, padding=padding), x
    )
    got, got_grad, grad_fn = _value_and_input_gradient(
        lambda v: conv2d(v, weight, bias, padding=padding), x
    )
    assert "FrozenShallowConv" in type(grad_fn).__name__
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-5, atol=1e-4)


def test_conv2d_with_many_input_channels_keeps_pytorchs_convolution():
    weight = torch.randn(6, 5, 3, 3)  # 5 * 9 = 45 > SHALLOW_CONV_MAX_PATCH
    x = torch.randn(2, 5, 8, 8, requires_grad=True)
    out = conv2d(x, weight, padding=1)
    assert "FrozenShallowConv" not in type(out.grad_fn).__name__
    torch.testing.assert_close(out, F.conv2d(x, weight, padding=1))


def test_sampling_mode_gives_the_mlp_statistics_the_same_input_gradient(monkeypatch):
    torch.manual_seed(0)
    net = MLPStatistics(7, 33)
    x = torch.randn(9, 7)
    _, expected, _ = _value_and_input_gradient(net, x)
    calls = []
    fast = frozen._FrozenDense.apply
    monkeypatch.setattr(frozen._FrozenDense, "apply", lambda *args: calls.append(1) or fast(*args))
    with sampling_mode(net):
        _, got, _ = _value_and_input_gradient(net, x)
    assert len(calls) == 2  # both layers took the oneDNN path
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
