"""Activations of named layers as (samples, units) arrays.

For a dense layer a unit is a neuron and a sample an input. For a conv layer a unit is a channel
and a sample an (input, position) pair (Li et al. 2016; Wang et al. 2018); ``positions`` keeps a
random subset of positions per input. The subset depends only on ``seed`` and the layer's shape,
so two networks of one architecture are read at the very same (input, position) samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from repsim_utils.nets.models import Network


@torch.no_grad()
def activations(
    model: Network,
    x: torch.Tensor,
    layers: Sequence[str],
    batch_size: int = 1024,
    positions: int | None = None,
    seed: int = 0,
    dtype: type = np.float32,
    per_input: bool = False,
    max_rows: int | None = None,
) -> dict[str, np.ndarray]:
    """Activations of ``layers`` for inputs ``x``, each of shape (samples, units).

    ``per_input=True`` keeps one sample per input for conv layers too: the whole feature map
    flattened to (inputs, channels * height * width), e.g. to ask how a layer groups inputs.

    ``max_rows``: a conv layer with more (input, position) rows than this keeps a uniform random
    subset of that many rows (sorted; the same rows for every network of one architecture, from
    ``seed`` and the layer's shape), selected batch by batch: memory is then bounded by
    ``max_rows`` x channels, however many inputs there are (2,000 CIFAR-10 images x all 1,024
    positions are 2 million rows per layer).

    Batched: at most ``batch_size`` inputs are on the device at once. Forward hooks are
    removed afterwards, even on error.
    """
    if isinstance(layers, str):
        layers = [layers]
    modules = {name: model.layer(name) for name in layers}
    device = next(model.parameters()).device
    # one array per layer, allocated at the first batch and filled in place: no list of chunks
    # to concatenate (twice the memory) and no heap fragmented by them
    out: dict[str, np.ndarray] = {}
    filled = dict.fromkeys(layers, 0)
    current: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(_keep(current, name)) for name, m in modules.items()]
    pos_index: dict[str, torch.Tensor] = {}
    row_index: dict[str, np.ndarray] = {}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size].to(device))
            for name in layers:
                a = current[name]
                total = len(x)  # rows of the whole layer
                if a.ndim == 4 and per_input:
                    a = a.reshape(a.shape[0], -1)
                elif a.ndim == 4:  # (B, C, H, W) -> (B * kept positions, C)
                    b, c, h, w = a.shape
                    a = a.reshape(b, c, h * w).transpose(1, 2)  # (B, HW, C), a view
                    if positions is not None and positions < h * w:
                        if name not in pos_index:
                            pos_index[name] = _position_index(len(x), h * w, positions, seed)
                        idx = pos_index[name][start:start + b].to(a.device)
                        a = torch.gather(a, 1, idx[:, :, None].expand(-1, -1, c))
                    per = a.shape[1]  # rows per input
                    total = len(x) * per
                    if max_rows is not None and total > max_rows:
                        if name not in row_index:
                            row_index[name] = _row_index(total, max_rows, seed)
                        rows = row_index[name]
                        total = len(rows)
                        lo, hi = np.searchsorted(rows, [start * per, (start + b) * per])
                        local = torch.as_tensor(rows[lo:hi] - start * per, device=a.device)
                        a = a[local // per, local % per]  # only the kept rows are copied
                    else:
                        a = a.reshape(-1, c)
                elif a.ndim != 2:
                    a = a.reshape(a.shape[0], -1)
                if name not in out:
                    out[name] = np.empty((total, a.shape[1]), dtype=dtype)
                k = filled[name]
                out[name][k:k + len(a)] = a.cpu().numpy()
                filled[name] = k + len(a)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out


def _keep(store: dict[str, torch.Tensor], name: str):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        store[name] = output.detach()
    return hook


def _row_index(n_rows: int, k: int, seed: int) -> np.ndarray:
    """``k`` sorted distinct rows of ``n_rows``, uniformly at random from ``seed``."""
    return np.sort(np.random.default_rng([seed, n_rows]).choice(n_rows, size=k, replace=False))


def _position_index(n_inputs: int, n_positions: int, k: int, seed: int) -> torch.Tensor:
    """(n_inputs, k) random positions per input, sorted, from a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n_inputs, n_positions, generator=g).argsort(1)[:, :k].sort(1).values
