"""The study's standard classifiers, so that chapters asking for the same parameters share the
very same cached networks (convergent learning and subspace match analyse one set of nets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from repsim_utils.nets.activations import activations
from repsim_utils.nets.data import Dataset, load
from repsim_utils.nets.models import ConvSpec, MLPSpec, Network
from repsim_utils.nets.shapes import UNTRAINED_OFFSET
from repsim_utils.nets.training import TrainSpec
from repsim_utils.nets.zoo import Recipe, Trained, trained, untrained

ARCHS = ("mlp", "conv")


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


class AccuracyFloorError(RuntimeError):
    """A trained network too poor to say anything about learnt representations."""


#: The default floor on a trained network's test accuracy: twice chance for 10 classes. A
#: network at chance has learnt nothing, and verdicts about "trained" networks would be about
#: initialisations; the chapters stop before computing any.
MIN_ACCURACY = 0.2


def check_accuracy(nets: Sequence[Trained], floor: float) -> None:
    """Raise :class:`AccuracyFloorError` (one line) if any network's test accuracy is below
    ``floor`` (0: no floor)."""
    poor = [(n.seed, n.test_accuracy) for n in nets if n.test_accuracy < floor]
    if poor:
        listed = ", ".join(f"seed {s} {a:.3f}" for s, a in poor)
        raise AccuracyFloorError(
            f"trained networks below the accuracy floor {floor:g} (min_accuracy) on "
            f"{nets[0].recipe.dataset}: {listed}; train longer or wider (no verdict is computed "
            f"about networks that learnt nothing)")


def networks(recipe: Recipe, seeds: Sequence[int], progress: bool | None = None,
             min_accuracy: float = 0.0) -> tuple[list[Trained], list[Network]]:
    """Trained networks for ``seeds`` (cached) and their untrained baselines
    (seeds + :data:`UNTRAINED_OFFSET`); every trained one must reach ``min_accuracy`` on the
    test split (:func:`check_accuracy`)."""
    nets = [trained(recipe, s, progress=progress) for s in seeds]
    check_accuracy(nets, min_accuracy)
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
    :func:`repsim_utils.nets.activations.activations`)."""
    return {name: activations(net, x, layers, positions=positions, seed=seed, max_rows=max_rows)
            for name, net in nets.items()}


@dataclass(frozen=True)
class Networks:
    """A chapter's networks and what it compares: trained networks ``t{i}`` (one per seed),
    their untrained baselines ``u{i}``, the probe inputs and every hidden layer's activations
    {net name: {layer: (samples, units)}}."""

    trained: list[Trained]
    untrained: list[Network]
    x: torch.Tensor
    y: torch.Tensor
    layers: list[str]
    acts: dict[str, dict[str, np.ndarray]]
    #: the dataset the networks were trained on (its splits: stitches are fitted on training
    #: inputs)
    data: Dataset | None = None

    @property
    def n(self) -> int:
        """Number of trained networks (seeds)."""
        return len(self.trained)

    def mean_accuracy(self) -> float:
        """Mean test accuracy of the trained networks."""
        return float(np.mean([t.test_accuracy for t in self.trained]))

    def shapes(self) -> str:
        """'layer rows x units' of every layer of the first trained network, as text."""
        return ", ".join(f"{layer} {a} x {b}" for layer, (a, b) in
                         ((k, self.acts["t0"][k].shape) for k in self.layers))


def classifier_models(params: Mapping[str, Any]) -> tuple[list[Trained], list[Network], Dataset]:
    """The classifier chapters' networks from their parameters (``dataset``, ``arch``,
    ``width``, ``depth``, ``epochs``, ``lr``, ``batch_size``, ``n_train``, ``device``,
    ``download``, ``seeds``, ``min_accuracy``): the trained networks (cached, each above the
    accuracy floor), their untrained baselines and the dataset."""
    p = params
    recipe = classifier(p["dataset"], p["arch"], p["width"], p["depth"], p["epochs"], p["lr"],
                        p["batch_size"], p["n_train"], device=p["device"])
    data = load(p["dataset"], download=p["download"])
    trained_nets, untrained_nets = networks(recipe, p["seeds"], min_accuracy=p["min_accuracy"])
    return trained_nets, untrained_nets, data


def classifier_networks(params: Mapping[str, Any], max_rows: int | None = None) -> Networks:
    """The classifier chapters' setup from their parameters (``dataset``, ``arch``, ``width``,
    ``depth``, ``epochs``, ``lr``, ``batch_size``, ``n_train``, ``device``, ``download``,
    ``seeds``, ``min_accuracy``, ``split``, ``n_samples``, ``positions``): the trained networks
    (cached) and their untrained baselines, the probe inputs of ``split`` (the first
    ``n_samples``; 0: all) and the activations of every hidden layer on them (conv layers:
    ``positions`` random positions per input, 0: all; at most ``max_rows`` rows)."""
    p = params
    trained_nets, untrained_nets, data = classifier_models(p)
    x, y = probe_inputs(data, p["split"])
    if p["n_samples"]:
        x, y = x[:p["n_samples"]], y[:p["n_samples"]]
    nets = {f"t{i}": t.model for i, t in enumerate(trained_nets)}
    nets |= {f"u{i}": u for i, u in enumerate(untrained_nets)}
    layers = list(trained_nets[0].model.hidden)
    acts = layer_activations(nets, x, layers, positions=p["positions"] or None, seed=0,
                             max_rows=max_rows)
    return Networks(trained_nets, untrained_nets, x, y, layers, acts, data)


__all__ = ["MIN_ACCURACY", "UNTRAINED_OFFSET", "AccuracyFloorError", "Networks", "check_accuracy",
           "classifier", "classifier_models",
           "classifier_networks", "layer_activations", "load", "networks", "probe_inputs"]
