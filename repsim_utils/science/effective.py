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

:func:`effective_weights` computes (W_eff, b_eff) for a batch in two batched passes, no loop
over samples: a forward pass records each sample's masks and pooling choices and carries the
constant term (b_eff); a backward pass multiplies the recorded linear pieces from the output to
the input, so the running product has only as many rows as outputs (the transposes of
convolution and pooling are their vector-Jacobian products).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from repsim_utils.nets.models import Network


class UnsupportedLayer(TypeError):
    """A layer that is not a piecewise-affine map effective_weights can express."""


Layers = list[tuple[str, nn.Module]]


def _layers(model: nn.Module) -> tuple[Layers, float, Layers | None]:
    """The flat list of (name, layer), the output scale alpha, and the layers of the reference
    stack of a :class:`Network` with alpha != 1 (f = alpha (h(x; w) - h(x; w0)))."""
    if isinstance(model, Network):
        reference = (None if model.reference is None
                     else list(model.reference.named_children()))
        return list(model.layers.named_children()), model.alpha, reference
    if isinstance(model, nn.Sequential):
        return list(model.named_children()), 1.0, None
    raise UnsupportedLayer(f"effective_weights needs a repsim Network or an nn.Sequential, got "
                           f"{type(model).__name__}")


def _forward(layers: list[tuple[str, nn.Module]], x: torch.Tensor
             ) -> tuple[torch.Tensor, list[tuple[str, nn.Module, object]]]:
    """One forward pass of the batch that records, per layer, what fixes its linear piece
    (ReLU masks, max-pool choices, input shapes) and carries the constant term c of
    h = J x + c. Returns (c at the output, the tape)."""
    tape = []
    # h (the activations) and c (the constant term) ride in one batch of 2B rows: every affine
    # layer applies to both alike, so each is one call
    n = len(x)
    hc = torch.cat([x, torch.zeros_like(x)])
    for name, layer in layers:
        if isinstance(layer, nn.Linear | nn.Conv2d):
            tape.append((name, layer, hc[:n].shape))
            hc = layer(hc)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            if layer.training or layer.running_mean is None:
                raise UnsupportedLayer(f"layer {name!r}: batch norm must be in eval mode with "
                                       f"running statistics (call model.eval()); in training "
                                       f"mode it is not a fixed affine map of one input")
            scale = torch.rsqrt(layer.running_var + layer.eps)
            if layer.weight is not None:
                scale = scale * layer.weight
            shape = (1, -1) + (1,) * (hc.dim() - 2)
            tape.append((name, layer, scale.reshape(shape)))
            hc = layer(hc)
        elif isinstance(layer, nn.ReLU):
            on = (hc[:n] > 0).to(hc.dtype)
            tape.append((name, layer, on))
            hc = (hc.unflatten(0, (2, n)) * on).flatten(0, 1)
        elif isinstance(layer, nn.MaxPool2d):
            shape = hc[:n].shape
            h, idx = F.max_pool2d(hc[:n], layer.kernel_size, layer.stride, layer.padding,
                                  layer.dilation, layer.ceil_mode, return_indices=True)
            tape.append((name, layer, (shape, idx)))
            const = torch.gather(hc[n:].flatten(2), 2, idx.flatten(2)).reshape(idx.shape)
            hc = torch.cat([h, const])
        elif isinstance(layer, nn.AvgPool2d):
            tape.append((name, layer, hc[:n].shape))
            hc = layer(hc)
        elif isinstance(layer, nn.Flatten):
            if layer.start_dim != 1 or layer.end_dim != -1:
                raise UnsupportedLayer(f"layer {name!r}: only Flatten(start_dim=1) is supported")
            tape.append((name, layer, hc[:n].shape))
            hc = hc.flatten(1)
        elif isinstance(layer, nn.Identity | nn.Dropout):
            if isinstance(layer, nn.Dropout) and layer.training:
                raise UnsupportedLayer(f"layer {name!r}: dropout in training mode is random; "
                                       f"call model.eval()")
        else:
            raise UnsupportedLayer(
                f"layer {name!r} ({type(layer).__name__}) is not piecewise affine in a form "
                f"effective_weights can fold (Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, "
                f"BatchNorm in eval mode, Flatten, Identity)")
    const = hc[n:]
    if const.dim() != 2:
        raise UnsupportedLayer(f"the network's output must be (batch, outputs), got "
                               f"{tuple(const.shape)}")
    return const, tape


#: A convolution whose dense matrix (outputs x inputs) has at most this many entries is applied
#: in the backward pass as one matrix product (BLAS, faster than a transposed convolution on
#: small feature maps); larger ones use the transposed convolution.
DENSE_CONV_LIMIT = 2**22


def _conv_matrix(layer: nn.Conv2d, weight: torch.Tensor, inp: tuple[int, ...]) -> torch.Tensor:
    """The convolution (without bias) on inputs of shape ``inp`` as a dense (inputs, outputs)
    matrix: its rows are the images of the standard basis."""
    n_in = math.prod(inp)
    basis = torch.eye(n_in, dtype=weight.dtype, device=weight.device).reshape(n_in, *inp)
    out = F.conv2d(basis, weight, None, layer.stride, layer.padding, layer.dilation,
                   layer.groups)
    return out.reshape(n_in, -1)


