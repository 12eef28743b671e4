"""The geometry chapter's pipeline (Brandon, Chadwick & Pellegrino 2025): tanh MLPs trained on
Boolean gates of thresholded continuous coordinates, in four conditions (untrained, lazy, rich,
rich with input noise), and the pullback geometry of their hidden layers on a grid of the input
manifold, as tidy tables built on :mod:`repsim_utils.geometry`.

Rich vs lazy: a small initial weight scale gives rich (feature-learning) training; the centred,
output-scaled model f = alpha (h(x; w) - h(x; w0)) trained with loss / alpha^2 and a large
alpha gives lazy training (Chizat, Oyallon & Bach 2019).
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import geometry
from .data import GATE_TASKS, GATE_THRESHOLDS, gate_labels
from .models import MLPSpec, Network
from .training import TrainSpec, progress_enabled
from .zoo import Recipe, trained, untrained

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
    lazy_alpha: float = 10.0
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

    def embedding(self) -> geometry.Map:
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


def near_thresholds(theta: np.ndarray | torch.Tensor, band: float,
                    thresholds: tuple[float, float] = GATE_THRESHOLDS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the points theta (points, 2) within ``band`` of the threshold line
    theta_1 = a, and of theta_2 = b."""
    t = np.asarray(theta)
    return np.abs(t[:, 0] - thresholds[0]) < band, np.abs(t[:, 1] - thresholds[1]) < band


def layer_metrics(net: Network, setup: Setup, theta: torch.Tensor, layers: Sequence[str]
                  ) -> dict[str, torch.Tensor]:
    """The pullback metric (points, 2, 2) of each layer at the points theta."""
    maps = geometry.layer_maps(net, setup.embedding(), tuple(layers))
    with torch.no_grad():
        return {name: geometry.pullback_metric(f, theta) for name, f in maps.items()}


