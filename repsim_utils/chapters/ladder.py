"""The invariance ladder on a chapter's networks (:mod:`repsim_utils.science.ladder`): per layer
and pair of networks, every rung; per layer and rung, trained pairs beside untrained pairs and
the share of the way from two untrained networks to identical layers, with intervals over
networks; and the computed statement of the lowest rung at which trained networks agree.

The rule of the statement, fixed before any run: a layer's trained networks are *the same up to*
the group of the lowest rung whose share's 95% interval lies above :data:`SHARE` and whose
trained-minus-untrained difference's interval lies above 0. The standard-measures chapter shows
it; model stitching, the function rung, has its own chapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from repsim_utils.inference import stats
from repsim_utils.inference.pairs import Pair, layer_arrays, pair_table, summarise
from repsim_utils.science.ladder import RUNGS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The share of the way from untrained pairs to identical layers that trained pairs must reach
#: (the whole interval above it) for a layer to count as the same up to a rung's group: half
#: the way, the study's choice, fixed before the runs.
SHARE = 0.5
NAMES = [r.name for r in RUNGS]
#: The loosest rung, from model stitching: the same function as far as the task goes.
FUNCTION = "function"
FUNCTION_GROUP = "an affine stitch, as far as the task goes"


def ladder_table(acts: Mapping[str, Mapping[str, np.ndarray]], layers: Sequence[str],
                 pairs: Sequence[Pair], known: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (layer, pair): every rung of :data:`~repsim_utils.science.ladder.RUNGS` between the
    same layer of the two networks (one column per rung). A rung that is a registered measure
    is read from ``known`` (a :func:`~repsim_utils.chapters.standard_measures.measure_table` of
    the same layers and pairs) where it has that measure's column, not computed again."""
    keys = ["layer", "net_a", "net_b", "kind"]
    reuse = {r.name: r.measure for r in RUNGS
             if known is not None and r.measure is not None and r.measure in known}
    todo = [r for r in RUNGS if r.name not in reuse]
    table = pair_table(layers, pairs, lambda la, a, b: {
        r.name: r.function(acts[a][la], acts[b][la]) for r in todo}, "invariance ladder")
    if reuse:
        have = known[keys + list(reuse.values())].rename(columns={m: n for n, m in reuse.items()})
        merged = table.merge(have, on=keys, how="left", validate="one_to_one")
        if merged[list(reuse)].isna().any().any():
            raise ValueError("the measure table lacks some (layer, pair) rows of the ladder")
        table = merged
    return table[keys + NAMES]


def _share(tt: np.ndarray, uu: np.ndarray, n: int) -> stats.Estimate | None:
    """(mean tt - mean uu) / (1 - mean uu) over networks, with its jackknife interval (the
    ratio recomputed without each network); None where untrained pairs score 1 without some
    network (the rung is at its ceiling: nothing is left to share)."""
    def statistic(idx: np.ndarray) -> np.ndarray:
        t, u = stats.pair_mean(tt, idx), stats.pair_mean(uu, idx)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(u < 1, (t - u) / (1.0 - u), np.nan)

    if np.any(stats.pair_mean(uu, stats.leave_one_out(n)) >= 1):
        return None
    return stats.interval_over_networks(statistic, n)