def _backward(tape: list[tuple[str, nn.Module, object]], n_out: int, batch: int,
              dtype: torch.dtype, device: torch.device,
              dense: dict[int, torch.Tensor]) -> torch.Tensor:
    """W_eff = the product of the recorded linear pieces, accumulated from the output back to
    the input (reverse order: the running product has only n_out rows). Returns
    (batch, n_out, *input_shape). ``dense`` caches small convolutions as matrices across
    chunks."""
    g = torch.eye(n_out, dtype=dtype, device=device).expand(batch, n_out, n_out)
    scale = None  # a batch norm's per-channel scale, folded into the weights before it
    for _, layer, rec in reversed(tape):
        b, o = g.shape[:2]
        if scale is not None and not isinstance(layer, nn.Linear | nn.Conv2d):
            g, scale = g * scale.unsqueeze(1), None
        if isinstance(layer, nn.Linear):
            weight = layer.weight if scale is None else layer.weight * scale.reshape(-1, 1)
            g, scale = g @ weight, None
        elif isinstance(layer, nn.Conv2d):
            weight = layer.weight
            if scale is not None:
                weight, scale = weight * scale.reshape(-1, 1, 1, 1), None
            inp = tuple(rec[1:])
            if math.prod(inp) * math.prod(g.shape[2:]) <= DENSE_CONV_LIMIT:
                if id(layer) not in dense:
                    dense[id(layer)] = _conv_matrix(layer, weight, inp)
                g = (g.reshape(b * o, -1) @ dense[id(layer)].T).reshape(b, o, *inp)
            else:
                g = torch.nn.grad.conv2d_input(
                    (b * o, *inp), weight, g.reshape(b * o, *g.shape[2:]), layer.stride,
                    layer.padding, layer.dilation, layer.groups).reshape(b, o, *inp)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            scale = rec
        elif isinstance(layer, nn.ReLU):
            g = g.mul_(rec.unsqueeze(1)) if g.is_contiguous() else g * rec.unsqueeze(1)
        elif isinstance(layer, nn.MaxPool2d):
            shape, idx = rec
            out = g.new_zeros(b, o, shape[1], shape[2] * shape[3])
            sel = idx.flatten(2).unsqueeze(1).expand(b, o, -1, -1)
            g = out.scatter_add_(3, sel, g.flatten(3)).reshape(b, o, *shape[1:])
        elif isinstance(layer, nn.AvgPool2d):  # linear: its transpose is its own vjp
            _, pull = torch.func.vjp(layer, g.new_zeros(b * o, *rec[1:]))
            g = pull(g.reshape(b * o, *g.shape[2:]))[0].reshape(b, o, *rec[1:])
        elif isinstance(layer, nn.Flatten):
            g = g.reshape(b, o, *rec[1:])
    if scale is not None:  # a batch norm on the input itself
        g = g * scale.unsqueeze(1)
    return g


@torch.no_grad()
def effective_weights(model: nn.Module, x: torch.Tensor, batch_size: int = 64
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """W_eff (batch, outputs, inputs) and b_eff (batch, outputs) with
    f(x) = W_eff(x) x.flatten() + b_eff(x) (Ye 2025, Eq. 2-3), for a batch ``x`` of shape
    (batch, *input_shape). Runs on the model's device, in its dtype; use float64
    (``model.double()``) for identity checks. ``inputs`` is the flattened input size. Works
    through the batch in chunks of ``batch_size`` inputs.
    """
    layers, alpha, reference = _layers(model)
    param = next(model.parameters(), None)
    if param is not None:  # compute in the model's dtype (float64 models for exact checks)
        x = x.to(device=param.device, dtype=param.dtype)  # and on its device
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ws, bs = [], []
    dense: dict[int, torch.Tensor] = {}
    for chunk in x.split(batch_size):  # bounded memory: (chunk, outputs, inputs) at a time
        w, b = _affine(layers, chunk, dense)
        if reference is not None:  # f = alpha (h(x; w) - h(x; w0)): both are affine at x
            w_ref, b_ref = _affine(reference, chunk, dense)
            w, b = alpha * (w - w_ref), alpha * (b - b_ref)
        ws.append(w)
        bs.append(b)
    return torch.cat(ws), torch.cat(bs)


def _affine(layers: list[tuple[str, nn.Module]], x: torch.Tensor,
            dense: dict[int, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    const, tape = _forward(layers, x)
    g = _backward(tape, const.shape[1], len(x), x.dtype, x.device, dense)
    return g.reshape(len(x), const.shape[1], -1), const


def identity_error(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, f: torch.Tensor
                   ) -> float:
    """max |W_eff(x) x + b_eff(x) - f(x)| over the batch, for W_eff (batch, outputs, inputs),
    b_eff and f (batch, outputs): zero up to rounding."""
    return float((torch.einsum("boi,bi->bo", w, x.flatten(1)) + b - f).abs().max())


def reconstruction_error(model: nn.Module, x: torch.Tensor) -> float:
    """:func:`identity_error` of ``model`` on the batch ``x``."""
    w, b = effective_weights(model, x)
    x = x.to(w.dtype)
    with torch.no_grad():
        f = model(x)
    return identity_error(w, b, x, f)


__all__ = ["UnsupportedLayer", "effective_weights", "identity_error", "reconstruction_error"]
