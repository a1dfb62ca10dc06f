"""Products with frozen weights, routed through oneDNN on the CPU.

Two operations of the Langevin step measured slow on the CPU with PyTorch's default routing:

- float32 ``F.linear`` goes to MKL's sgemm, which on some CPUs runs well below what the machine
  can do (measured on an AMD EPYC with AVX-512, two threads: 210 GFLOP/s for a 2048-cube
  product, against 480 for oneDNN's matrix product; PyTorch already sends the convolutions to
  oneDNN);
- the input gradient of a convolution with one to four input channels (the first layer of an
  image network) goes to oneDNN's backward-data kernel, which is slow for that shape (4.6 ms at
  1x28x28 -> 128 channels, batch 64, against 1.5 ms for the same gradient written as one matrix
  product and a ``fold``).

During sampling the weights are frozen (:func:`skefh.samplers.sampling_mode`), so only the
input gradient is ever needed, and both products go to oneDNN's matrix product directly (the
input gradient reads the weight through a transposed view: no copy, nothing cached between
calls). The fast paths are taken only where they compute the same function up to float32
rounding: float32 CPU tensors, weights that do not require gradients, no autocast (bf16
autocast keeps PyTorch's path), not under ``torch.compile``. Everywhere else :func:`dense` is
``F.linear`` and :func:`conv2d` is ``F.conv2d``.

oneDNN's matrix product is reached through ``torch.ops.mkldnn._linear_pointwise``, a private
operator (Inductor's lowering target) that a PyTorch release may rename, drop or change. It is
used only after a probe, run once on first use, finds it present and computing ``F.linear`` on a
small input, with a bias and with a transposed-view weight (the two ways it is called here); a
PyTorch that fails the probe gets the plain operations: the same results, PyTorch's speed.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["Dense", "dense", "conv2d", "set_onednn_paths"]

#: Largest ``in_channels * kernel_height * kernel_width`` whose input gradient is computed as a
#: matrix product and a fold (oneDNN's backward-data kernel is the faster one above it).
SHALLOW_CONV_MAX_PATCH = 36


def _onednn_linear_works() -> bool:
    """Whether oneDNN's private linear operator exists and computes ``F.linear``, as called here."""
    if not torch.backends.mkldnn.is_available():
        return False
    # A private generator: the probe runs on first use, and must not move the global RNG. The
    # dtype and device are spelled out, as a default dtype or device may be set when it runs.
    options = dict(generator=torch.Generator().manual_seed(0), dtype=torch.float32, device="cpu")
    x, weight, bias = torch.randn(3, 5, **options), torch.randn(4, 5, **options), torch.randn(4, **options)
    grad_output = torch.randn(3, 4, **options)
    try:
        with torch.no_grad():
            forward = _onednn_linear(x, weight, bias)  # as in _FrozenDense.forward
            backward = _onednn_linear(grad_output, weight.t())  # a transposed view, as in the backward
            expected = (F.linear(x, weight, bias), F.linear(grad_output, weight.t()))
            return all(
                got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-5)
                for got, want in zip((forward, backward), expected)
            )
    # Whatever a changed private operator does (gone: AttributeError; new signature: TypeError or
    # RuntimeError; no CPU kernel: NotImplementedError), the answer is the plain operations.
    except Exception:
        return False


_onednn_works: Optional[bool] = None  # _onednn_linear_works(), once it has run
_enabled = True


def _onednn_available() -> bool:
    """The probe's cached answer (two threads racing on first use both compute the same one)."""
    global _onednn_works
    if _onednn_works is None:
        _onednn_works = _onednn_linear_works()
    return _onednn_works


