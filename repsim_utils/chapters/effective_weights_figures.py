"""The effective-weights chapter's figures (the tables and verdicts they show are computed in
:mod:`repsim_utils.chapters.effective_weights`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from repsim_utils.chapters.effective_weights import METRIC_NAMES, class_templates, joint_embedding


def metrics(weff: pd.DataFrame, raw: Mapping[str, float]) -> Figure:
    """Class structure of W_eff(x) over training, one panel per measure, per bias; dashed: the
    same measure on the raw inputs."""
    long = weff.melt(id_vars=["bias", "epoch", "seed"], value_vars=list(METRIC_NAMES),
                     var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(METRIC_NAMES)
    # seaborn's bands are bootstrap intervals: seeded, so a rerun draws the same figure
    g = sns.relplot(long, x="epoch", y="value", hue="bias", col="metric", col_wrap=3,
                    kind="line", marker="o", errorbar=("ci", 95), seed=0, height=2.5,
                    aspect=1.2,
                    facet_kws={"sharey": False})
    g.set_titles("{col_name}")
    for key, name in METRIC_NAMES.items():
        if key in raw:
            g.axes_dict[name].axhline(raw[key], ls="--", color="0.4")
    return g.figure


def cross_seed(cross: pd.DataFrame, trend: pd.DataFrame) -> Figure:
    """Similarity of W_eff(x) between networks for the same input: every pair at the end of
    training with the shuffled-input nulls (left); pairs of trained networks across training
    (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    columns = [c for c in ("similarity", "similarity_null_class", "similarity_null")
               if c in cross]
    sns.stripplot(cross.melt(id_vars=["kind"], value_vars=columns), x="variable", y="value",
                  hue="kind", dodge=True, ax=axes[0])
    axes[0].legend(fontsize=7)
    axes[0].set(xlabel="", ylabel="mean cos(W_a(x), W_b(x))")
    sns.lineplot(trend, x="epoch", y="similarity", marker="o", errorbar=("ci", 95), seed=0,
                 ax=axes[1])
    axes[1].set(ylabel="trained vs trained, same epoch")
    return fig


def embedding(flat: Mapping[tuple[str, int], np.ndarray], network: str, epochs: Sequence[int],
              labels: np.ndarray, n_trajectories: int) -> Figure:
    """PCA of the flattened W_eff(x) of ``network`` at each checkpoint on shared axes (colour:
    class), and the paths of ``n_trajectories`` inputs across checkpoints."""
    coords = joint_embedding([flat[network, e] for e in epochs])
    ncols = len(epochs) + 1
    fig, axes = plt.subplots(1, ncols, figsize=(2.6 * ncols, 2.8), sharex=True, sharey=True)
    palette = sns.color_palette("tab10", len(np.unique(labels)))
    for ax, e, c in zip(axes, epochs, coords, strict=False):
        ax.scatter(c[:, 0], c[:, 1], c=[palette[i] for i in labels], s=6)
        ax.set_title(f"epoch {e}")
    rng = np.random.default_rng(0)
    picked = rng.choice(len(labels), size=min(n_trajectories, len(labels)), replace=False)
    path = np.stack(coords)  # (checkpoints, samples, 2)
    for i in picked:
        axes[-1].plot(path[:, i, 0], path[:, i, 1], "-", color=palette[labels[i]], lw=1)
        axes[-1].plot(*path[0, i], "o", mfc="none", color=palette[labels[i]])
        axes[-1].plot(*path[-1, i], "o", color=palette[labels[i]])
    axes[-1].set_title("paths of a few inputs")
    axes[0].set(xlabel="PC 1", ylabel="PC 2")
    classes = np.unique(labels)
    fig.legend(handles=[plt.Line2D([], [], ls="", marker="o", color=palette[k]) for k in classes],
               labels=[str(k) for k in classes], title="class", loc="center left",
               bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def templates(flat: Mapping[tuple[str, int], np.ndarray], network: str, epochs: Sequence[int],
              labels: np.ndarray, input_shape: Sequence[int]) -> Figure:
    """Class-mean effective weights of the own-class logit at the first and the last
    checkpoint, as images (image inputs only)."""
    n_out = int(labels.max()) + 1
    tmpl = {e: class_templates(flat[network, e], labels, n_out) for e in (epochs[0], epochs[-1])}
    fig, axes = plt.subplots(2, n_out, figsize=(1.1 * n_out, 2.6))
    for row, (e, t) in enumerate(tmpl.items()):
        for c in range(n_out):
            img = t[c].reshape(tuple(input_shape)).transpose(1, 2, 0).mean(-1)
            lim = np.abs(img).max()
            axes[row, c].imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[row, c].set_xticks([])
            axes[row, c].set_yticks([])
            axes[row, 0].set_ylabel(f"epoch {e}")
            axes[0, c].set_title(str(c))
    return fig


__all__ = ["cross_seed", "embedding", "metrics", "templates"]
