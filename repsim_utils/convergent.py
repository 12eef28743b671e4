"""The convergent-learning chapter's pipeline: matching statistics for every pair of networks
and every layer, as one tidy table (one row per layer and pair), built on ``matching``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import matching

TRAINED = "trained vs trained"
UNTRAINED = "trained vs untrained"


def pair_list(n_trained: int) -> list[tuple[str, str, str]]:
    """All pairs of trained nets ``t{i}``, and each trained net with its untrained baseline
    ``u{i}``: (net_a, net_b, kind)."""
    pairs = [(f"t{i}", f"t{j}", TRAINED) for i in range(n_trained)
             for j in range(i + 1, n_trained)]
    pairs += [(f"t{i}", f"u{i}", UNTRAINED) for i in range(n_trained)]
    return pairs


def match_table(acts: dict[str, dict[str, np.ndarray]], layers: Sequence[str],
                pairs: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """Per (layer, pair): units, dead units, mean semi- and bipartite-matched correlation, and
    the fraction of units for which both matchings agree (Li et al. 2016, Table 1)."""
    rows = []
    for layer in layers:
        for a, b, kind in pairs:
            corr = matching.correlation(acts[a][layer], acts[b][layer])
            semi, bip = matching.semi_match(corr), matching.bipartite_match(corr)
            rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                         "units": corr.shape[0], "dead_a": len(semi.dead_a),
                         "dead_b": len(semi.dead_b), "semi": semi.mean, "bipartite": bip.mean,
                         "same_partner": matching.same_partner_fraction(semi, bip)})
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over pairs, per layer and kind of pair."""
    stats = table.groupby(["layer", "kind"], sort=False)[["semi", "bipartite", "same_partner"]]
    out = stats.agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["pairs"] = table.groupby(["layer", "kind"], sort=False).size()
    return out.reset_index()


#: Li et al. (2016), Table 1: AlexNet on ImageNet, Net1 vs Net2, mean matched correlation.
PAPER_TABLE = pd.DataFrame({
    "layer": ["conv1", "conv2", "conv3", "conv4", "conv5"],
    "units": [96, 256, 384, 384, 256],
    "semi": [0.703, 0.556, 0.478, 0.369, 0.416],
    "bipartite": [0.663, 0.507, 0.446, 0.342, 0.385],
    "same_partner": [0.729, 0.578, 0.617, 0.581, 0.645],
})
