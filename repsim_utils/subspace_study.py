"""The subspace-match chapter's pipeline (Wang et al. 2018): maximum-match similarity over an
eps grid and simple-match sizes, for every pair of networks and every layer, as tidy tables
(one row per layer, pair, variant and eps), built on :mod:`repsim_utils.subspace`.

Conv layers: one channel is one neuron, its vector runs over inputs x positions; like the paper,
``n_coords`` of those coordinates are drawn at random ``n_draws`` times (fixed seed) and the
similarity is averaged over draws. Layers with no more rows than ``n_coords`` use all rows.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from .subspace import SubspaceMatcher, coordinate_draws
from .training import progress_enabled

#: The paper's eps grid (Wang et al. 2018, Section 5).
PAPER_EPS = (0.15, 0.2, 0.25, 0.3, 0.5)
RAW = "raw"
CENTRED = "centred (extension)"


def check_eps(values: Sequence[float], name: str = "eps") -> None:
    """Refuse eps values outside [0, 1) before any work starts."""
    bad = [e for e in values if not 0 <= e < 1]
    if bad:
        raise ValueError(f"{name} values must lie in [0, 1); got {bad}")


def matchers(a: np.ndarray, b: np.ndarray, center: bool, n_coords: int, n_draws: int,
             seed: int = 0) -> list[SubspaceMatcher]:
    """One :class:`SubspaceMatcher` per coordinate draw of the layer pair (a, b)."""
    return [SubspaceMatcher(a[rows], b[rows], center=center)
            for rows in coordinate_draws(len(a), n_coords, n_draws, seed)]


def mms_table(acts: dict[str, dict[str, np.ndarray]], layers: Sequence[str],
              pairs: Sequence[tuple[str, str, str]], eps: Sequence[float],
              center: Sequence[bool] = (False, True), n_coords: int = 10_000,
              n_draws: int = 16, seed: int = 0) -> pd.DataFrame:
    """Per (layer, pair, variant, eps): MMS averaged over coordinate draws, and per (layer,
    pair, variant) the smallest eps of a full match (``full_eps``, averaged likewise)."""
    check_eps(eps)
    rows = []
    jobs = [(layer, pair, c) for layer in layers for pair in pairs for c in center]
    for layer, (a, b, kind), c in tqdm(jobs, desc="maximum matches", file=sys.stderr,
                                       disable=not progress_enabled()):
        ms = matchers(acts[a][layer], acts[b][layer], c, n_coords, n_draws, seed)
        mms = np.mean([m.similarity(eps) for m in ms], axis=0)
        full = float(np.mean([m.smallest_full_eps() for m in ms]))
        for e, value in zip(eps, mms, strict=True):
            rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                         "variant": CENTRED if c else RAW, "eps": float(e), "mms": float(value),
                         "full_eps": full, "samples": min(len(acts[a][layer]), n_coords),
                         "draws": len(ms)})
    return pd.DataFrame(rows)


def simple_match_table(acts: dict[str, dict[str, np.ndarray]], layers: Sequence[str],
                       pair: tuple[str, str], eps: float, n_units: int, n_orders: int,
                       n_coords: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Sizes |X'| + |Y'| of v-minimal matches (Wang et al. 2018, Algorithm 2) of one pair of
    networks: per layer, ``n_units`` neurons drawn at random from each side of the maximum
    match, each with ``n_orders`` random deletion orders (first coordinate draw only).
    Neurons outside the maximum match have no simple match and are not drawn."""
    check_eps([eps])
    a, b = pair
    rng = np.random.default_rng(seed)
    rows = []
    for layer in tqdm(layers, desc="simple matches", file=sys.stderr,
                      disable=not progress_enabled()):
        m = matchers(acts[a][layer], acts[b][layer], False, n_coords, 1, seed)[0]
        mm = m.maximum_match(eps)
        units = [("x", int(u)) for u in rng.permutation(mm.x)[:n_units]]
        units += [("y", int(u)) for u in rng.permutation(mm.y)[:n_units]]
        for side, unit in units:
            for order in range(n_orders):
                match = m.minimal_match(eps, unit, side, seed=int(rng.integers(2**31)))
                rows.append({"layer": layer, "side": side, "unit": unit, "order": order,
                             "size": match.size, "size_x": len(match.x),
                             "size_y": len(match.y), "layer_units": m.n_x + m.n_y,
                             "max_match_size": mm.size})
    return pd.DataFrame(rows, columns=["layer", "side", "unit", "order", "size", "size_x",
                                       "size_y", "layer_units", "max_match_size"])


def mms_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of MMS over pairs, per layer, kind, variant and eps."""
    out = (table.groupby(["layer", "kind", "variant", "eps"], sort=False)["mms"]
           .agg(["mean", "std", "size"]).rename(columns={"size": "pairs"}))
    return out.reset_index()
