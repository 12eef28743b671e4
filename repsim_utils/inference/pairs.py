"""Pairs of networks, as every chapter that compares networks names them.

Trained networks are ``t0 .. t{n-1}`` (one per seed), untrained ones ``u0 .. u{n-1}``
(independent initialisations, seed + 1000, never a trained network's own). Every lens compares
three kinds of pairs (:func:`pair_list`):

- :data:`TRAINED` (tt): every two trained networks;
- :data:`BOTH_UNTRAINED` (uu): every two untrained networks, the architecture's prior: what
  two networks share before any learning;
- :data:`UNTRAINED` (tu): trained network i with untrained network i;
- with ``null=True``, :data:`NULL`: trained network i with trained network i + 1 (mod n) whose
  samples are shuffled (``s{i+1}``, :func:`shuffled_acts`): what the statistic scores when no
  sample of one network corresponds to a sample of the other.

A pair table has one row per pair and columns ``net_a``, ``net_b`` and ``kind``;
:func:`pair_arrays` turns one of its columns into the (n, n), (n,) and (n, n) arrays that
:mod:`repsim_utils.inference.stats` resamples over networks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from repsim_utils.base.progress import track
from repsim_utils.inference import stats

TRAINED = "trained vs trained"
UNTRAINED = "trained vs untrained"
BOTH_UNTRAINED = "untrained vs untrained"
NULL = "null: samples shuffled"
KINDS = (TRAINED, UNTRAINED, BOTH_UNTRAINED, NULL)


def pair_list(n_trained: int, null: bool = False) -> list[tuple[str, str, str]]:
    """All pairs of trained nets ``t{i}``, each trained net with the untrained net ``u{i}``,
    all pairs of untrained nets, and with ``null`` each trained net i with the shuffled copy
    ``s{i+1 mod n}`` of the next: (net_a, net_b, kind)."""
    pairs = [(f"t{i}", f"t{j}", TRAINED) for i, j in trained_pairs(n_trained)]
    pairs += [(f"t{i}", f"u{i}", UNTRAINED) for i in range(n_trained)]
    pairs += [(f"u{i}", f"u{j}", BOTH_UNTRAINED) for i, j in trained_pairs(n_trained)]
    if null:
        pairs += [(f"t{i}", f"s{(i + 1) % n_trained}", NULL) for i in range(n_trained)]
    return pairs


class Shuffled(Mapping):
    """The layers of one network with its samples (rows) in one random order, the same for
    every layer; computed on access, so a null costs no memory."""

    def __init__(self, layers: Mapping[str, np.ndarray], seed: int) -> None:
        self._layers = layers
        self._seed = seed

    def __getitem__(self, layer: str) -> np.ndarray:
        a = self._layers[layer]
        return a[np.random.default_rng(self._seed).permutation(len(a))]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)


def shuffled_acts(acts: Mapping[str, Mapping[str, np.ndarray]], n: int, seed: int = 0
                  ) -> dict[str, Mapping[str, np.ndarray]]:
    """``acts`` with ``s{i}`` added for every trained network ``t{i}``: its samples shuffled
    (:class:`Shuffled`, seed ``seed + i``), the null partners of :func:`pair_list`."""
    return dict(acts) | {f"s{i}": Shuffled(acts[f"t{i}"], seed + i) for i in range(n)}


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


def identification_matrices(table: pd.DataFrame, n: int, column: str = "accuracy"
                            ) -> dict[str, np.ndarray]:
    """{kind: (n, n) symmetric matrix of ``column``} for every kind of pair in a table of
    pairwise layer-identification accuracies (columns ``net_a``, ``net_b``, ``kind``; NaN on the
    diagonal). Every pair of a kind that is present must be there."""
    out = {}
    for kind in (k for k in KINDS if (table.kind == k).any()):
        m = np.full((n, n), np.nan)
        for a, b, v in table[table.kind == kind][["net_a", "net_b", column]].itertuples(
                index=False):
            i, j = int(a[1:]), int(b[1:])
            m[i, j] = m[j, i] = v
        if np.isnan(m[~np.eye(n, dtype=bool)]).any():
            raise ValueError(f"layer identification: some {kind} pairs of the {n} networks are "
                             f"missing")
        out[kind] = m
    return out


@dataclass(frozen=True)
class Sides:
    """One statistic over networks: ``tt`` (..., n, n) between trained networks, ``tu`` (..., n)
    between trained network i and untrained network i, ``uu`` (..., n, n) between untrained
    networks (pair matrices symmetric, NaN on the diagonal), and ``null`` (..., n) between
    trained network i and the shuffled next one (None when the table has no null pairs).
    Unpacks as ``tt, tu, uu``."""

    tt: np.ndarray
    tu: np.ndarray
    uu: np.ndarray
    null: np.ndarray | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.tt, self.tu, self.uu))


def pair_arrays(table: pd.DataFrame, column: str, n: int) -> Sides:
    """(tt, tu, uu, null) of ``column`` (see :class:`Sides`). Every pair of the first three
    kinds must be present once; null pairs are optional, but all or none."""
    tt = np.full((n, n), np.nan)
    uu = np.full((n, n), np.nan)
    tu = np.full(n, np.nan)
    null = np.full(n, np.nan)
    seen = set()
    for a, b, kind, value in table[["net_a", "net_b", "kind", column]].itertuples(index=False):
        key = (a, b)
        if key in seen:
            raise ValueError(f"pair {a}-{b} appears twice in the table")
        seen.add(key)
        if kind == TRAINED:
            i, j = _index(a, "t"), _index(b, "t")
            tt[i, j] = tt[j, i] = value
        elif kind == UNTRAINED:
            tu[_index(a, "t")] = value
        elif kind == BOTH_UNTRAINED:
            i, j = _index(a, "u"), _index(b, "u")
            uu[i, j] = uu[j, i] = value
        elif kind == NULL:
            null[_index(a, "t")] = value
        else:
            raise ValueError(f"unknown kind of pair {kind!r}")
    off = ~np.eye(n, dtype=bool)
    has_null = not np.isnan(null).all()
    for name, values in (("trained", tt[off]), ("trained vs untrained", tu),
                         ("untrained", uu[off])) + ((("null", null),) if has_null else ()):
        if np.isnan(values).any():
            raise ValueError(f"column {column!r}: some {name} pairs of the {n} networks are "
                             f"missing")
    return Sides(tt, tu, uu, null if has_null else None)


def layer_arrays(table: pd.DataFrame, column: str, layers: list[str] | tuple[str, ...], n: int
                 ) -> Sides:
    """:func:`pair_arrays` of every layer stacked: tt (layers, n, n), tu (layers, n), uu
    (layers, n, n) and null (layers, n) or None."""
    pa = [pair_arrays(table[table.layer == layer], column, n) for layer in layers]
    nulls = [p.null for p in pa]
    if any(v is None for v in nulls) and not all(v is None for v in nulls):
        raise ValueError(f"column {column!r}: null pairs exist for some layers only")
    return Sides(np.stack([p.tt for p in pa]), np.stack([p.tu for p in pa]),
                 np.stack([p.uu for p in pa]), None if nulls[0] is None else np.stack(nulls))


def summarise(table: pd.DataFrame, columns: Sequence[str], n: int, **kwargs) -> pd.DataFrame:
    """Per layer and statistic: the means of the trained pairs (``trained``), of trained vs
    untrained (``untrained``) and of untrained pairs (``uu``), the effects tt - tu
    (``effect``) and tt - uu (``effect_uu``), each with a 95% interval over networks, and the
    sign-flip p-values of both effects (smallest attainable: ``stats.smallest_p(n)``); where the
    table has null pairs, their mean (``null``) too."""
    rows = []
    for layer, d in table.groupby("layer", sort=False):
        for col in columns:
            sides = pair_arrays(d, col, n)
            c = stats.compare(sides.tt, sides.tu, sides.uu, **kwargs)
            row = {"layer": layer, "statistic": col}
            for name, e in (("trained", c.trained), ("untrained", c.untrained),
                            ("uu", c.both_untrained), ("effect", c.effect),
                            ("effect_uu", c.effect_uu)):
                row |= {name: e.value, f"{name}_low": e.low, f"{name}_high": e.high}
            if sides.null is not None:
                e = stats.mean_over_networks(sides.null, **kwargs)
                row |= {"null": e.value, "null_low": e.low, "null_high": e.high}
            rows.append(row | {"p_value": c.p_value, "p_value_uu": c.p_value_uu})
    return pd.DataFrame(rows)


__all__ = ["BOTH_UNTRAINED", "KINDS", "NULL", "TRAINED", "UNTRAINED", "Shuffled", "Sides",
           "shuffled_acts", "identification_credit", "identification_matrices", "layer_arrays",
           "pair_arrays", "pair_list", "pair_table", "summarise", "trained_matrix", "trained_pairs"]
