"""The geometry chapter's figures and the numbers its page records (the tables and verdicts are
computed in :mod:`repsim_utils.chapters.geometry`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm, Normalize, SymLogNorm
from matplotlib.figure import Figure

from repsim_utils.chapters.geometry import CONDITIONS
from repsim_utils.nets.data import GATE_THRESHOLDS

#: condition -> the slug of its recorded numbers
SLUG = {"untrained": "untrained", "lazy": "lazy", "rich": "rich", "rich + noise": "rich_noise"}
#: the summary numbers per condition and layer, as the page names them
SUMMARY_NAMES = {"volume_near_far": "volume near / far",
                 "stretch_near_far": "stretch added near / far",
                 "total_abs_k": "total |K| dA", "top1_share": "share of |K| dA in top 1%",
                 "median_abs_k_near_far": "median |K| near / far",
                 "align_a": "alignment near theta1 = a", "align_b": "alignment near theta2 = b"}
#: the maps of the page: column -> (normalisation from the layer's values, colour map, label)
MAPS: dict[str, tuple[Callable[[np.ndarray], Normalize], str, str]] = {
    "volume": (lambda v: LogNorm(v.min(), v.max()), "magma", "sqrt(det g)"),
    "curvature": (lambda v: SymLogNorm(1e-2, vmin=-np.abs(v).max(), vmax=np.abs(v).max()),
                  "RdBu_r", "Gaussian curvature K"),
    "relative_stretch": (lambda v: LogNorm(v.min(), v.max()), "cividis", "stretch added"),
}


def regime_columns(layers: Sequence[str]) -> list[str]:
    return (["weight_change", "kernel_alignment"] + [f"metric_change_{la}" for la in layers]
            + ["uniform", "near_threshold", "extrapolation"])


def record_regime(report: Any, regime: pd.DataFrame, layers: Sequence[str]) -> None:
    """Per condition, the mean of every regime column that is defined for all seeds."""
    for condition, d in regime.groupby("condition", sort=False):
        for col in regime_columns(layers):
            if d[col].notna().all():
                report.number(f"geo_{SLUG[condition]}_{col}", float(d[col].mean()))


def _field(d: pd.DataFrame, col: str, grid_points: int) -> np.ndarray:
    return d[col].to_numpy().reshape(grid_points, grid_points).T  # rows: theta2


def _thresholds(ax: plt.Axes) -> None:
    ax.axvline(GATE_THRESHOLDS[0], ls="--", color="k", lw=0.8)
    ax.axhline(GATE_THRESHOLDS[1], ls="--", color="k", lw=0.8)


def maps(geom: pd.DataFrame, seed: int, col: str, grid_points: int) -> Figure:
    """Map of ``col`` (:data:`MAPS`) over the input coordinates for network ``seed``: rows
    layers, columns conditions, one colour scale per layer."""
    norm_for, cmap, label = MAPS[col]
    one = geom[geom.seed == seed]
    layers = list(geom["layer"].unique())
    fig, axes = plt.subplots(len(layers), len(CONDITIONS), figsize=(
        3 * len(CONDITIONS), 2.8 * len(layers)), squeeze=False, constrained_layout=True)
    for i, layer in enumerate(layers):
        norm = norm_for(one[one.layer == layer][col].to_numpy())
        for j, condition in enumerate(CONDITIONS):
            d = one[(one.layer == layer) & (one.condition == condition)]
            im = axes[i, j].imshow(_field(d, col, grid_points), origin="lower",
                                   extent=(-1, 1, -1, 1), cmap=cmap, norm=norm)
            _thresholds(axes[i, j])
            axes[i, j].set_title(f"{condition}, {layer}", fontsize=9)
            axes[i, j].set(xlabel="theta1", ylabel="theta2")
        fig.colorbar(im, ax=axes[i, :], label=label, shrink=0.9)
    return fig


def eigenvectors(geom: pd.DataFrame, seed: int, grid_points: int) -> Figure:
    """The top eigenvector of the pullback metric on a coarse grid, as headless segments
    (colour: log10 of its eigenvalue); rows layers, columns conditions."""
    one = geom[geom.seed == seed]
    layers = list(geom["layer"].unique())
    step = max(1, grid_points // 15)
    fig, axes = plt.subplots(len(layers), len(CONDITIONS), figsize=(
        3 * len(CONDITIONS), 2.9 * len(layers)), squeeze=False, constrained_layout=True)
    for i, layer in enumerate(layers):
        for j, condition in enumerate(CONDITIONS):
            d = one[(one.layer == layer) & (one.condition == condition)]
            sel = [_field(d, c, grid_points)[::step, ::step]
                   for c in ("theta1", "theta2", "top_x", "top_y", "top_eigenvalue")]
            ax = axes[i, j]
            # headless segments of fixed length (a direction has no sign), thick enough to read
            ax.quiver(sel[0], sel[1], sel[2], sel[3], np.log10(sel[4]), pivot="middle",
                      headwidth=0, headlength=0, headaxislength=0, cmap="viridis",
                      angles="xy", scale_units="xy", scale=1 / (1.6 * step / grid_points),
                      width=0.012)
            ax.grid(False)
            _thresholds(ax)
            ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal")
            ax.set_title(f"{condition}, {layer}", fontsize=9)
            ax.set(xlabel="theta1", ylabel="theta2")
    return fig


def summary_bars(sums: pd.DataFrame) -> Figure:
    """The summary numbers of trained networks per condition and layer (bars: mean over seeds,
    error bars: 95% intervals over seeds), one panel per number."""
    trained_sums = sums[sums.state == "trained"]
    long = trained_sums.melt(id_vars=["condition", "layer", "seed"],
                             value_vars=list(SUMMARY_NAMES), var_name="measure",
                             value_name="value")
    long["measure"] = long["measure"].map(SUMMARY_NAMES)
    g = sns.catplot(long, x="condition", y="value", hue="layer", col="measure", kind="bar",
                    errorbar=("ci", 95), seed=0, sharex=False, sharey=False, height=2.8,
                    aspect=1.0, col_wrap=4)  # seeded bootstrap bands: the same figure on a rerun
    g.set_titles("{col_name}")
    logs = (SUMMARY_NAMES["total_abs_k"], SUMMARY_NAMES["volume_near_far"],
            SUMMARY_NAMES["stretch_near_far"])
    for ax in g.axes.flat:  # condition labels under every panel, not only the bottom row
        ax.tick_params(axis="x", rotation=40, labelbottom=True)
        ax.set_xlabel("")
        if ax.get_title() in logs:
            ax.set_yscale("log")
    g.tight_layout()  # room for every row's labels
    return g.figure


def record_summary(report: Any, sums: pd.DataFrame) -> None:
    """Mean summary numbers per condition and layer (trained networks, and untrained ones)."""
    mean_sums = sums.groupby(["condition", "state", "layer"], sort=False).mean(numeric_only=True)
    for (condition, state, layer), row in mean_sums.iterrows():
        if state == "trained" or condition == "untrained":
            for col in SUMMARY_NAMES:
                report.number(f"geo_{SLUG[condition]}_{layer}_{col}", float(row[col]))


__all__ = ["MAPS", "SLUG", "SUMMARY_NAMES", "eigenvectors", "maps", "record_regime",
           "record_summary", "regime_columns", "summary_bars"]
