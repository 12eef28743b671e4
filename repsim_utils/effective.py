"""Effective weights of a ReLU network (Ye 2025, "Unveiling the training dynamics of ReLU
networks through a linear lens", arXiv 2511.05628).

For an input x the ReLU activation pattern fixes which units are on, and the network is an
affine map of x:

    f(x) = W_eff(x) x + b_eff(x),
    W_eff(x) = W_L D_{L-1}(x) W_{L-1} ... D_1(x) W_1,
    b_eff(x) = b_L + sum_l W_L D_{L-1}(x) ... W_{l+1} D_l(x) b_l,

with D_l(x) = diag(1[pre-activation_l(x) > 0]). W_eff(x) is the input-output Jacobian almost
everywhere. Convolutions are linear maps, batch norm in eval mode is affine, and max pooling
selects one input per window, so conv nets fold in the same way.

:func:`effective_weights` computes (W_eff, b_eff) for a batch by propagating the affine map
h = J x + c through the layers, J starting as the identity, each sample with its own masks and
pooling choices: one pass of batched tensor operations, no loop over samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .models import Network


class UnsupportedLayer(TypeError):
    """A layer that is not a piecewise-affine map effective_weights can express."""


def _layers(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], float, nn.Module | None]:
    """The flat list of (name, layer), the output scale alpha, and the reference stack of a
    :class:`Network` with alpha != 1 (f = alpha (h(x; w) - h(x; w0)))."""
    if isinstance(model, Network):
        return list(model.layers.named_children()), model.alpha, model.reference
    if isinstance(model, nn.Sequential):
        return list(model.named_children()), 1.0, None
    raise UnsupportedLayer(f"effective_weights needs a repsim Network or an nn.Sequential, got "
                           f"{type(model).__name__}")


def _propagate(layers: list[tuple[str, nn.Module]], x: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, c) with the network output = J x_flat + c; J (batch, *out_shape, d_in)."""
    batch = x.shape[0]
    d_in = math.prod(x.shape[1:])
    eye = torch.eye(d_in, dtype=x.dtype, device=x.device)
    # J[b, ..., k]: derivative of the current activation w.r.t. input coordinate k
    jac = eye.reshape(1, *x.shape[1:], d_in).expand(batch, *x.shape[1:], d_in)
    const = torch.zeros_like(x)
    h = x
    for name, layer in layers:
        if isinstance(layer, nn.Linear):
            jac = torch.einsum("oi,b...ik->b...ok", layer.weight, jac)
            const = F.linear(const, layer.weight, layer.bias)
            h = layer(h)
        elif isinstance(layer, nn.Conv2d):
            b, c, hh, ww, k = jac.shape
            # the d_in input directions ride along the batch axis, without the bias
            moved = jac.permute(0, 4, 1, 2, 3).reshape(b * k, c, hh, ww)
            moved = F.conv2d(moved, layer.weight, None, layer.stride, layer.padding,
                             layer.dilation, layer.groups)
            jac = moved.reshape(b, k, *moved.shape[1:]).permute(0, 2, 3, 4, 1)
            const = layer(const)
            h = layer(h)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            if layer.training or layer.running_mean is None:
                raise UnsupportedLayer(f"layer {name!r}: batch norm must be in eval mode with "
                                       f"running statistics (call model.eval()); in training "
                                       f"mode it is not a fixed affine map of one input")
            scale = torch.rsqrt(layer.running_var + layer.eps)
            if layer.weight is not None:
                scale = scale * layer.weight
            shift = -layer.running_mean * scale
            if layer.bias is not None:
                shift = shift + layer.bias
            shape = (1, -1) + (1,) * (h.dim() - 2)
            jac = jac * scale.reshape(*shape, 1)
            const = const * scale.reshape(shape) + shift.reshape(shape)
            h = layer(h)
        elif isinstance(layer, nn.ReLU):
            on = (h > 0).to(h.dtype)
            jac = jac * on.unsqueeze(-1)
            const = const * on
            h = h * on
        elif isinstance(layer, nn.MaxPool2d):
            h, idx = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding,
                                  layer.dilation, layer.ceil_mode, return_indices=True)
            b, c, oh, ow = idx.shape
            flat_idx = idx.reshape(b, c, oh * ow)
            k = jac.shape[-1]
            jac = torch.gather(jac.reshape(b, c, -1, k), 2,
                               flat_idx.unsqueeze(-1).expand(-1, -1, -1, k)).reshape(
                b, c, oh, ow, k)
            const = torch.gather(const.reshape(b, c, -1), 2, flat_idx).reshape(b, c, oh, ow)
        elif isinstance(layer, nn.AvgPool2d):
            b, c, hh, ww, k = jac.shape
            moved = layer(jac.permute(0, 4, 1, 2, 3).reshape(b * k, c, hh, ww))
            jac = moved.reshape(b, k, *moved.shape[1:]).permute(0, 2, 3, 4, 1)
            const = layer(const)
            h = layer(h)
        elif isinstance(layer, nn.Flatten):
            if layer.start_dim != 1 or layer.end_dim != -1:
                raise UnsupportedLayer(f"layer {name!r}: only Flatten(start_dim=1) is supported")
            jac = jac.reshape(jac.shape[0], -1, jac.shape[-1])
            const = const.flatten(1)
            h = h.flatten(1)
        elif isinstance(layer, nn.Identity | nn.Dropout):
            if isinstance(layer, nn.Dropout) and layer.training:
                raise UnsupportedLayer(f"layer {name!r}: dropout in training mode is random; "
                                       f"call model.eval()")
        else:
            raise UnsupportedLayer(
                f"layer {name!r} ({type(layer).__name__}) is not piecewise affine in a form "
                f"effective_weights can fold (Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, "
                f"BatchNorm in eval mode, Flatten, Identity)")
    return jac, const


@torch.no_grad()
def effective_weights(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W_eff (batch, outputs, inputs) and b_eff (batch, outputs) with
    f(x) = W_eff(x) x.flatten() + b_eff(x) (Ye 2025, Eq. 2-3), for a batch ``x`` of shape
    (batch, *input_shape). Runs in the dtype of ``x``; use float64 (``model.double()``) for
    identity checks. ``inputs`` is the flattened input size.
    """
    layers, alpha, reference = _layers(model)
    x = x.to(dtype=next(model.parameters()).dtype)
    jac, const = _propagate(layers, x)
    if reference is not None:  # f = alpha (h(x; w) - h(x; w0)): both are affine at x
        ref_jac, ref_const = _propagate(list(reference.named_children()), x)
        jac, const = alpha * (jac - ref_jac), alpha * (const - ref_const)
    if jac.dim() != 3:
        raise UnsupportedLayer(f"the network's output must be (batch, outputs), got "
                               f"{tuple(jac.shape[:-1])}")
    return jac, const


def reconstruction_error(model: nn.Module, x: torch.Tensor) -> float:
    """max |W_eff(x) x + b_eff(x) - f(x)| over the batch: zero up to rounding."""
    w, b = effective_weights(model, x)
    x = x.to(w.dtype)
    with torch.no_grad():
        f = model(x)
    return float((torch.einsum("boi,bi->bo", w, x.flatten(1)) + b - f).abs().max())


__all__ = ["UnsupportedLayer", "effective_weights", "reconstruction_error"]