def ladder_summary(table: pd.DataFrame, layers: Sequence[str], n: int,
                   stitches: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per layer and rung (``statistic``): trained, untrained and trained-vs-untrained pairs and
    the effects (:func:`~repsim_utils.inference.pairs.summarise`), and the ``share`` of the way
    from untrained pairs to 1, each with its 95% interval over networks (NaN where untrained
    pairs already score 1: the rung cannot tell trained networks from untrained ones). With
    ``stitches``, the function rung last (:func:`function_rung`)."""
    out = summarise(table, NAMES, n)
    shares = []
    for rung in NAMES:
        sides = layer_arrays(table, rung, list(layers), n)
        for li, layer in enumerate(layers):
            e = _share(sides.tt[li], sides.uu[li], n)
            shares.append({"layer": layer, "statistic": rung} | (
                {"share": e.value, "share_low": e.low, "share_high": e.high} if e else
                dict.fromkeys(("share", "share_low", "share_high"), np.nan)))
    out = out.merge(pd.DataFrame(shares), on=["layer", "statistic"], validate="one_to_one")
    if stitches is None:
        return out
    return pd.concat([out, function_rung(stitches, layers, n)], ignore_index=True)


def function_rung(stitches: pd.DataFrame, layers: Sequence[str], n: int) -> pd.DataFrame:
    """The function rung per layer, from direct-matching stitching penalties
    (:func:`repsim_utils.chapters.grounding.stitch_penalty_table`): the similarity is the share
    of the receiver's accuracy a stitch keeps, 1 - penalty, for pairs of trained networks
    (``trained``, both directions) and for the untrained sender u_i into t_i (in the ``uu``
    columns: the reference of this rung, since an untrained receiver has no function to
    share); the effect tt - reference (``effect_uu``) and the share of the way from the
    reference to 1, (tt - ref) / (1 - ref) = 1 - penalty_tt / penalty_ref, each with its
    interval over networks. Rows shaped as :func:`ladder_summary`'s."""
    rows = []
    for layer in layers:
        d = stitches[stitches.layer == layer]
        tt = np.full((n, n), np.nan)
        ref = np.full(n, np.nan)
        for a, b, v in d[["net_a", "net_b", "stitching penalty"]].itertuples(index=False):
            i = int(a[1:])
            if b.startswith("t"):
                tt[i, int(b[1:])] = tt[int(b[1:]), i] = 1.0 - v
            else:
                ref[i] = 1.0 - v
        if np.isnan(ref).any() or np.isnan(tt[~np.eye(n, dtype=bool)]).any():
            raise ValueError(f"layer {layer}: some stitching penalties are missing")
        t = stats.over_networks(tt, n, True)
        r = stats.over_networks(ref, n, False)
        e = stats.effect_over_networks(tt, ref, n)
        row = {"layer": layer, "statistic": FUNCTION}
        for name, est in (("trained", t), ("uu", r), ("effect_uu", e)):
            row |= {name: est.value, f"{name}_low": est.low, f"{name}_high": est.high}

        def share(idx: np.ndarray, tt: np.ndarray = tt, ref: np.ndarray = ref) -> np.ndarray:
            u = stats.net_mean(ref, idx)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(u < 1, (stats.pair_mean(tt, idx) - u) / (1.0 - u), np.nan)

        if np.all(stats.net_mean(ref, stats.leave_one_out(n)) < 1):
            sh = stats.interval_over_networks(share, n)
            row |= {"share": sh.value, "share_low": sh.low, "share_high": sh.high}
        else:
            row |= dict.fromkeys(("share", "share_low", "share_high"), np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def lowest_rungs(summary: pd.DataFrame) -> pd.DataFrame:
    """Per layer, by the rule of the module docstring: the lowest rung reached (``rung``; None
    where none is), its group, share and effect, and the largest share on the ladder."""
    groups = {r.name: r.group for r in RUNGS} | {FUNCTION: FUNCTION_GROUP}
    names = _names(summary)
    rows = []
    for layer, d in summary.groupby("layer", sort=False):
        d = d.set_index("statistic").loc[names]
        reached = d[(d.share_low > SHARE) & (d.effect_uu_low > 0)]
        best = d.share.idxmax() if d.share.notna().any() else None
        row: dict[str, Any] = {"layer": layer, "rung": None, "group": None, "best_rung": best,
                               "best_share": None if best is None else float(d.share[best])}
        if len(reached):
            r = reached.index[0]
            row |= {"rung": r, "group": groups[r], "share": float(d.share[r]),
                    "share_low": float(d.share_low[r]), "share_high": float(d.share_high[r]),
                    "effect_uu": float(d.effect_uu[r]), "effect_uu_low": float(d.effect_uu_low[r]),
                    "effect_uu_high": float(d.effect_uu_high[r])}
        rows.append(row)
    return pd.DataFrame(rows)


def statements(lowest: pd.DataFrame) -> list[str]:
    """One generated sentence per layer from :func:`lowest_rungs`."""
    out = []
    for r in lowest.itertuples(index=False):
        if r.rung is None:
            best = ("untrained pairs score 1 at every rung" if r.best_rung is None else
                    f"largest share {r.best_share:.2f}, at the {r.best_rung} rung")
            out.append(f"Layer {r.layer}: no rung of the ladder has trained networks at least "
                       f"{SHARE:.0%} of the way from two untrained networks to identical "
                       f"({best}).")
        else:
            out.append(f"Layer {r.layer}: trained networks are the same up to {r.group} "
                       f"(the {r.rung} rung): {r.share:.2f} of the way from two untrained "
                       f"networks to identical (95% CI {r.share_low:.2f} to {r.share_high:.2f}), "
                       f"and more alike than two untrained networks by {r.effect_uu:.3f} "
                       f"({r.effect_uu_low:.3f} to {r.effect_uu_high:.3f}).")
    return out


def _names(summary: pd.DataFrame) -> list[str]:
    """The rungs in ``summary``, strictest first (the function rung last, where present)."""
    return NAMES + ([FUNCTION] if (summary.statistic == FUNCTION).any() else [])


def ladder_plot(summary: pd.DataFrame) -> Figure:
    """Left: the share of the way from untrained pairs to identical, per rung, one line per
    layer, with the :data:`SHARE` threshold; right: the raw similarity of trained (filled) and
    untrained pairs (open) per rung. Error bars: 95% intervals over networks."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    names = _names(summary)
    x = np.arange(len(names))
    layers = list(dict.fromkeys(summary.layer))
    for k, layer in enumerate(layers):
        d = summary[summary.layer == layer].set_index("statistic").loc[names]
        off = (k - (len(layers) - 1) / 2) * 0.08
        line = left.errorbar(x + off, d.share, yerr=[d.share - d.share_low,
                                                     d.share_high - d.share],
                             marker="o", capsize=3, label=layer)
        colour = line[0].get_color()
        for name, fill in (("trained", colour), ("uu", "none")):
            right.errorbar(x + off, d[name], yerr=[d[name] - d[f"{name}_low"],
                                                   d[f"{name}_high"] - d[name]],
                           marker="o", ls="-" if name == "trained" else ":", color=colour,
                           mfc=fill, capsize=3)
    left.axhline(SHARE, ls="--", color="0.4", lw=0.8)
    left.set(ylabel="share of the way from untrained to identical", ylim=(None, 1.05))
    right.set(ylabel="similarity (filled: trained, open: untrained)", ylim=(None, 1.05))
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=20)
        ax.set_xlabel("the same up to ... (stricter to looser)")
    left.legend(title="layer", fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["FUNCTION", "FUNCTION_GROUP", "NAMES", "SHARE", "function_rung", "ladder_plot",
           "ladder_summary", "ladder_table", "lowest_rungs", "statements"]