def set_onednn_paths(enabled: bool) -> bool:
    """Turn the oneDNN paths of :func:`dense` and :func:`conv2d` on or off; return the old setting.

    Off, they are ``F.linear`` and ``F.conv2d``. The switch exists for measurement (the sampler
    benchmark's ablation) and for CPUs where PyTorch's default routing is the faster one.
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def _applies(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> bool:
    return (
        _enabled
        and torch.backends.mkldnn.enabled
        and x.device.type == "cpu"
        and weight.device.type == "cpu"
        and x.numel() > 0
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not weight.requires_grad
        and (bias is None or (not bias.requires_grad and bias.dtype == torch.float32))
        and not torch.is_autocast_enabled("cpu")
        # Inductor lowers oneDNN's linear operator itself and rejects a transposed-view weight;
        # under torch.compile the plain operations are left to it.
        and not torch.compiler.is_compiling()
        # Last: the first call runs the probe, which must not be traced by torch.compile.
        and _onednn_available()
    )


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None):
    """``x weight^T + bias`` by oneDNN; ``weight`` may be a transposed view."""
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


class _FrozenDense(torch.autograd.Function):
    """``x W^T + b`` through oneDNN, differentiable in ``x`` only (W and b are frozen)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(weight)  # (saved, so that a weight changed in place is an error)
        return _onednn_linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (weight,) = ctx.saved_tensors
        return _onednn_linear(grad_output, weight.t()), None, None


def dense(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN where that applies (see the module notes).

    Parameters
    ----------
    x : torch.Tensor of shape (..., in_features)
    weight : torch.Tensor of shape (out_features, in_features)
    bias : torch.Tensor of shape (out_features,), optional

    Returns
    -------
    torch.Tensor of shape (..., out_features)
    """
    if weight.dim() != 2 or not _applies(x, weight, bias):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1])
    out = _FrozenDense.apply(flat, weight.detach(), bias)
    return out if x.dim() == 2 else out.reshape(*x.shape[:-1], weight.shape[0])


class Dense(nn.Linear):
    """``nn.Linear`` whose product goes through :func:`dense` (same parameters and state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense(x, self.weight, self.bias)


class _FrozenShallowConv(torch.autograd.Function):
    """A stride-1 convolution with few input channels, differentiable in ``x`` only.

    Its input gradient is ``fold(g W)``: the output gradient at every position times the
    (out_channels, in_channels * k * k) weight matrix gives each position's patch gradient, and
    ``fold`` adds the overlapping patches back onto the image.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.image_size = x.shape[-2:]
        ctx.kernel_size = weight.shape[-2:]
        ctx.padding = padding
        ctx.save_for_backward(weight)
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        batch, out_channels, height, width = grad_output.shape
        # (B, H, W, C_out) rows: a view when the gradient is channels-last, as it is here.
        rows = grad_output.permute(0, 2, 3, 1).reshape(-1, out_channels)
        (weight,) = ctx.saved_tensors
        patch_matrix = weight.reshape(out_channels, -1)  # (C_out, C_in*k*k)
        patches = _onednn_linear(rows, patch_matrix.t())  # (B*H*W, C_in*k*k)
        patches = patches.view(batch, height * width, -1).transpose(1, 2)
        grad_input = F.fold(patches, ctx.image_size, ctx.kernel_size, padding=ctx.padding)
        return grad_input, None, None, None


def conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, padding=0
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1), with a faster input gradient
    on the CPU for frozen weights with few input channels.

    Parameters
    ----------
    x : torch.Tensor of shape (B, C_in, H, W)
    weight : torch.Tensor of shape (C_out, C_in, k_h, k_w)
    bias : torch.Tensor of shape (C_out,), optional
    padding : int, tuple of two ints or str, default=0
        A string ("same", "valid") always takes ``F.conv2d``.

    Returns
    -------
    torch.Tensor of shape (B, C_out, H + 2 p_h - k_h + 1, W + 2 p_w - k_w + 1)
    """
    if isinstance(padding, str):  # "same" / "valid": PyTorch's own convolution
        return F.conv2d(x, weight, bias, padding=padding)
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    shallow = weight.dim() == 4 and weight.shape[1:].numel() <= SHALLOW_CONV_MAX_PATCH
    if not (shallow and x.dim() == 4 and x.requires_grad and _applies(x, weight, bias)):
        return F.conv2d(x, weight, bias, padding=padding)
    return _FrozenShallowConv.apply(x, weight.detach(), bias, padding)
