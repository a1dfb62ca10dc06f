"""The sufficient-statistics networks: shapes, parameter counts, attention, pooling order."""

import pytest
import torch
import torch.nn.functional as F

from skefh.nn import ConvStatistics, MLPStatistics, NonLocalBlock, build_statistics_net


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64), (1, 9, 13)])
def test_conv_statistics_accepts_any_image_from_8x8(shape):
    net = ConvStatistics(shape, n_statistics=12, n_filters=4)
    out = net(torch.randn(2, *shape))
    assert out.shape == (2, 12)


def test_conv_statistics_rejects_images_below_8x8():
    with pytest.raises(ValueError, match="at least 8x8"):
        ConvStatistics((1, 7, 28), 16, 4)


@pytest.mark.parametrize(
    "shape, expected",
    [((1, 28, 28), 6_361_024), ((1, 32, 32), 10_031_040), ((3, 32, 32), 10_033_344)],
)
def test_reference_parameter_counts(shape, expected):
    """algorithms.md section 4.4: the reference trunk with n_filters=128 and U of size 1024."""
    net = ConvStatistics(shape, n_statistics=1024, n_filters=128)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_non_local_block_is_identity_at_initialisation():
    block = NonLocalBlock(8)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(block(x), x)


def test_non_local_block_matches_explicit_attention():
    torch.manual_seed(3)
    block = NonLocalBlock(8).double()
    torch.nn.init.normal_(block.out.weight)
    x = torch.randn(2, 8, 6, 4, dtype=torch.float64)
    q = block.theta(x).flatten(2)  # (B, C/2, HW)
    k = F.max_pool2d(block.phi(x), 2).flatten(2)  # (B, C/2, HW/4)
    v = F.max_pool2d(block.g(x), 2).flatten(2)
    attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # unscaled dot products
    y = (attention @ v.transpose(1, 2)).transpose(1, 2).reshape(2, 4, 6, 4)
    torch.testing.assert_close(block(x), x + block.out(y))


def test_the_fused_and_the_plain_attention_are_the_same_function():
    """The block uses scaled_dot_product_attention on CUDA and bmm/softmax on the CPU."""
    from skefh.nn.statistics import _attention

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, n, 8, generator=gen) for n in (20, 5, 5))
    torch.testing.assert_close(_attention(q, k, v, fused=True), _attention(q, k, v, fused=False))
    scaled = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1) @ v  # the library does not scale
    assert not torch.allclose(_attention(q, k, v, fused=False), scaled)


def test_pooling_before_the_activation_is_the_same_function():
    """The conv net pools before its LeakyReLU (cheaper); outputs and gradients are unchanged."""
    torch.manual_seed(0)
    net = ConvStatistics((1, 12, 12), 10, 4).double()
    x = torch.randn(3, 1, 12, 12, dtype=torch.float64, requires_grad=True)

    def reference(x):
        h = F.max_pool2d(net.act(net.conv1(x)), 2)
        h = net.attn1(h)
        h = F.max_pool2d(net.act(net.conv2(h)), 2)
        h = net.attn2(h)
        h = F.max_pool2d(net.act(net.conv3(h)), 2)
        return net.act(net.fc(h.flatten(1)))

    w = torch.randn(3, 10, dtype=torch.float64)
    (g_fast,) = torch.autograd.grad((net(x) * w).sum(), x)
    (g_ref,) = torch.autograd.grad((reference(x) * w).sum(), x)
    torch.testing.assert_close(net(x), reference(x))
    torch.testing.assert_close(g_fast, g_ref)


def test_swish_network_is_smooth_and_runs():
    net = build_statistics_net("conv", (1, 8, 8), 6, n_filters=4, activation="swish")
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 6)


def test_mlp_statistics_shape():
    assert MLPStatistics(5, 7)(torch.randn(4, 5)).shape == (4, 7)


def test_spectral_norm_bounds_each_layer():
    torch.manual_seed(0)
    net = build_statistics_net("mlp", (6,), 16, spectral_norm=True)
    for _ in range(20):  # power iterations run in training-mode forwards
        net(torch.randn(8, 6))
    for layer in (net.net[0], net.net[2]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert float(sigma) == pytest.approx(1.0, rel=0.05)


def test_custom_statistics_factory_and_errors():
    def factory(shape, n):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(shape[0], n))

    net = build_statistics_net(factory, (3,), 4)
    assert net(torch.randn(2, 3)).shape == (2, 4)
    with pytest.raises(TypeError, match="must return a torch.nn.Module"):
        build_statistics_net(lambda shape, n: "not a module", (3,), 4)
    with pytest.raises(ValueError, match="unknown statistics network"):
        build_statistics_net("resnet", (3,), 4)
    with pytest.raises(ValueError, match="unknown activation"):
        build_statistics_net("mlp", (3,), 4, activation="tanh")


def test_odd_sizes_skip_the_rows_the_pool_discards():
    """At odd sizes the conv computes one row/column less; the network is the same function."""
    torch.manual_seed(0)
    net = ConvStatistics((1, 28, 28), 10, 4).double()
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64, requires_grad=True)

    def reference(x):
        h = net.attn1(F.max_pool2d(net.act(net.conv1(x)), 2))
        h = net.attn2(F.max_pool2d(net.act(net.conv2(h)), 2))
        h = F.max_pool2d(net.act(net.conv3(h)), 2)  # 7x7 -> 3x3: row and column 6 unused
        return net.act(net.fc(h.flatten(1)))

    w = torch.randn(2, 10, dtype=torch.float64)
    torch.testing.assert_close(net(x), reference(x))
    (g_fast,) = torch.autograd.grad((net(x) * w).sum(), x)
    (g_ref,) = torch.autograd.grad((reference(x) * w).sum(), x)
    torch.testing.assert_close(g_fast, g_ref)
