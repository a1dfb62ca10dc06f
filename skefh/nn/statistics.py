"""Sufficient-statistics networks U(x).

The image network follows the non-local net of Nijkamp et al. (2020), which the NN-EFH paper
(Abdulsalam & Makin, AAAI 2025, Methods: "three convolutional layers interspersed with
self-attention layers") and the first author's EBM code reuse: three 3x3 convolution +
LeakyReLU(0.05) + 2x2 max-pool stages with a non-local (embedded-Gaussian) attention block after
the first two, then a dense layer to the ``n_statistics`` sufficient statistics. With
``n_filters=128`` the reference has 8 * n_filters = 1024 statistics; here the two sizes are
independent so that any image size from 8x8 upwards works (the dense layer's input is
``4 * n_filters * (H // 8) * (W // 8)``).

Tabular data gets a two-layer MLP of the same width as U.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .frozen import Dense, conv2d

__all__ = [
    "NonLocalBlock",
    "ConvStatistics",
    "MLPStatistics",
    "build_statistics_net",
    "ACTIVATIONS",
    "DOWNSAMPLING",
]


def _leaky_relu(negative_slope: float) -> nn.Module:
    return nn.LeakyReLU(negative_slope)


# Smooth activations give Langevin dynamics continuous input gradients (LeakyReLU + max-pool
# gives piecewise-constant ones); JEM issue #8 reports Swish stabilising EBM training.
ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    "leaky_relu": _leaky_relu,
    "swish": lambda _slope: nn.SiLU(),
}


def _activation(name: str, negative_slope: float) -> nn.Module:
    try:
        return ACTIVATIONS[name](negative_slope)
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None


#: How the image network's stages halve the resolution (see :class:`ConvStatistics`).
DOWNSAMPLING = ("maxpool", "avgpool", "stride")


def _halved(n: int, downsample: str) -> int:
    """Size after one stage: floor(n / 2) for pooling, ceil(n / 2) for the strided convolution."""
    return (n + 1) // 2 if downsample == "stride" else n // 2


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool) -> torch.Tensor:
    """softmax(q k^T) v with unscaled dot products (as in the reference, not 1/sqrt(d))."""
    if fused:
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)
    return torch.bmm(torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1), v)


class NonLocalBlock(nn.Module):
    """Residual non-local (embedded-Gaussian) attention block.

    ``y = x + W_z(softmax(theta(x)^T phi(x)) g(x))`` where theta, phi and g are 1x1
    convolutions to ``channels // 2`` channels, phi and g are max-pooled 2x2 (keys and values
    at a quarter of the positions), the scores are not scaled by 1/sqrt(d) (as in the
    reference), and ``W_z`` is zero-initialised so the block starts as the identity.

    Parameters
    ----------
    channels : int
        Number of input and output channels.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        keys, values = self.phi(x), self.g(x)
        if min(height, width) >= 2:
            keys = F.max_pool2d(keys, 2)
            values = F.max_pool2d(values, 2)
        # Under channels_last these flatten/transpose pairs are views, not copies.
        q = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, C/2)
        k = keys.flatten(2).transpose(1, 2)  # (B, HW/4, C/2)
        v = values.flatten(2).transpose(1, 2)  # (B, HW/4, C/2)
        # On the CPU scaled_dot_product_attention takes an unfused path that is slower (forward +
        # input gradient) than three plain operations (see the performance page of the docs).
        y = _attention(q, k, v, fused=x.device.type != "cpu")  # (B, HW, C/2)
        y = y.transpose(1, 2).reshape(batch, -1, height, width)  # (B, C/2, H, W)
        return x + self.out(y)


