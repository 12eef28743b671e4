"""The geometry chapter's networks: small tanh MLPs on a gate task (XOR, AND, OR of two
thresholds) over a square or a torus, under four conditions of training (Brandon, Chadwick &
Pellegrino 2025): untrained, lazy (output scale alpha, Chizat et al. 2019), rich (small
initialisation) and rich with input noise.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from repsim_utils.nets.data import GATE_TASKS
from repsim_utils.nets.models import MLPSpec, Network
from repsim_utils.nets.training import TrainSpec
from repsim_utils.nets.zoo import Recipe, trained, untrained

#: coordinates theta (points, 2) -> network inputs, differentiable
Map = Callable[[torch.Tensor], torch.Tensor]

CONDITIONS = ("untrained", "lazy", "rich", "rich + noise")


@dataclass(frozen=True)
class Setup:
    """Everything that defines the four conditions of one task."""

    task: str = "xor_square"
    width: int = 64
    depth: int = 2
    epochs: int = 1000  # full-batch gradient-descent steps
    lr: float = 0.5
    momentum: float = 0.9
    rich_init_scale: float = 0.3
    lazy_alpha: float = 100.0
    noise: float = 0.2

    def __post_init__(self) -> None:
        if self.task not in GATE_TASKS:
            raise ValueError(f"task must be one of {GATE_TASKS}, got {self.task!r}")
        if self.width < 1 or self.depth < 1 or self.epochs < 1:
            raise ValueError("width, depth and epochs must be >= 1")
        if not (self.lr > 0 and self.rich_init_scale > 0 and self.lazy_alpha > 0
                and self.noise >= 0):
            raise ValueError("lr, rich_init_scale and lazy_alpha must be > 0, noise >= 0")

    @property
    def manifold(self) -> str:
        return self.task.split("_")[1]

    def recipe(self, condition: str) -> Recipe:
        """The recipe of ``condition`` (untrained: the lazy/standard initialisation)."""
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        scale = self.rich_init_scale if condition.startswith("rich") else 1.0
        alpha = self.lazy_alpha if condition == "lazy" else 1.0
        model = MLPSpec(widths=(self.width,) * self.depth, activation="tanh",
                        init_scale=scale, alpha=alpha)
        train = TrainSpec(epochs=self.epochs, batch_size=1_000_000, lr=self.lr,
                          momentum=self.momentum, loss="bce", schedule="constant",
                          input_noise=self.noise if condition == "rich + noise" else 0.0)
        return Recipe(self.task, model, train)

    def network(self, condition: str, seed: int) -> tuple[Network, Network]:
        """(network, its initialisation) for one condition and seed, float64 copies in eval
        mode (exact derivatives; the cached models are left untouched)."""
        recipe = self.recipe(condition)
        if condition == "untrained":
            net = copy.deepcopy(untrained(recipe, seed)).double().eval()
            return net, net
        run = trained(recipe, seed)
        return copy.deepcopy(run.model).double().eval(), run.at(0).double()

    def embedding(self) -> Map:
        """iota: coordinates theta in [-1, 1]^2 -> network inputs (torch, differentiable)."""
        if self.manifold == "square":
            return lambda t: t
        return lambda t: torch.cat([torch.stack([torch.cos(math.pi * t[:, i]),
                                                 torch.sin(math.pi * t[:, i])], -1)
                                    for i in range(2)], -1)


def grid(n: int, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """(n * n, 2) float64 coordinates of an n x n grid of [lo, hi]^2, theta_1 varying slowest."""
    axis = torch.linspace(lo, hi, n, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)


__all__ = ["CONDITIONS", "Map", "Setup", "grid"]
