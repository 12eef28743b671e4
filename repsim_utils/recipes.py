"""The study's standard classifiers, so that chapters asking for the same parameters share the
very same cached networks (convergent learning and subspace match analyse one set of nets)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .activations import activations
from .data import Dataset, load
from .models import ConvSpec, MLPSpec, Network
from .training import TrainSpec
from .zoo import Recipe, Trained, trained, untrained

ARCHS = ("mlp", "conv")

#: Untrained baselines use seed + UNTRAINED_OFFSET, so they never coincide with a trained seed.
UNTRAINED_OFFSET = 1000


def classifier(dataset: str, arch: str = "mlp", width: int = 64, depth: int = 3,
               epochs: int = 30, lr: float = 0.05, batch_size: int = 64, n_train: int = 0,
               batch_norm: bool = False, device: str = "cpu", bias: bool = True,
               checkpoints: Sequence[int] = ()) -> Recipe:
    """ReLU classifier: an MLP of ``depth`` layers of ``width`` units, or a conv net of ``depth``
    blocks of ``width * 2**b`` channels with 2x2 max pooling (VGG-style). SGD with momentum 0.9
    and a cosine schedule."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if arch == "mlp":
        model = MLPSpec(widths=(width,) * depth, bias=bias)
    else:
        model = ConvSpec(channels=tuple(width * 2**b for b in range(depth)),
                         batch_norm=batch_norm, bias=bias)
    return Recipe(dataset, model, TrainSpec(epochs=epochs, lr=lr, batch_size=batch_size,
                                            schedule="cosine", n_train=n_train, device=device,
                                            checkpoints=tuple(checkpoints)))


def networks(recipe: Recipe, seeds: Sequence[int], progress: bool | None = None
             ) -> tuple[list[Trained], list[Network]]:
    """Trained networks for ``seeds`` (cached) and their untrained baselines
    (seeds + :data:`UNTRAINED_OFFSET`)."""
    nets = [trained(recipe, s, progress=progress) for s in seeds]
    base = [untrained(recipe, s + UNTRAINED_OFFSET) for s in seeds]
    return nets, base


def probe_inputs(data: Dataset, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels on which activations are read: 'train', 'test' or 'all'."""
    if split == "all":
        return (torch.cat([data.x_train, data.x_test]), torch.cat([data.y_train, data.y_test]))
    return data.split(split)


def layer_activations(nets: dict[str, Network], x: torch.Tensor, layers: Sequence[str],
                      positions: int | None = None, seed: int = 0, max_rows: int | None = None
                      ) -> dict[str, dict[str, np.ndarray]]:
    """{net name: {layer: (samples, units)}} for every network, on the same samples (conv
    layers: at most ``max_rows`` (input, position) rows, see
    :func:`repsim_utils.activations.activations`)."""
    return {name: activations(net, x, layers, positions=positions, seed=seed, max_rows=max_rows)
            for name, net in nets.items()}


__all__ = ["classifier", "layer_activations", "load", "networks", "probe_inputs"]