class ConvStatistics(nn.Module):
    """The reference image network: U(x) for x of shape ``(C, H, W)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` with ``H, W >= 8``.
    n_statistics : int, default=1024
        Size of U(x).
    n_filters : int, default=128
        Channels of the first convolution (then 2x and 4x).
    attention : bool or "last", default=True
        Put non-local blocks after the first two stages (True), after the second only ("last":
        attention over a quarter of the positions, the cheaper of the two blocks) or nowhere.
    activation : {"leaky_relu", "swish"}, default="leaky_relu"
        Non-linearity used everywhere (slope 0.05 for the leaky ReLU, as in the reference).
    negative_slope : float, default=0.05
    downsample : {"maxpool", "avgpool", "stride"}, default="maxpool"
        How each stage halves the resolution: a 3x3 convolution then a 2x2 max-pool (the
        reference), the same with an average pool, or a stride-2 convolution (4x4, or 3x3 on
        odd sizes). Max-pooling gives Langevin dynamics input gradients that jump where the
        maximum changes; the other two are continuous in x (with a smooth activation, smooth).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        n_statistics: int = 1024,
        n_filters: int = 128,
        *,
        attention: bool = True,
        activation: str = "leaky_relu",
        negative_slope: float = 0.05,
        downsample: str = "maxpool",
    ):
        super().__init__()
        if downsample not in DOWNSAMPLING:
            raise ValueError(f"unknown downsample {downsample!r}; expected one of {DOWNSAMPLING}")
        if attention not in (True, False, "last"):
            raise ValueError(f"attention must be True, False or 'last', got {attention!r}")
        channels, height, width = (int(s) for s in image_shape)
        if height < 8 or width < 8:
            raise ValueError(
                f"the convolutional statistics net needs images of at least 8x8, got {height}x{width}"
            )
        self.image_shape = (channels, height, width)
        self.downsample = downsample
        widths = (n_filters, 2 * n_filters, 4 * n_filters)
        sizes = [(height, width)]
        for _ in range(3):
            sizes.append(tuple(_halved(n, downsample) for n in sizes[-1]))
        convs = []
        for (c_in, c_out), size in zip(zip((channels,) + widths[:2], widths), sizes[:3]):
            if downsample == "stride":
                # 4x4/2 halves an even size exactly; an odd size takes 3x3/2 (7 -> 4).
                kernel = tuple(4 if n % 2 == 0 else 3 for n in size)
                convs.append(nn.Conv2d(c_in, c_out, kernel, stride=2, padding=1))
            else:
                convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv1, self.conv2, self.conv3 = convs
        self.attn1 = NonLocalBlock(widths[0]) if attention is True else nn.Identity()
        self.attn2 = NonLocalBlock(widths[1]) if attention else nn.Identity()
        self.act = _activation(activation, negative_slope)
        self._monotonic = activation == "leaky_relu" and negative_slope >= 0
        flat = widths[2] * sizes[3][0] * sizes[3][1]
        self.fc = Dense(flat, n_statistics)
        self.n_statistics = n_statistics

    def _stage(self, conv: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """conv -> activation -> 2x2 pool, or a strided conv -> activation."""
        if self.downsample == "stride":
            return self.act(F.conv2d(h, conv.weight, conv.bias, stride=2, padding=1))
        if self.downsample == "avgpool":
            return F.avg_pool2d(self.act(conv2d(h, conv.weight, conv.bias, padding=conv.padding)), 2)
        height, width = h.shape[-2:]
        if height % 2 or width % 2:
            # The floor-mode pool never reads the last row/column of an odd-sized output, so
            # leave out the bottom/right padding and compute one row/column less (6x6 instead of
            # 7x7 outputs in the third convolution at 28x28): the same function, less work.
            h = F.pad(h, (1, 1 - width % 2, 1, 1 - height % 2))
            h = conv2d(h, conv.weight, conv.bias)
        else:
            h = conv2d(h, conv.weight, conv.bias, padding=conv.padding)
        if self._monotonic:
            # max-pool commutes with a non-decreasing activation: pooling first is the same
            # function (and input gradient) with the activation on 4x fewer values.
            return self.act(F.max_pool2d(h, 2))
        return F.max_pool2d(self.act(h), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn1(self._stage(self.conv1, x))  # (B, nf, H/2, W/2)
        h = self.attn2(self._stage(self.conv2, h))  # (B, 2nf, H/4, W/4)
        h = self._stage(self.conv3, h)  # (B, 4nf, H/8, W/8)
        return self.act(self.fc(h.flatten(1)))  # (B, n_statistics)


class MLPStatistics(nn.Module):
    """Two-layer perceptron U(x) for tabular rows of length ``n_features``.

    Parameters
    ----------
    n_features : int
    n_statistics : int, default=256
        Width of both layers and size of U(x).
    activation : {"leaky_relu", "swish"}, default="leaky_relu"
    negative_slope : float, default=0.05
    """

    def __init__(
        self,
        n_features: int,
        n_statistics: int = 256,
        *,
        activation: str = "leaky_relu",
        negative_slope: float = 0.05,
    ):
        super().__init__()
        self.net = nn.Sequential(
            Dense(n_features, n_statistics),
            _activation(activation, negative_slope),
            Dense(n_statistics, n_statistics),
            _activation(activation, negative_slope),
        )
        self.n_statistics = n_statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def build_statistics_net(
    kind,
    input_shape: Sequence[int],
    n_statistics: int,
    *,
    n_filters: int = 128,
    attention: bool = True,
    activation: str = "leaky_relu",
    negative_slope: float = 0.05,
    spectral_norm: bool = False,
    downsample: str = "maxpool",
) -> nn.Module:
    """Build U(x) for inputs of shape ``input_shape``.

    Parameters
    ----------
    kind : {"conv", "mlp"} or callable
        A callable is called as ``kind(input_shape, n_statistics)`` and must return an
        ``nn.Module`` mapping ``(B, *input_shape)`` to ``(B, n_statistics)``.
    input_shape : tuple of int
        ``(C, H, W)`` for "conv", ``(D,)`` for "mlp".
    n_statistics : int
    n_filters, attention, activation, negative_slope, downsample
        Passed to :class:`ConvStatistics` / :class:`MLPStatistics`.
    spectral_norm : bool, default=False
        Wrap the convolutions and dense layers in spectral normalisation (Miyato et al.
        2018). The attention blocks' zero-initialised output projections are left out (the
        spectral norm of a zero matrix cannot be normalised), and attention itself is not
        Lipschitz-bounded, so with ``attention=True`` this bounds the convolutional and dense
        layers, not the whole network.

    Returns
    -------
    torch.nn.Module
    """
    if callable(kind):
        net = kind(tuple(input_shape), n_statistics)
        if not isinstance(net, nn.Module):
            raise TypeError(
                f"the statistics factory must return a torch.nn.Module, got {type(net).__name__}"
            )
    elif kind == "conv":
        if len(input_shape) != 3:
            raise ValueError(f"the conv statistics net needs (C, H, W) inputs, got {input_shape}")
        net = ConvStatistics(
            input_shape,
            n_statistics,
            n_filters,
            attention=attention,
            activation=activation,
            negative_slope=negative_slope,
            downsample=downsample,
        )
    elif kind == "mlp":
        net = MLPStatistics(
            math.prod(input_shape),
            n_statistics,
            activation=activation,
            negative_slope=negative_slope,
        )
    else:
        raise ValueError(f"unknown statistics network {kind!r}; expected 'conv', 'mlp' or a callable")
    if spectral_norm:
        _apply_spectral_norm(net)
    return net


def _apply_spectral_norm(net: nn.Module) -> None:
    from torch.nn.utils.parametrizations import spectral_norm

    for name, child in list(net.named_children()):
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            # The zero-initialised attention output has spectral norm 0; normalising it would
            # divide by ~0, so it stays a plain (identity-at-init) residual branch.
            if child.weight.detach().abs().sum() > 0:
                setattr(net, name, spectral_norm(child))
        else:
            _apply_spectral_norm(child)