def layer_geometry(net: Network, setup: Setup, theta: torch.Tensor,
                   metrics: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Per grid point and hidden layer of ``metrics`` (from :func:`layer_metrics`): volume
    element sqrt(det g), Gaussian curvature K, the top eigenvalue of g and its unit
    eigenvector (sign chosen with top_x >= 0), and the largest squared stretch the layer adds
    to the previous one (generalised eigenvalue of (g_l, g_{l-1}); the first layer relative to
    the input's own metric)."""
    maps = geometry.layer_maps(net, setup.embedding(), tuple(metrics))
    frames = []
    with torch.no_grad():  # the input's own metric: the layer before the first
        g_prev = geometry.pullback_metric(setup.embedding(), theta)
    for name, f in maps.items():
        g = metrics[name]
        with torch.no_grad():
            k = geometry.gaussian_curvature(f, theta)
        vals, vecs = geometry.metric_eigen(g)
        stretch = geometry.relative_stretch(g, g_prev)[:, -1]
        g_prev = g
        frames.append(pd.DataFrame({
            "relative_stretch": stretch.numpy(),
            "layer": name, "theta1": theta[:, 0].numpy(), "theta2": theta[:, 1].numpy(),
            "volume": geometry.volume_element(g).numpy(), "curvature": k.numpy(),
            "top_eigenvalue": vals[:, -1].numpy(), "top_x": vecs[:, 0, -1].abs().numpy(),
            # an eigenvector is defined up to sign: the one with a non-negative x component
            "top_y": (vecs[:, 1, -1] * torch.where(vecs[:, 0, -1] < 0, -1.0, 1.0)).numpy()}))
    return pd.concat(frames, ignore_index=True)


def summary_numbers(geom: pd.DataFrame, band: float) -> pd.DataFrame:
    """Per layer: mean volume element near / far from the thresholds, the same for the stretch
    the layer adds to the previous one, mean |K| near / far and
    overall, and the alignment of the top eigenvector with the relevant axis near each
    threshold (|v . e1| near theta_1 = a only, |v . e2| near theta_2 = b only; 1 = aligned)."""
    rows = []
    for layer, d in geom.groupby("layer", sort=False):
        near_a, near_b = near_thresholds(d[["theta1", "theta2"]].to_numpy(), band)
        near = near_a | near_b
        absk = d["curvature"].abs().to_numpy()
        vol = d["volume"].to_numpy()
        rows.append({
            "layer": layer,
            "volume_near_far": vol[near].mean() / vol[~near].mean(),
            "stretch_near_far": (d["relative_stretch"].to_numpy()[near].mean()
                                 / d["relative_stretch"].to_numpy()[~near].mean()),
            "abs_k_near_far": absk[near].mean() / absk[~near].mean(),
            "abs_k_mean": absk.mean(),
            "align_a": d["top_x"].to_numpy()[near_a & ~near_b].mean(),
            "align_b": np.abs(d["top_y"].to_numpy()[near_b & ~near_a]).mean()})
    return pd.DataFrame(rows)


def weight_change(net: Network, init: Network) -> float:
    """|w - w0| / |w0| over all trained parameters: small for lazy training."""
    w = torch.cat([p.detach().flatten() for p in net.layers.parameters()])
    w0 = torch.cat([p.detach().flatten() for p in init.layers.parameters()])
    return float((w - w0).norm() / w0.norm())


def metric_change(g: torch.Tensor, g0: torch.Tensor) -> float:
    """mean ||g - g0||_F / mean ||g0||_F over the points: how far a layer's metric moved from
    its initialisation ``g0``."""
    diff = torch.linalg.matrix_norm(g - g0).mean()
    return float(diff / torch.linalg.matrix_norm(g0).mean())


def accuracy_on(net: Network, setup: Setup, theta: torch.Tensor) -> float:
    """Accuracy of the sign of the output against the gate labels at coordinates theta."""
    gate = setup.task.split("_")[0]
    labels = torch.from_numpy(gate_labels(gate, theta.numpy()))
    with torch.no_grad():
        out = net(setup.embedding()(theta)).squeeze(-1)
    return float(((out > 0).long() == labels).double().mean())


def generalisation(net: Network, setup: Setup, n: int, band: float, seed: int = 0
                   ) -> dict[str, float]:
    """Accuracy on held-out inputs defined explicitly: ``n`` fresh uniform points of the
    training domain [-1, 1]^2 (``uniform``), ``n`` of them within ``band`` of a threshold (the
    hard part of interpolation), and, on the square only, ``n`` points of the extrapolation ring
    1 < max|theta_i| <= 1.5 (NaN on the torus, whose angles wrap)."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(20 * n, 2, generator=g, dtype=torch.float64) * 2 - 1
    near_a, near_b = near_thresholds(pts, band)
    near = pts[torch.from_numpy(near_a | near_b)][:n]
    out = {"uniform": accuracy_on(net, setup, pts[:n]),
           "near_threshold": accuracy_on(net, setup, near)}
    if setup.manifold == "square":
        ring = torch.rand(20 * n, 2, generator=g, dtype=torch.float64) * 3 - 1.5
        ring = ring[ring.abs().max(1).values > 1][:n]
        out["extrapolation"] = accuracy_on(net, setup, ring)
    else:
        out["extrapolation"] = float("nan")
    return out


def study(setup: Setup, seeds: Sequence[int], theta: torch.Tensor, band: float,
          n_heldout: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """For every condition and seed: (regime and accuracy table, geometry per grid point,
    summary numbers per layer)."""
    layers = tuple(f"act{i}" for i in range(1, setup.depth + 1))
    regime, geoms, sums = [], [], []
    jobs = [(c, s) for c in CONDITIONS for s in seeds]
    for condition, seed in tqdm(jobs, desc="conditions", file=sys.stderr,
                                disable=not progress_enabled()):
        net, init = setup.network(condition, seed)
        row = {"condition": condition, "seed": seed, "weight_change": weight_change(net, init)}
        metrics = layer_metrics(net, setup, theta, layers)
        init_metrics = metrics if init is net else layer_metrics(init, setup, theta, layers)
        row |= {f"metric_change_{la}": metric_change(metrics[la], init_metrics[la])
                for la in layers}
        row |= generalisation(net, setup, n_heldout, band, seed=seed)
        regime.append(row)
        geom = layer_geometry(net, setup, theta, metrics)
        sums.append(summary_numbers(geom, band).assign(condition=condition, seed=seed))
        geoms.append(geom.assign(condition=condition, seed=seed))
    return pd.DataFrame(regime), pd.concat(geoms, ignore_index=True), pd.concat(
        sums, ignore_index=True)
