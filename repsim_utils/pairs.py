"""Pairs of networks, as every chapter that compares networks names them.

Trained networks are ``t0 .. t{n-1}`` (one per seed), their untrained baselines ``u0 ..
u{n-1}`` (seed + 1000). A pair table has one row per pair and columns ``net_a``, ``net_b`` and
``kind`` (:data:`TRAINED` or :data:`UNTRAINED`); :func:`pair_arrays` turns one of its columns
into the (n, n) and (n,) arrays that :mod:`repsim_utils.stats` resamples over networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import stats

TRAINED = "trained vs trained"
UNTRAINED = "trained vs untrained"


def pair_list(n_trained: int) -> list[tuple[str, str, str]]:
    """All pairs of trained nets ``t{i}``, and each trained net with its untrained baseline
    ``u{i}``: (net_a, net_b, kind)."""
    pairs = [(f"t{i}", f"t{j}", TRAINED) for i in range(n_trained)
             for j in range(i + 1, n_trained)]
    pairs += [(f"t{i}", f"u{i}", UNTRAINED) for i in range(n_trained)]
    return pairs


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


__all__ = ["TRAINED", "UNTRAINED", "layer_arrays", "pair_arrays", "pair_list", "summarise",
           "trained_matrix"]
