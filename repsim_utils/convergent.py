"""The convergent-learning chapter's pipeline (Li et al. 2016): matching statistics for every
pair of networks and every layer as tidy tables (one row per layer and pair), the claims the
chapter tests, and their verdicts, built on :mod:`matching`, :mod:`stats` and :mod:`verdicts`.

Pairs are every two trained networks and each trained network with its untrained baseline
(:func:`repsim_utils.pairs.pair_list`); intervals resample networks, not pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import matching, stats
from .pairs import TRAINED, UNTRAINED, layer_arrays, pair_arrays, pair_list, summarise
from .progress import track
from .verdicts import Claim, Reference, Rule, Verdict

Acts = dict[str, dict[str, np.ndarray]]


def _jobs(layers: Sequence[str], pairs: Sequence[tuple[str, str, str]], desc: str):
    jobs = [(layer, pair) for layer in layers for pair in pairs]
    return track(jobs, desc)


def match_table(acts: Acts, layers: Sequence[str],
                pairs: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """Per (layer, pair): units, dead units of each net, mean semi- and bipartite-matched
    correlation (dead and unmatched units count 0, as unmatched), the fraction of units for
    which both matchings agree (Li et al. 2016, Table 1), and the 10% and 90% quantiles of the
    per-unit semi-matched correlation."""
    rows = []
    for layer, (a, b, kind) in _jobs(layers, pairs, "matching"):
        corr = matching.correlation(acts[a][layer], acts[b][layer])
        semi, bip = matching.semi_match(corr), matching.bipartite_match(corr)
        rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                     "units": corr.shape[0], "dead_a": len(semi.dead_a),
                     "dead_b": len(semi.dead_b), "semi": semi.mean, "bipartite": bip.mean,
                     "same_partner": matching.same_partner_fraction(semi, bip),
                     "semi_q10": semi.quantile(0.1), "semi_q90": semi.quantile(0.9)})
    return pd.DataFrame(rows)


def mi_table(acts: Acts, layers: Sequence[str], pairs: Sequence[tuple[str, str, str]],
             n_bins: int = 10, k: int = 8) -> pd.DataFrame:
    """Per (layer, pair): the share of the ``k`` best semi-matched pairs of units under mutual
    information that are also among the ``k`` best under correlation (paper: 7 of 8 in
    conv1)."""
    rows = []
    for layer, (a, b, kind) in _jobs(layers, pairs, "mutual information"):
        corr = matching.correlation(acts[a][layer], acts[b][layer])
        mi = matching.mutual_information(acts[a][layer], acts[b][layer], n_bins=n_bins)
        top_c, top_mi = matching.top_pairs(corr, k), matching.top_pairs(mi, k)
        rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind, "k": len(top_c),
                     "mi_top_overlap": len(set(top_c) & set(top_mi)) / max(len(top_c), 1)})
    return pd.DataFrame(rows)


def sparse_table(acts: Acts, layers: Sequence[str], pairs: Sequence[tuple[str, str, str]],
                 alphas: Sequence[float], few: float, n_targets: int | None = 16,
                 max_samples: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Per (layer, pair): few-to-one prediction of net b's units from all of net a's
    (:func:`matching.sparse_prediction`): the dense least-squares error, the best error with at
    most ``few`` weights per unit, and their difference ``few_gap``; also the error and weights
    used at every penalty (columns ``error_<k>``, ``nonzero_<k>``, k indexing ``alphas``)."""
    rows = []
    for layer, (a, b, kind) in _jobs(layers, pairs, "sparse prediction"):
        xa, xb = acts[a][layer], acts[b][layer]
        if len(xa) > max_samples:
            keep = np.random.default_rng(seed).choice(len(xa), max_samples, replace=False)
            xa, xb = xa[keep], xb[keep]
        sp = matching.sparse_prediction(xa, xb, alphas, seed=seed, n_targets=n_targets)
        few_error = sp.error_with_at_most(few)
        rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                     "dense_error": sp.dense_error, "few_error": few_error,
                     "few_gap": few_error - sp.dense_error}
                    | {f"error_{i}": e for i, e in enumerate(sp.error)}
                    | {f"nonzero_{i}": z for i, z in enumerate(sp.nonzero)})
    return pd.DataFrame(rows)


def cluster_table(acts: Acts, layers: Sequence[str], pairs: Sequence[tuple[str, str, str]],
                  n_clusters: int, seed: int = 0) -> pd.DataFrame:
    """Per (layer, pair): the share of spectral clusters of the joint correlation matrix that
    hold units of both networks, and the same with net b's samples shuffled (the null: no
    shared structure, same marginals)."""
    rows = []
    for layer, (a, b, kind) in _jobs(layers, pairs, "clusters"):
        xa, xb = acts[a][layer], acts[b][layer]
        rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                     "shared": joint_clusters(xa, xb, n_clusters, seed)[0],
                     "shared_null": joint_clusters(xa, stats.shuffled(xb, seed), n_clusters,
                                                   seed)[0]})
    return pd.DataFrame(rows)


def joint_clusters(xa: np.ndarray, xb: np.ndarray, n_clusters: int, seed: int = 0
                   ) -> tuple[float, np.ndarray, np.ndarray, int]:
    """(shared fraction, labels, joint correlation of the alive units, alive units of a) of
    the spectral clustering of both networks' units together."""
    joint = np.hstack([xa, xb])
    keep = np.setdiff1d(np.arange(joint.shape[1]), matching.dead_units(joint))
    jc = matching.correlation(joint[:, keep])
    n_a = int(np.sum(keep < xa.shape[1]))
    labels = matching.cluster_units(jc, n_clusters=min(n_clusters, len(keep) - 1), seed=seed)
    return matching.shared_cluster_fraction(labels, n_a), labels, jc, n_a


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "li2016convergent"

