"""Figure helpers shared by the chapters (matplotlib + seaborn). Each returns a Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

sns.set_theme(context="notebook", style="whitegrid")


def heatmap_grid(mats: Mapping[str, np.ndarray], ncols: int = 3, vmin: float = -1,
                 vmax: float = 1, cmap: str = "RdBu_r", size: float = 3.0) -> Figure:
    """Matrices side by side on one colour scale (correlations: -1..1)."""
    nrows = int(np.ceil(len(mats) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax, (title, m) in zip(axes.flat, mats.items(), strict=False):
        im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(mats):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.6)
    return fig


def show_inputs(ax_row: Sequence[plt.Axes], x: np.ndarray) -> None:
    """Draw inputs (k, C, H, W) as images or (k, D) as 1-D signals, one per axis."""
    for ax, xi in zip(ax_row, x, strict=False):
        if xi.ndim == 3:
            img = np.transpose(xi, (1, 2, 0)) if xi.shape[0] == 3 else xi[0]
            ax.imshow(np.clip(img, 0, 1) if xi.shape[0] == 3 else img, cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.plot(np.ravel(xi), lw=1)
            ax.set_xticks([])
            ax.set_yticks([])


def top_inputs(x: np.ndarray, a: np.ndarray, b: np.ndarray, pairs: Sequence[tuple[int, int]],
               values: Sequence[float], k: int = 4, n_inputs: int | None = None) -> Figure:
    """For each matched pair (unit of A, unit of B): the k inputs that drive each most.

    ``a`` and ``b`` are (samples, units); for conv layers samples are (input, position) pairs,
    ``n_inputs`` the number of inputs, and a unit's score for an input is its maximum over
    positions.
    """
    def per_input(act: np.ndarray) -> np.ndarray:
        if n_inputs is None or len(act) == n_inputs:
            return act
        return act.reshape(n_inputs, -1, act.shape[1]).max(1)

    sa, sb = per_input(a), per_input(b)
    fig, axes = plt.subplots(len(pairs), 2 * k, figsize=(1.1 * 2 * k, 1.2 * len(pairs)),
                             squeeze=False)
    for row, ((i, j), v) in enumerate(zip(pairs, values, strict=True)):
        show_inputs(axes[row, :k], x[np.argsort(-sa[:, i])[:k]])
        show_inputs(axes[row, k:], x[np.argsort(-sb[:, j])[:k]])
        axes[row, 0].set_ylabel(f"r={v:.2f}", fontsize=8)
        axes[row, 0].set_title(f"A unit {i}", fontsize=7, loc="left")
        axes[row, k].set_title(f"B unit {j}", fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def wiring_diagram(weights: np.ndarray, targets: np.ndarray, n_show: int = 8) -> Figure:
    """Few-to-one wiring: the ``n_show`` predicted units of B (right) with the units of A (left)
    that carry non-zero L1 weights; line width ~ |weight|, colour = sign."""
    w = np.asarray(weights)[:n_show]
    used = np.flatnonzero(np.any(w != 0, axis=0))
    fig, ax = plt.subplots(figsize=(5, 0.35 * max(len(used), n_show) + 1))
    ya = {u: k for k, u in enumerate(used)}
    scale = np.abs(w).max() or 1.0
    yb = np.linspace(0, max(len(used) - 1, 1), len(w))
    for r in range(len(w)):
        for u in np.flatnonzero(w[r]):
            ax.plot([0, 1], [ya[u], yb[r]], color="C3" if w[r, u] > 0 else "C0",
                    lw=0.5 + 3 * abs(w[r, u]) / scale, alpha=0.8)
    ax.scatter(np.zeros(len(used)), list(ya.values()), color="k", s=12, zorder=3)
    ax.scatter(np.ones(len(w)), yb, color="k", s=12, zorder=3)
    for u, y in ya.items():
        ax.text(-0.04, y, f"A{u}", ha="right", va="center", fontsize=7)
    for r, y in enumerate(yb):
        ax.text(1.04, y, f"B{targets[r]}", ha="left", va="center", fontsize=7)
    ax.set_xlim(-0.3, 1.3)
    ax.axis("off")
    return fig


def cluster_matrix(corr: np.ndarray, labels: np.ndarray, n_a: int) -> Figure:
    """Joint correlation matrix of both networks' units ordered by cluster; the side strip shows
    which network each unit belongs to (A dark, B light), row for row."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    order = np.lexsort((np.arange(len(labels)) >= n_a, labels))
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(corr[np.ix_(order, order)], vmin=-1, vmax=1, cmap="RdBu_r")
    # strip and colour bar share the matrix's height exactly, so strip rows are matrix rows
    divider = make_axes_locatable(ax)
    ax_strip = divider.append_axes("left", size="4%", pad=0.08)
    ax_strip.imshow((order >= n_a)[:, None], aspect="auto", cmap="Greys_r",
                    interpolation="nearest")
    ax_strip.set_xticks([])
    ax_strip.set_ylabel("units by cluster (strip: A dark, B light)")
    bounds = np.flatnonzero(np.diff(labels[order])) + 0.5
    for bnd in bounds:
        ax.axhline(bnd, color="k", lw=0.5)
        ax.axvline(bnd, color="k", lw=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax_strip.grid(False)
    fig.colorbar(im, cax=divider.append_axes("right", size="4%", pad=0.08))
    return fig


#: The columns of a comparison summary (:func:`repsim_utils.inference.pairs.summarise`) and
#: their names on the page.
SUMMARY_NAMES = {"trained": "trained vs trained", "uu": "untrained vs untrained",
                 "untrained": "trained vs untrained", "null": "null (samples shuffled)",
                 "effect_uu": "tt - uu", "effect": "tt - tu"}


def interval_table(summary: pd.DataFrame, precision: int = 3, n: int | None = None) -> Any:
    """A styled table of a comparison summary (columns of :data:`SUMMARY_NAMES` with
    ``_low``/``_high`` interval ends, ``p_value``, ``p_value_uu``): each value with its 95%
    interval. With ``n`` networks, the caption gives the smallest p-value the sign-flip test
    can reach."""
    from repsim_utils.inference.stats import smallest_p

    out = summary.drop(columns=[c for c in summary.columns
                                if c.endswith(("_low", "_high")) or c.startswith("p_value")]
                       ).copy()
    for col in SUMMARY_NAMES:
        if col in summary:
            out[col] = [f"{v:.{precision}f} [{lo:.{precision}f}, {hi:.{precision}f}]"
                        for v, lo, hi in summary[[col, f"{col}_low", f"{col}_high"]].to_numpy()]
    for col, name in (("p_value_uu", "p (tt - uu = 0)"), ("p_value", "p (tt - tu = 0)")):
        if col in summary:
            out[name] = summary[col].map(lambda p: f"{p:.3g}")
    styled = out.rename(columns=SUMMARY_NAMES).style.hide(axis="index")
    if n is not None:
        styled = styled.set_caption(
            f"95% jackknife intervals over {n} networks; with {n} networks the smallest "
            f"two-sided p-value the sign-flip test can reach is {smallest_p(n):.3g}.")
    return styled


def interval_plot(summary: pd.DataFrame, x: str, panels: str, ylabel: str,
                  kinds: Sequence[tuple[str, str]] = (("trained", "trained vs trained"),
                                                      ("uu", "untrained vs untrained"),
                                                      ("untrained", "trained vs untrained")),
                  size: float = 3.4) -> Figure:
    """One panel per value of ``panels``: each kind's value at each ``x`` with its interval as
    an error bar (``<kind>_low``, ``<kind>_high`` columns); kinds absent from ``summary`` are
    left out."""
    kinds = [(col, label) for col, label in kinds if col in summary]
    names = list(dict.fromkeys(summary[panels]))
    fig, axes = plt.subplots(1, len(names), figsize=(size * len(names), size * 0.9),
                             squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names, strict=True):
        d = summary[summary[panels] == name]
        pos = np.arange(len(d))
        for k, (col, label) in enumerate(kinds):
            v = d[col].to_numpy()
            err = np.stack([v - d[f"{col}_low"].to_numpy(), d[f"{col}_high"].to_numpy() - v])
            ax.errorbar(pos + 0.08 * (2 * k - len(kinds) + 1), v, yerr=err, fmt="o-", capsize=3,
                        label=label, color=f"C{k}")
        ax.set_xticks(pos, d[x].tolist())
        ax.set_title(str(name), fontsize=10)
        ax.set_xlabel(x)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=8)
    return fig


def mean_ci_table(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str],
                  precision: int = 3, **kwargs: Any) -> pd.DataFrame:
    """Per group of ``by``: each column's mean over the group's networks (rows) with its 95%
    jackknife interval over networks, as text "mean [low, high]"
    (:func:`repsim_utils.inference.stats.mean_over_networks`; a single row is shown without an
    interval)."""
    from repsim_utils.inference.stats import mean_over_networks

    rows = []
    for key, d in frame.groupby(list(by), sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        for col in columns:
            values = d[col].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            if len(values) == 0:
                row[col] = "not defined"
            elif len(values) == 1:
                row[col] = f"{values[0]:.{precision}g}"
            else:
                e = mean_over_networks(values, **kwargs)
                p = precision
                row[col] = f"{e.value:.{p}g} [{e.low:.{p}g}, {e.high:.{p}g}]"
        rows.append(row)
    return pd.DataFrame(rows)
