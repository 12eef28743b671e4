"""MLPs and small VGG-style conv nets, built from a small frozen spec, with named layers.

Layer names (``Network.hidden`` lists the hidden post-activations, the layers the chapters read):

- MLP: ``flatten, fc1, act1, fc2, act2, ..., out``.
- Conv net, per block b: ``conv{b}, [bn{b}], act{b}, [pool{b}]``; then ``flatten, out``.

``act2`` is therefore "the post-activation of hidden layer 2".

Initialisation: weights ~ N(0, (init_scale * gain)^2 / fan_in) with gain sqrt(2) for ReLU-like
activations and 1 for tanh (He / LeCun), biases 0. ``init_scale`` is the rich/lazy knob of the
geometry chapter (small = rich, large = lazy). ``alpha != 1`` gives the centred, output-scaled
model f(x) = alpha (h(x; w) - h(x; w0)) of Chizat, Oyallon & Bach (2019): train it with the loss
divided by alpha^2; large alpha is lazy.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "gelu": nn.GELU}
_GAIN = {"relu": math.sqrt(2.0), "tanh": 1.0, "softplus": math.sqrt(2.0), "gelu": math.sqrt(2.0)}
POOLS = ("max", "avg", "none")


@dataclass(frozen=True)
class MLPSpec:
    """Fully connected net: ``widths`` hidden layers, then a linear read-out."""

    widths: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    bias: bool = True
    init_scale: float = 1.0
    alpha: float = 1.0

    def __post_init__(self) -> None:
        _check_common(self.activation, self.init_scale, self.alpha)
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"MLP widths must be positive integers, got {self.widths}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))


@dataclass(frozen=True)
class ConvSpec:
    """VGG-style conv net: one 3x3 conv (padding 1) per block, optional batch norm and 2x2 pooling
    after the activation, then a linear read-out of the flattened feature map."""

    channels: tuple[int, ...] = (16, 32)
    batch_norm: bool = False
    pool: str = "max"
    activation: str = "relu"
    bias: bool = True
    init_scale: float = 1.0
    alpha: float = 1.0

    def __post_init__(self) -> None:
        _check_common(self.activation, self.init_scale, self.alpha)
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"conv channels must be positive integers, got {self.channels}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))


ModelSpec = MLPSpec | ConvSpec


def _check_common(activation: str, init_scale: float, alpha: float) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    if not init_scale > 0 or not alpha > 0:
        raise ValueError(f"init_scale and alpha must be > 0, got {init_scale}, {alpha}")


class Network(nn.Module):
    """A sequential stack of named layers, with the centred output scaling of ``alpha``."""

    def __init__(self, layers: OrderedDict[str, nn.Module], hidden: tuple[str, ...],
                 alpha: float = 1.0):
        super().__init__()
        self.layers = nn.Sequential(layers)
        self.hidden = hidden
        self.alpha = alpha
        self.reference: nn.Module | None = None
        if alpha != 1.0:
            self.reference = copy.deepcopy(self.layers).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        if self.reference is not None:
            y = self.alpha * (y - self.reference(x))
        return y

    def layer(self, name: str) -> nn.Module:
        """The module named ``name`` (``act1``, ``conv2``...); a clear error lists the names."""
        names = dict(self.layers.named_children())
        if name not in names:
            raise KeyError(f"no layer {name!r}; layers: {', '.join(names)}")
        return names[name]


def build(spec: ModelSpec, input_shape: tuple[int, ...], n_out: int, seed: int) -> Network:
    """Build and initialise a network; the same (spec, shape, seed) give identical weights.

    The global torch RNG is left untouched (a private fork is seeded).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(spec, MLPSpec):
            net = _mlp(spec, input_shape, n_out)
        elif isinstance(spec, ConvSpec):
            net = _conv(spec, input_shape, n_out)
        else:
            raise TypeError(f"unknown model spec {type(spec).__name__}")
        _init(net, spec)
        if net.reference is not None:  # the reference is the initial network itself
            net.reference.load_state_dict(net.layers.state_dict())
    return net


def _mlp(spec: MLPSpec, input_shape: tuple[int, ...], n_out: int) -> Network:
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    width = math.prod(input_shape)
    for i, w in enumerate(spec.widths, 1):
        layers[f"fc{i}"] = nn.Linear(width, w, bias=spec.bias)
        layers[f"act{i}"] = ACTIVATIONS[spec.activation]()
        width = w
    layers["out"] = nn.Linear(width, n_out, bias=spec.bias)
    hidden = tuple(f"act{i}" for i in range(1, len(spec.widths) + 1))
    return Network(layers, hidden, spec.alpha)


def _conv(spec: ConvSpec, input_shape: tuple[int, ...], n_out: int) -> Network:
    if len(input_shape) != 3:
        raise ValueError(f"a conv net needs (channels, height, width) inputs, got {input_shape}")
    c, h, w = input_shape
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for b, ch in enumerate(spec.channels, 1):
        layers[f"conv{b}"] = nn.Conv2d(c, ch, 3, padding=1, bias=spec.bias)
        if spec.batch_norm:
            layers[f"bn{b}"] = nn.BatchNorm2d(ch)
        layers[f"act{b}"] = ACTIVATIONS[spec.activation]()
        if spec.pool != "none":
            if min(h, w) < 2:
                raise ValueError(f"input {input_shape} too small for {len(spec.channels)} pools")
            layers[f"pool{b}"] = nn.MaxPool2d(2) if spec.pool == "max" else nn.AvgPool2d(2)
            h, w = h // 2, w // 2
        c = ch
    layers["flatten"] = nn.Flatten()
    layers["out"] = nn.Linear(c * h * w, n_out, bias=spec.bias)
    hidden = tuple(f"act{b}" for b in range(1, len(spec.channels) + 1))
    return Network(layers, hidden, spec.alpha)


@torch.no_grad()
def _init(net: Network, spec: ModelSpec) -> None:
    gain = _GAIN[spec.activation]
    for name, m in net.layers.named_children():
        if isinstance(m, nn.Linear | nn.Conv2d):
            fan_in = m.weight[0].numel()
            g = 1.0 if name == "out" else gain
            m.weight.normal_(0.0, spec.init_scale * g / math.sqrt(fan_in))
            if m.bias is not None:
                m.bias.zero_()