CLAIMS = {c.id: c for c in [
    Claim("reliable_units", PAPER,
          "Some units are learnt reliably by all networks, others are not",
          "spread of per-unit semi-matched correlation (90% minus 10% quantile), trained vs "
          "trained minus trained vs untrained, weakest layer", Rule("above", 0.0)),
    Claim("semi_above_bipartite", PAPER, "Semi-matching scores above bipartite matching",
          "mean semi minus mean bipartite matched correlation, trained vs trained, weakest "
          "layer", Rule("above", 0.0)),
    Claim("matching_falls_with_depth", PAPER,
          "Matching quality falls from the first layer to deeper layers",
          "mean semi-matched correlation, last minus first hidden layer, trained vs trained",
          Rule("below", 0.0)),
    Claim("few_to_one", PAPER,
          "A few units of one network predict a unit of another about as well as all of them",
          "held-out normalised error with at most `few` weights per unit minus the dense error, "
          "trained vs trained, worst layer", Rule("below", 0.1)),
    Claim("many_to_many", PAPER,
          "Shared low-dimensional subspaces exist beyond one-to-one matches",
          "share of joint clusters holding units of both networks, trained vs trained minus "
          "trained vs untrained, weakest layer", Rule("above", 0.0)),
    Claim("mi_agrees_with_correlation", PAPER,
          "Mutual-information matching agrees with correlation matching on the best pairs",
          "share of the 8 best pairs of the first layer that are the same under MI and "
          "correlation, trained vs trained", Rule("above", 0.5)),
    Claim("trained_match_more", "study",
          "Trained networks match each other more than they match an untrained network",
          "mean semi-matched correlation, trained vs trained minus trained vs untrained, "
          "weakest layer", Rule("above", 0.0)),
]}


def verdicts(matches: pd.DataFrame, sparse: pd.DataFrame, clusters: pd.DataFrame,
             mi: pd.DataFrame, layers: Sequence[str], n: int, **kwargs) -> list[Verdict]:
    """The chapter's verdicts from its tables (see :data:`CLAIMS`). "Weakest layer" statistics
    are the minimum over layers inside every resample, so the interval is that of the minimum;
    "worst layer" the maximum of an error."""
    layers = list(layers)
    low, high = stats.weakest, stats.strongest

    def ref(name, values, pairs, reduce=stats.identity):
        return Reference.of(name, stats.over_networks(values, n, pairs, reduce, **kwargs))

    out = []
    spread = matches.assign(spread=matches.semi_q90 - matches.semi_q10)
    tt, tu = layer_arrays(spread, "spread", layers, n)
    spread_tt = stats.over_networks(tt, n, True, low, **kwargs)
    out.append(CLAIMS["reliable_units"].judge(
        stats.effect_over_networks(tt, tu, n, low, **kwargs),
        ref("spread, trained vs untrained", tu, False, low),
        note=f"Spread, trained vs trained: {spread_tt.value:.3g} [{spread_tt.low:.3g}, "
             f"{spread_tt.high:.3g}]."))

    diff = matches.assign(diff=matches.semi - matches.bipartite)
    tt, tu = layer_arrays(diff, "diff", layers, n)
    out.append(CLAIMS["semi_above_bipartite"].judge(
        stats.over_networks(tt, n, True, low, **kwargs),
        ref("trained vs untrained", tu, False, low),
        note="Semi-matching can never score below bipartite matching (each unit takes its "
             "best partner); the test is whether the difference is more than rounding."))

    tt, tu = layer_arrays(matches, "semi", layers, n)
    if len(layers) >= 2:
        out.append(CLAIMS["matching_falls_with_depth"].judge(
            stats.over_networks(tt[-1] - tt[0], n, True, **kwargs),
            ref("trained vs untrained", tu[-1] - tu[0], False)))
    out.append(CLAIMS["trained_match_more"].judge(
        stats.effect_over_networks(tt, tu, n, low, **kwargs),
        ref("trained vs untrained (weakest layer)", tu, False, low)))

    tt, tu = layer_arrays(sparse, "few_gap", layers, n)
    out.append(CLAIMS["few_to_one"].judge(
        stats.over_networks(tt, n, True, high, **kwargs),
        ref("predicting an untrained network", tu, False, high)))

    tt, tu = layer_arrays(clusters, "shared", layers, n)
    null_tt, _ = layer_arrays(clusters, "shared_null", layers, n)
    out.append(CLAIMS["many_to_many"].judge(
        stats.effect_over_networks(tt, tu, n, low, **kwargs),
        ref("trained vs untrained share", tu, False, low),
        ref("samples of net b shuffled", null_tt, True, low)))

    tt, tu = pair_arrays(mi[mi.layer == layers[0]], "mi_top_overlap", n)
    out.append(CLAIMS["mi_agrees_with_correlation"].judge(
        stats.over_networks(tt, n, True, **kwargs), ref("trained vs untrained", tu, False)))
    return out


#: Li et al. (2016), Table 1: AlexNet on ImageNet, Net1 vs Net2, mean matched correlation.
PAPER_TABLE = pd.DataFrame({
    "layer": ["conv1", "conv2", "conv3", "conv4", "conv5"],
    "units": [96, 256, 384, 384, 256],
    "semi": [0.703, 0.556, 0.478, 0.369, 0.416],
    "bipartite": [0.663, 0.507, 0.446, 0.342, 0.385],
    "same_partner": [0.729, 0.578, 0.617, 0.581, 0.645],
})

__all__ = ["CLAIMS", "PAPER_TABLE", "TRAINED", "UNTRAINED", "cluster_table", "joint_clusters",
           "match_table", "mi_table", "pair_list", "sparse_table", "summarise", "verdicts"]
