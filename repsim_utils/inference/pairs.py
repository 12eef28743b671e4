"""Pairs of networks, as every chapter that compares networks names them.

Trained networks are ``t0 .. t{n-1}`` (one per seed), their untrained baselines ``u0 ..
u{n-1}`` (seed + 1000). A pair table has one row per pair and columns ``net_a``, ``net_b`` and
``kind`` (:data:`TRAINED` or :data:`UNTRAINED`); :func:`pair_arrays` turns one of its columns
into the (n, n) and (n,) arrays that :mod:`repsim_utils.inference.stats` resamples over networks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from repsim_utils.base.progress import track
from repsim_utils.inference import stats

TRAINED = "trained vs trained"
UNTRAINED = "trained vs untrained"


def pair_list(n_trained: int) -> list[tuple[str, str, str]]:
    """All pairs of trained nets ``t{i}``, and each trained net with its untrained baseline
    ``u{i}``: (net_a, net_b, kind)."""
    pairs = [(f"t{i}", f"t{j}", TRAINED) for i, j in trained_pairs(n_trained)]
    pairs += [(f"t{i}", f"u{i}", UNTRAINED) for i in range(n_trained)]
    return pairs


def trained_pairs(n_trained: int) -> list[tuple[int, int]]:
    """Every unordered pair (i, j), i < j, of ``n_trained`` trained networks."""
    return [(i, j) for i in range(n_trained) for j in range(i + 1, n_trained)]


Pair = tuple[str, str, str]


def pair_table(layers: Sequence[str], pairs: Sequence[Pair],
               row: Callable[[str, str, str], Mapping[str, Any] | None], desc: str
               ) -> pd.DataFrame:
    """The (layer, pair) table every pairwise lens builds: one row per layer and pair, with
    ``layer``, ``net_a``, ``net_b``, ``kind`` and the columns ``row(layer, net_a, net_b)``
    returns (``None``: no row for that pair), with a progress bar labelled ``desc``."""
    rows = []
    for layer, (a, b, kind) in track([(la, p) for la in layers for p in pairs], desc):
        values = row(layer, a, b)
        if values is not None:
            rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind, **values})
    return pd.DataFrame(rows)


def identification_credit(forth: np.ndarray, back: np.ndarray, atol: float = 1e-12) -> float:
    """Layer identification (Kornblith et al. 2019) between two networks: ``forth[k, l]`` is the
    similarity of layer k of the first to layer l of the second, ``back`` the same from the
    second. Each layer k of either network earns 1 when its most similar layer of the other is
    k, 1/m when k ties (within ``atol``) with m - 1 others, else 0; returns the mean credit over
    both directions (chance: 1 / layers)."""
    credit = []
    for sim in (np.asarray(forth), np.asarray(back)):
        if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(f"expected a square (layers, layers) matrix, got shape {sim.shape}")
        for k in range(len(sim)):
            best = np.flatnonzero(np.isclose(sim[k], np.nanmax(sim[k]), rtol=0, atol=atol))
            credit.append(1 / len(best) if k in best else 0.0)
    return float(np.mean(credit))


def _index(name: str, prefix: str) -> int:
    if not name.startswith(prefix) or not name[1:].isdigit():
        raise ValueError(f"expected a network named {prefix}<i>, got {name!r}")
    return int(name[1:])


def trained_matrix(table: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """tt of ``column`` from the trained-vs-trained rows alone (see :func:`pair_arrays`)."""
    tt = np.full((n, n), np.nan)
    for a, b, value in table[table.kind == TRAINED][["net_a", "net_b", column]].itertuples(
            index=False):
        i, j = _index(a, "t"), _index(b, "t")
        tt[i, j] = tt[j, i] = value
    if np.isnan(tt[~np.eye(n, dtype=bool)]).any():
        raise ValueError(f"column {column!r}: some pairs of the {n} trained networks are "
                         f"missing")
    return tt


def pair_arrays(table: pd.DataFrame, column: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(tt, tu) of ``column``: tt[i, j] between trained nets i and j (symmetric, NaN diagonal),
    tu[i] between trained net i and its untrained baseline. Every pair must be present once."""
    tt = np.full((n, n), np.nan)
    tu = np.full(n, np.nan)
    seen = set()
    for a, b, kind, value in table[["net_a", "net_b", "kind", column]].itertuples(index=False):
        key = (a, b)
        if key in seen:
            raise ValueError(f"pair {a}-{b} appears twice in the table")
        seen.add(key)
        i = _index(a, "t")
        if kind == TRAINED:
            j = _index(b, "t")
            tt[i, j] = tt[j, i] = value
        elif kind == UNTRAINED:
            tu[i] = value
        else:
            raise ValueError(f"unknown kind of pair {kind!r}")
    off = ~np.eye(n, dtype=bool)
    if np.isnan(tt[off]).any() or np.isnan(tu).any():
        raise ValueError(f"column {column!r}: some pairs of the {n} networks are missing")
    return tt, tu


def layer_arrays(table: pd.DataFrame, column: str, layers: list[str] | tuple[str, ...], n: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pair_arrays` of every layer stacked: tt (layers, n, n) and tu (layers, n)."""
    pa = [pair_arrays(table[table.layer == layer], column, n) for layer in layers]
    return np.stack([p[0] for p in pa]), np.stack([p[1] for p in pa])


def summarise(table: pd.DataFrame, columns: Sequence[str], n: int, **kwargs) -> pd.DataFrame:
    """Per layer and statistic: trained-vs-trained and trained-vs-untrained means, the effect
    (their difference), each with a 95% interval over networks, and the sign-flip p-value."""
    rows = []
    for layer, d in table.groupby("layer", sort=False):
        for col in columns:
            c = stats.compare(*pair_arrays(d, col, n), **kwargs)
            rows.append({"layer": layer, "statistic": col,
                         "trained": c.trained.value, "trained_low": c.trained.low,
                         "trained_high": c.trained.high, "untrained": c.untrained.value,
                         "untrained_low": c.untrained.low, "untrained_high": c.untrained.high,
                         "effect": c.effect.value, "effect_low": c.effect.low,
                         "effect_high": c.effect.high, "p_value": c.p_value})
    return pd.DataFrame(rows)


__all__ = ["TRAINED", "UNTRAINED", "identification_credit", "layer_arrays", "pair_arrays",
           "pair_list", "pair_table", "summarise", "trained_matrix", "trained_pairs"]
