"""The convergent-learning chapter's pipeline (Li et al. 2016): matching statistics for every
pair of networks and every layer as tidy tables (one row per layer and pair), the claims the
chapter tests, and their verdicts, built on :mod:`matching`, :mod:`stats` and :mod:`verdicts`.

Pairs are every two trained networks (tt), every two untrained networks (uu) and each trained
network with an independent untrained one (tu) (:func:`repsim_utils.inference.pairs.pair_list`);
intervals are over networks, not pairs (:mod:`repsim_utils.inference.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from repsim_utils.base.progress import track
from repsim_utils.book import plots
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import (
    TRAINED,
    UNTRAINED,
    Pair,
    layer_arrays,
    pair_arrays,
    pair_list,
    pair_table,
    summarise,
    trained_pairs,
)
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict, training_verdict
from repsim_utils.nets.recipes import Networks
from repsim_utils.science import matching
from repsim_utils.science import prepared as pp

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Acts = dict[str, dict[str, np.ndarray]]


class _Units:
    """Every network's layers standardised once (:func:`repsim_utils.science.prepared.
    units_layer`), on first use: a pair's correlation matrix is then one product, not a pass
    over both layers' samples per pair."""

    def __init__(self, acts: Acts) -> None:
        self._acts, self._done = acts, {}

    def __getitem__(self, key: tuple[str, str]) -> pp.UnitsLayer:
        if key not in self._done:
            net, layer = key
            self._done[key] = pp.units_layer(self._acts[net][layer])
        return self._done[key]


def _shuffled(units: pp.UnitsLayer, seed: int) -> pp.UnitsLayer:
    """The standardised layer with its samples in the order of ``stats.shuffled(seed)``:
    standardising commutes with reordering samples."""
    return pp.UnitsLayer(stats.shuffled(units.z, seed), units.dead)


def match_table(acts: Acts, layers: Sequence[str], pairs: Sequence[Pair]) -> pd.DataFrame:
    """Per (layer, pair): units, dead units of each net, mean semi- and bipartite-matched
    correlation (dead and unmatched units count 0, as unmatched), the fraction of units for
    which both matchings agree (Li et al. 2016, Table 1), and the 10% and 90% quantiles of the
    per-unit semi-matched correlation."""
    units = _Units(acts)

    def row(layer: str, a: str, b: str) -> dict[str, float]:
        corr = pp.correlation_between(units[a, layer], units[b, layer])
        semi, bip = matching.semi_match(corr), matching.bipartite_match(corr)
        return {"units": corr.shape[0], "dead_a": len(semi.dead_a), "dead_b": len(semi.dead_b),
                "semi": semi.mean, "bipartite": bip.mean,
                "same_partner": matching.same_partner_fraction(semi, bip),
                "semi_q10": semi.quantile(0.1), "semi_q90": semi.quantile(0.9)}
    return pair_table(layers, pairs, row, "matching")


def mi_table(acts: Acts, layers: Sequence[str], pairs: Sequence[Pair], n_bins: int = 10,
             k: int = 8) -> pd.DataFrame:
    """Per (layer, pair): the share of the ``k`` best semi-matched pairs of units under mutual
    information that are also among the ``k`` best under correlation (paper: 7 of 8 in
    conv1), and the same with net b's samples shuffled (``mi_top_overlap_null``: what the two
    rankings share when no unit of b corresponds to one of a)."""
    def overlap(xa: np.ndarray, xb: np.ndarray) -> tuple[int, float]:
        corr = matching.correlation(xa, xb)
        mi = matching.mutual_information(xa, xb, n_bins=n_bins)
        top_c, top_mi = matching.top_pairs(corr, k), matching.top_pairs(mi, k)
        return len(top_c), len(set(top_c) & set(top_mi)) / max(len(top_c), 1)

    def row(layer: str, a: str, b: str) -> dict[str, float]:
        xa, xb = acts[a][layer], acts[b][layer]
        k_used, value = overlap(xa, xb)
        return {"k": k_used, "mi_top_overlap": value,
                "mi_top_overlap_null": overlap(xa, stats.shuffled(xb, seed=k))[1]}
    return pair_table(layers, pairs, row, "mutual information")


def sparse_table(acts: Acts, layers: Sequence[str], pairs: Sequence[Pair],
                 alphas: Sequence[float], few: float, n_targets: int | None = 16,
                 max_samples: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Per (layer, pair): few-to-one prediction of net b's units from all of net a's
    (:func:`matching.sparse_prediction`): the dense least-squares error, the best error with at
    most ``few`` weights per unit, and their difference ``few_gap``; also the error and weights
    used at every penalty (columns ``error_<k>``, ``nonzero_<k>``, k indexing ``alphas``), and
    ``excluded`` and ``excluded_inputs``, the units of b too rarely active to predict and the
    units of a too rarely active to predict from (see :func:`matching.sparse_prediction`)."""
    def row(layer: str, a: str, b: str) -> dict[str, float]:
        xa, xb = acts[a][layer], acts[b][layer]
        if len(xa) > max_samples:
            keep = np.random.default_rng(seed).choice(len(xa), max_samples, replace=False)
            xa, xb = xa[keep], xb[keep]
        sp = matching.sparse_prediction(xa, xb, alphas, seed=seed, n_targets=n_targets)
        few_error = sp.error_with_at_most(few)
        return ({"dense_error": sp.dense_error, "few_error": few_error,
                 "few_gap": few_error - sp.dense_error, "excluded": sp.excluded,
                 "excluded_inputs": sp.excluded_inputs}
                | {f"error_{i}": e for i, e in enumerate(sp.error)}
                | {f"nonzero_{i}": z for i, z in enumerate(sp.nonzero)})
    return pair_table(layers, pairs, row, "sparse prediction")


def cluster_table(acts: Acts, layers: Sequence[str], pairs: Sequence[Pair], n_clusters: int,
                  seed: int = 0) -> pd.DataFrame:
    """Per (layer, pair): the share of units in balanced many-to-many groups of the spectral
    clustering of the joint correlation matrix (``shared``, :func:`matching.many_to_many_share`:
    clusters with at least two units of each network, groups that one-to-one matches cannot
    describe), and the same with net b's samples shuffled (``shared_null``: no shared
    structure, same marginals)."""
    def row(layer: str, a: str, b: str) -> dict[str, float]:
        xa, xb = acts[a][layer], acts[b][layer]
        return {"shared": joint_clusters(xa, xb, n_clusters, seed)[0],
                "shared_null": joint_clusters(xa, stats.shuffled(xb, seed), n_clusters,
                                              seed)[0]}
    return pair_table(layers, pairs, row, "clusters")


def joint_clusters(xa: np.ndarray, xb: np.ndarray, n_clusters: int, seed: int = 0
                   ) -> tuple[float, np.ndarray, np.ndarray, int]:
    """(:func:`matching.many_to_many_share`, labels, joint correlation of the alive units,
    alive units of a) of the spectral clustering of both networks' units together."""
    joint = np.hstack([xa, xb])
    keep = np.setdiff1d(np.arange(joint.shape[1]), matching.dead_units(joint))
    jc = matching.correlation(joint[:, keep])
    n_a = int(np.sum(keep < xa.shape[1]))
    labels = matching.cluster_units(jc, n_clusters=min(n_clusters, len(keep) - 1), seed=seed)
    return matching.many_to_many_share(labels, n_a), labels, jc, n_a


def reliable_table(acts: Acts, layers: Sequence[str], n: int, seed: int = 0) -> pd.DataFrame:
    """Per layer, group (trained ``t``, untrained ``u``) and network i of the group: the share
    of i's units whose best (semi-matched) correlation exceeds, in *every* other network of its
    group, the 95th percentile of the same best correlations with that network's samples
    shuffled (``reliable``), the share exceeding it in none (``unmatched``; see
    :func:`matching.reliable_units`), and ``reliable_null``: the share of reliable units when
    every other network's samples are shuffled again (a second, independent order), which is
    what the statistic scores when no unit corresponds to any other."""
    rows = []
    jobs = [(la, g) for la in layers for g in ("t", "u")]
    for layer, group in track(jobs, "reliable units"):
        x = [pp.units_layer(acts[f"{group}{i}"][layer]) for i in range(n)]  # once per network
        best: dict[tuple[int, int], np.ndarray] = {}
        for i, j in trained_pairs(n):  # one correlation matrix serves both directions
            corr = pp.correlation_between(x[i], x[j])
            best[i, j], best[j, i] = (matching.semi_match(corr).value,
                                      matching.semi_match(corr.T).value)
        for i in range(n):
            others = [j for j in range(n) if j != i]
            q95, again = [], []
            for j in others:
                null = matching.semi_match(pp.correlation_between(
                    x[i], _shuffled(x[j], seed + j))).value
                q95.append(np.nanquantile(null, 0.95) if np.isfinite(null).any() else np.inf)
                again.append(matching.semi_match(pp.correlation_between(
                    x[i], _shuffled(x[j], seed + 1000 + j))).value)
            reliable, unmatched = matching.reliable_units(
                np.stack([best[i, j] for j in others]), np.array(q95))
            rows.append({"layer": layer, "group": "trained" if group == "t" else "untrained",
                         "net": i, "reliable": reliable, "unmatched": unmatched,
                         "reliable_null": matching.reliable_units(np.stack(again),
                                                                  np.array(q95))[0]})
    return pd.DataFrame(rows)


def group_arrays(table: pd.DataFrame, column: str, layers: Sequence[str], n: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(trained, untrained) per-network values of ``column`` of :func:`reliable_table`,
    each (layers, n)."""
    out = []
    for group in ("trained", "untrained"):
        d = table[table.group == group].pivot(index="layer", columns="net", values=column)
        out.append(d.loc[list(layers), list(range(n))].to_numpy(dtype=np.float64))
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "li2016convergent"

CLAIMS = {c.id: c for c in [
    Claim("reliable_units", PAPER,
          "Some units are learnt reliably by all networks, others are not",
          "share of a network's units whose best match in every other network exceeds the "
          "95th percentile of the shuffled-samples null, trained networks minus untrained "
          "networks, weakest layer", Rule("above", 0.0)),
    Claim("semi_above_bipartite", PAPER, "Semi-matching scores above bipartite matching",
          "mean semi minus mean bipartite matched correlation, trained vs trained, weakest "
          "layer", Rule("above", 0.0), kind="sanity"),
    Claim("matching_falls_with_depth", PAPER,
          "Matching quality falls from the first layer to deeper layers",
          "mean semi-matched correlation, last minus first hidden layer, trained pairs minus "
          "the same trend of untrained pairs", Rule("below", 0.0)),
    Claim("few_to_one_reference", PAPER,
          "The dense least-squares map from one network to another predicts better than the "
          "mean", "held-out normalised error of the dense map, trained vs trained, worst layer",
          Rule("below", 1.0), kind="precondition"),
    Claim("few_to_one", PAPER,
          "A few units of one network predict a unit of another about as well as all of them",
          "held-out normalised error with at most `few` weights per unit minus the dense error, "
          "trained vs trained, worst layer", Rule("below", 0.1), own_threshold=True),
    Claim("many_to_many", PAPER,
          "Shared low-dimensional subspaces exist beyond one-to-one matches",
          "share of units in balanced joint clusters with at least two units of each network, "
          "trained pairs minus untrained pairs, weakest layer", Rule("above", 0.0)),
    Claim("mi_agrees_with_correlation", PAPER,
          "Mutual-information matching agrees with correlation matching on the best pairs",
          "share of the 8 best pairs of the first layer that are the same under MI and "
          "correlation, trained vs trained (the paper: 7 of 8)", Rule("above", 0.75)),
    Claim("trained_match_more", "study",
          "Trained networks match each other more than two untrained networks do",
          "mean semi-matched correlation, trained pairs minus untrained pairs, weakest layer",
          Rule("above", 0.0)),
]}


def verdicts(matches: pd.DataFrame, sparse: pd.DataFrame, clusters: pd.DataFrame,
             mi: pd.DataFrame, reliable: pd.DataFrame, layers: Sequence[str], n: int,
             **kwargs) -> list[Verdict]:
    """The chapter's verdicts from its tables (see :data:`CLAIMS`). "Weakest layer" statistics
    are the minimum over layers on the same networks, so the interval is that of the minimum;
    "worst layer" the maximum of an error. Every verdict shows untrained vs untrained (uu)
    beside trained vs untrained and, where one exists, the shuffled-samples null."""
    layers = list(layers)
    low, high = stats.weakest, stats.strongest

    def ref(name, values, pairs, reduce=stats.identity):
        return Reference.of(name, stats.over_networks(values, n, pairs, reduce, **kwargs))

    out = []
    rel_t, rel_u = group_arrays(reliable, "reliable", layers, n)
    unmatched_t, _ = group_arrays(reliable, "unmatched", layers, n)
    null_t, _ = group_arrays(reliable, "reliable_null", layers, n)
    out.append(CLAIMS["reliable_units"].judge(
        stats.interval_over_networks(
            lambda i: low(stats.net_mean(rel_t, i) - stats.net_mean(rel_u, i)), n, **kwargs),
        null=ref("null: trained networks, the others' samples shuffled (weakest layer)",
                 null_t, False, low),
        uu=ref("untrained networks (weakest layer)", rel_u, False, low),
        extra=(ref("trained networks (weakest layer)", rel_t, False, low),
               ref("share matched in no other trained network (largest layer)",
                   unmatched_t, False, high))))

    def null_ref(name, values, reduce=stats.identity):
        return None if values is None else ref(f"null: {name}", values, False, reduce)

    diff = layer_arrays(matches.assign(diff=matches.semi - matches.bipartite), "diff", layers, n)
    out.append(CLAIMS["semi_above_bipartite"].judge(
        stats.over_networks(diff.tt, n, True, low, **kwargs),
        ref("trained vs untrained", diff.tu, False, low),
        null_ref("samples of one network shuffled", diff.null, low),
        uu=ref("untrained vs untrained", diff.uu, True, low),
        note="Semi-matching can never score below bipartite matching (each unit takes its "
             "best partner), for any matrix."))

    sides = layer_arrays(matches, "semi", layers, n)
    tt, tu, uu = sides
    if len(layers) >= 2:
        def trend(v: np.ndarray) -> np.ndarray:
            return v[-1] - v[0]
        out.append(CLAIMS["matching_falls_with_depth"].judge(
            stats.interval_over_networks(lambda i: trend(stats.pair_mean(tt, i))
                                         - trend(stats.pair_mean(uu, i)), n, **kwargs),
            ref("trend, trained vs untrained", trend(tu), False),
            null_ref("trend, samples of one network shuffled",
                     None if sides.null is None else trend(sides.null)),
            uu=ref("trend, untrained vs untrained", trend(uu), True),
            extra=(ref("trend, trained vs trained", trend(tt), True),)))
    out.append(training_verdict(CLAIMS["trained_match_more"], sides, n, **kwargs))

    dense = layer_arrays(sparse, "dense_error", layers, n)
    out.append(CLAIMS["few_to_one_reference"].judge(
        stats.over_networks(dense.tt, n, True, high, **kwargs),
        ref("trained vs untrained", dense.tu, False, high),
        null_ref("samples of the predicted network shuffled", dense.null, high),
        uu=ref("untrained vs untrained", dense.uu, True, high),
        note=f"Left out, as active on fewer than {matching.MIN_ACTIVE:.0%} of the rows: "
             f"{int(sparse.excluded.sum())} targets and {int(sparse.excluded_inputs.sum())} "
             f"predictor units over all (pair, layer) maps."))
    gap = layer_arrays(sparse, "few_gap", layers, n)
    out.append(CLAIMS["few_to_one"].judge(
        stats.over_networks(gap.tt, n, True, high, **kwargs),
        ref("predicting an untrained network", gap.tu, False, high),
        null_ref("samples of the predicted network shuffled", gap.null, high),
        uu=ref("untrained vs untrained", gap.uu, True, high)))

    sides = layer_arrays(clusters, "shared", layers, n)
    null_tt = layer_arrays(clusters, "shared_null", layers, n).tt
    out.append(CLAIMS["many_to_many"].judge(
        stats.effect_over_networks(sides.tt, sides.uu, n, low, pairs=True, **kwargs),
        ref("trained vs untrained share", sides.tu, False, low),
        ref("samples of net b shuffled, trained pairs", null_tt, True, low),
        uu=ref("untrained vs untrained share", sides.uu, True, low),
        extra=(ref("trained vs trained share", sides.tt, True, low),)))

    first = mi[mi.layer == layers[0]]
    tt, tu, uu = pair_arrays(first, "mi_top_overlap", n)
    out.append(CLAIMS["mi_agrees_with_correlation"].judge(
        stats.over_networks(tt, n, True, **kwargs), ref("trained vs untrained", tu, False),
        ref("samples of net b shuffled", pair_arrays(first, "mi_top_overlap_null", n).tt,
            True),
        uu=ref("untrained vs untrained", uu, True)))
    return out


# ---------------------------------------------------------------------------------------------
# what the page shows: tables, recorded numbers and figures


def accuracy_table(nets: Networks) -> pd.DataFrame:
    """Per seed: test accuracy after training and at initialisation, and the dead units of
    every layer of the trained network."""
    accuracy = pd.DataFrame({"seed": [t.seed for t in nets.trained],
                             "test accuracy": [t.test_accuracy for t in nets.trained],
                             "accuracy at init": [t.history[0]["test_acc"] for t in nets.trained]})
    return accuracy.join(pd.DataFrame([{f"dead units, {layer}": len(matching.dead_units(
        nets.acts[f"t{i}"][layer])) for layer in nets.layers} for i in range(nets.n)]))


def record_accuracy(report: Any, accuracy: pd.DataFrame) -> None:
    """The mean, lowest and highest test accuracy of the trained networks."""
    acc = accuracy["test accuracy"]
    for key, value in (("mean", acc.mean()), ("min", acc.min()), ("max", acc.max())):
        report.number(f"cl_accuracy_{key}", float(value))


def record_matching(report: Any, summary: pd.DataFrame, layers: Sequence[str]) -> None:
    """The matching summary table, and its numbers per layer (also as ``first``/``last``)."""
    report.table("cl_summary", summary)
    for _, row in summary.iterrows():
        for col, tag in (("trained", ""), ("untrained", "_untrained")):
            report.number(f"cl_{row['statistic']}{tag}_{row['layer']}", float(row[col]))
        report.number(f"cl_{row['statistic']}_effect_{row['layer']}", float(row["effect"]))
    for alias, layer in (("first", layers[0]), ("last", layers[-1])):
        for stat in ("semi", "bipartite", "same_partner"):
            sel = summary[(summary.layer == layer) & (summary.statistic == stat)].iloc[0]
            report.number(f"cl_{stat}_{alias}", float(sel["trained"]))
            report.number(f"cl_{stat}_untrained_{alias}", float(sel["untrained"]))


def dead_units_sentence(table: pd.DataFrame) -> str:
    return (f"Dead units over all pairs (counted as unmatched): "
            f"{int(table.dead_a.sum() + table.dead_b.sum())} unit-occurrences.")


def correlation_matrices(acts: Acts, layers: Sequence[str]) -> Figure:
    """Per layer: correlations within net 0, between nets 0 and 1, and the latter with net
    1's units reordered by the bipartite matching."""
    mats = {}
    for layer in layers:
        between = matching.correlation(acts["t0"][layer], acts["t1"][layer])
        mats[f"{layer}: within net 0"] = matching.correlation(acts["t0"][layer])
        mats[f"{layer}: net 0 vs net 1"] = between
        mats[f"{layer}: after bipartite permutation"] = matching.permute_units(
            between, matching.bipartite_match(between))
    return plots.heatmap_grid(mats, ncols=3)


def sorted_curves(acts: Acts, layers: Sequence[str]) -> Figure:
    """Matched correlation of every unit of net 0, sorted, semi vs bipartite, against trained
    net 1 (solid) and untrained net u0 (dotted), one panel per layer."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(layers), figsize=(3.6 * len(layers), 3.2), sharey=True,
                             squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        for other, style in (("t1", "-"), ("u0", ":")):
            corr = matching.correlation(acts["t0"][layer], acts[other][layer])
            for match, color in ((matching.semi_match(corr), "C0"),
                                 (matching.bipartite_match(corr), "C1")):
                name = "semi" if color == "C0" else "bipartite"
                label = f"{name}, {'trained' if other == 't1' else 'untrained'}"
                ax.plot(match.sorted_values(), style, color=color, label=label)
        ax.set_title(layer)
        ax.set_xlabel("unit (sorted)")
    axes[0, 0].set_ylabel("matched correlation")
    axes[0, -1].legend(fontsize=8)
    return fig


def best_and_worst(nets: Networks, layer: str) -> Figure:
    """The 3 best and 3 worst bipartite pairs of ``layer`` (net 0 vs net 1), each unit shown by
    the 4 inputs that drive it most."""
    acts = nets.acts
    corr = matching.correlation(acts["t0"][layer], acts["t1"][layer])
    bip = matching.bipartite_match(corr)
    order = np.argsort(-np.where(bip.matched, bip.value, -np.inf))
    n_matched = int(bip.matched.sum())
    picks = list(order[:3]) + list(order[max(n_matched - 3, 3):n_matched])
    return plots.top_inputs(nets.x.numpy(), acts["t0"][layer], acts["t1"][layer],
                            [(int(i), int(bip.partner[i])) for i in picks],
                            [float(bip.value[i]) for i in picks], k=4, n_inputs=len(nets.x))


def mi_scatter(acts: Acts, layer: str, n_bins: int) -> Figure:
    """Per unit of ``layer`` (net 0 vs net 1): the best partner's correlation and the best
    partner's mutual information."""
    import matplotlib.pyplot as plt

    corr = matching.correlation(acts["t0"][layer], acts["t1"][layer])
    mi = matching.mutual_information(acts["t0"][layer], acts["t1"][layer], n_bins=n_bins)
    semi_c, semi_mi = matching.semi_match(corr), matching.semi_match(mi)
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    ok = semi_c.matched & semi_mi.matched
    ax.scatter(semi_c.value[ok], semi_mi.value[ok], s=12)
    ax.set_xlabel("semi-matched correlation")
    ax.set_ylabel("semi-matched MI (nats)")
    return fig


def sparse_curves(sparse: pd.DataFrame, alphas: Sequence[float], few: float) -> Figure:
    """Held-out error (left) and weights used (right) as the L1 penalty grows, mean over pairs,
    per layer; solid: trained vs trained, dashed: predicting an untrained network."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    alphas = np.sort(alphas)
    k = range(len(alphas))
    long = sparse.melt(id_vars=["layer", "kind"], value_vars=[f"error_{i}" for i in k],
                       var_name="k", value_name="error")
    long["alpha"] = alphas[long["k"].str[6:].astype(int).to_numpy()]
    nz = sparse.melt(id_vars=["layer", "kind"], value_vars=[f"nonzero_{i}" for i in k],
                     var_name="k", value_name="weights per unit")
    long["weights per unit"] = nz["weights per unit"].to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    sns.lineplot(long, x="alpha", y="error", hue="layer", style="kind", marker="o",
                 errorbar=None, ax=axes[0])
    sns.lineplot(long, x="alpha", y="weights per unit", hue="layer", style="kind", marker="o",
                 errorbar=None, ax=axes[1], legend=False)
    axes[0].set(xscale="log", xlabel="L1 penalty alpha", ylabel="held-out normalised MSE",
                ylim=(0, 1.1))
    axes[1].set(xscale="log", yscale="log", xlabel="L1 penalty alpha")
    axes[1].axhline(few, ls=":", color="0.4")
    return fig


def wiring(report: Any, acts: Acts, layer: str, alphas: Sequence[float]) -> None:
    """The few-to-one wiring of ``layer`` (net 0 to net 1) at the sparsest penalty within 0.1
    of the best held-out error: figure ``cl_wiring`` and its numbers."""
    sp = matching.sparse_prediction(acts["t0"][layer], acts["t1"][layer], alphas)
    mid = sp.sparsest_within(0.1)
    fig = plots.wiring_diagram(sp.weights[mid], sp.targets, n_show=6)
    report.number("cl_wiring_alpha", float(sp.alphas[mid]))
    report.number("cl_wiring_nonzero", float(sp.nonzero[mid]))
    report.figure(fig, "cl_wiring",
                  f"Few-to-one wiring of {layer} at alpha = {sp.alphas[mid]:g}, the sparsest "
                  f"penalty within 0.1 of the best held-out error (net 0 to net 1): 6 units of "
                  f"net 1 (right) and the units of net 0 that predict them (left); "
                  f"{sp.nonzero[mid]:.1f} non-zero weights per unit on average, held-out error "
                  f"{sp.error[mid]:.2f} (dense map: {sp.dense_error:.2f}). Red: positive "
                  f"weight, blue: negative (standardised units).")


def cluster_figure(acts: Acts, layer: str, n_clusters: int) -> Figure:
    """``layer``: the joint correlation matrix of nets 0 and 1 ordered by spectral cluster."""
    _, labels, jc, n_a = joint_clusters(acts["t0"][layer], acts["t1"][layer], n_clusters)
    return plots.cluster_matrix(jc, labels, n_a)


def beside_the_paper(summary: pd.DataFrame, table: pd.DataFrame, layers: Sequence[str]
                     ) -> pd.DataFrame:
    """The study's Table 1: per layer, units and the matching statistics, trained vs trained
    beside trained vs untrained."""
    paired = summary[summary.statistic.isin(["semi", "bipartite", "same_partner"])]
    ours = paired.pivot(index="layer", columns="statistic", values="trained").loc[layers]
    ours = ours.join(paired.pivot(index="layer", columns="statistic", values="untrained").loc[
        layers].add_suffix(" (vs untrained)"))
    ours.insert(0, "units", [int(table[table.layer == la].units.iloc[0]) for la in layers])
    return ours


#: Li et al. (2016), Table 1: AlexNet on ImageNet, Net1 vs Net2, mean matched correlation.
PAPER_TABLE = pd.DataFrame({
    "layer": ["conv1", "conv2", "conv3", "conv4", "conv5"],
    "units": [96, 256, 384, 384, 256],
    "semi": [0.703, 0.556, 0.478, 0.369, 0.416],
    "bipartite": [0.663, 0.507, 0.446, 0.342, 0.385],
    "same_partner": [0.729, 0.578, 0.617, 0.581, 0.645],
})

__all__ = ["CLAIMS", "PAPER_TABLE", "TRAINED", "UNTRAINED", "accuracy_table", "beside_the_paper",
           "best_and_worst", "cluster_figure", "cluster_table", "correlation_matrices",
           "dead_units_sentence", "group_arrays", "joint_clusters", "match_table", "mi_scatter",
           "mi_table", "pair_list", "record_accuracy", "record_matching", "reliable_table",
           "sorted_curves", "sparse_curves", "sparse_table", "summarise", "verdicts", "wiring"]
