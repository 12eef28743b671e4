"""The subspace-match chapter's pipeline (Wang et al. 2018): maximum-match similarity over an
eps grid, the eps at which half of both layers match (``eps50``, a threshold that always
exists), and simple-match sizes, for every pair of networks and every layer, as tidy tables;
the claims the chapter tests and their verdicts. Built on :mod:`repsim_utils.science.subspace`,
:mod:`repsim_utils.inference.stats` and :mod:`repsim_utils.inference.verdicts`.

Conv layers: one channel is one neuron, its vector runs over inputs x positions; like the paper,
``n_coords`` of those coordinates are drawn at random ``n_draws`` times (fixed seed) and the
similarity is averaged over draws. Layers with no more rows than ``n_coords`` use all rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from repsim_utils.base.progress import track
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import layer_arrays, summarise
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict, training_verdict
from repsim_utils.nets.recipes import Networks
from repsim_utils.science.prepared import check_device
from repsim_utils.science.subspace import SubspaceMatcher, coordinate_draws

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The paper's eps grid (Wang et al. 2018, Section 5).
PAPER_EPS = (0.15, 0.2, 0.25, 0.3, 0.5)
RAW = "raw"
CENTRED = "centred (extension)"
#: Bisection tolerance of eps50.
EPS_TOL = 1e-3
#: Conv layers keep at most this many (input, position) rows (a uniform random subset, chosen
#: while the activations stream through, :func:`repsim_utils.nets.activations.activations`), or as
#: many as the coordinate draws can use if that is more: the paper profile's 2,000 CIFAR-10
#: images x all positions would otherwise hold 2 million rows per layer and network.
ROW_BUDGET = 200_000


def rows_kept(n_coords: int, n_draws: int) -> int:
    """Rows a conv layer keeps: ``max(ROW_BUDGET, n_coords * n_draws)``. Each coordinate draw
    is then a uniform subset of a uniform subset of all rows: still uniform over all rows."""
    return max(ROW_BUDGET, n_coords * n_draws)


def eps_half(m: SubspaceMatcher, tol: float = EPS_TOL) -> float:
    """eps50: the smallest eps (within ``tol``) at which the maximum match holds at least half
    of both layers' neurons (MMS >= 0.5), dead neurons counted in the denominator. 1.0 when
    more than half of the neurons are dead, so that no eps < 1 can reach it."""
    size = math.ceil(0.5 * (m.n_x + m.n_y))
    if size > len(m.alive_x) + len(m.alive_y):
        return 1.0
    return m.smallest_eps_for_size(size, tol=tol)


def mean_share(z: np.ndarray) -> float:
    """Mean over units of the share of a unit's squared norm carried by its mean over samples,
    n mean^2 / ||z||^2 (1: a constant vector; 0: zero mean). Dead units are left out."""
    z = np.asarray(z, dtype=np.float64)
    norm2 = (z * z).sum(0)
    alive = norm2 > 0
    return float((len(z) * z.mean(0)[alive] ** 2 / norm2[alive]).mean())


def check_eps(values: Sequence[float], name: str = "eps") -> None:
    """Refuse eps values outside [0, 1) before any work starts."""
    bad = [e for e in values if not 0 <= e < 1]
    if bad:
        raise ValueError(f"{name} values must lie in [0, 1); got {bad}")


def matchers(a: np.ndarray, b: np.ndarray, center: bool, n_coords: int, n_draws: int,
             seed: int = 0, device: str | None = None) -> list[SubspaceMatcher]:
    """One :class:`SubspaceMatcher` per coordinate draw of the layer pair (a, b), each
    factorised on ``device`` (None: NumPy)."""
    return [SubspaceMatcher(a[rows], b[rows], center=center, device=device)
            for rows in coordinate_draws(len(a), n_coords, n_draws, seed)]


def mms_table(acts: dict[str, dict[str, np.ndarray]], layers: Sequence[str],
              pairs: Sequence[tuple[str, str, str]], eps: Sequence[float],
              center: Sequence[bool] = (False, True), n_coords: int = 10_000,
              n_draws: int = 16, seed: int = 0, device: str | None = None) -> pd.DataFrame:
    """Per (layer, pair, variant, eps): MMS averaged over coordinate draws, and per (layer,
    pair, variant) the smallest eps of a full match (``full_eps``) and of a half match
    (``eps50``, :func:`eps_half`), averaged likewise. ``device``: see :func:`matchers`."""
    check_eps(eps)
    check_device(device)
    rows = []
    jobs = [(layer, pair, c) for layer in layers for pair in pairs for c in center]
    for layer, (a, b, kind), c in track(jobs, "maximum matches"):
        ms = matchers(acts[a][layer], acts[b][layer], c, n_coords, n_draws, seed, device)
        mms = np.mean([m.similarity(eps) for m in ms], axis=0)
        full = float(np.mean([m.smallest_full_eps() for m in ms]))
        half = float(np.mean([eps_half(m) for m in ms]))
        for e, value in zip(eps, mms, strict=True):
            rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                         "variant": CENTRED if c else RAW, "eps": float(e), "mms": float(value),
                         "full_eps": full, "eps50": half,
                         "samples": min(len(acts[a][layer]), n_coords), "draws": len(ms)})
    return pd.DataFrame(rows)


def simple_match_table(acts: dict[str, dict[str, np.ndarray]], layers: Sequence[str],
                       pairs: Sequence[tuple[str, str, str]], eps: float | None, n_units: int,
                       n_orders: int, n_coords: int = 10_000, seed: int = 0,
                       device: str | None = None) -> pd.DataFrame:
    """Sizes |X'| + |Y'| of v-minimal matches (Wang et al. 2018, Algorithm 2) for every pair:
    per layer, ``n_units`` neurons drawn at random from each side of the maximum match, each
    with ``n_orders`` random deletion orders (raw activations, first coordinate draw). ``eps``
    None searches each pair at its own eps50, where a maximum match always exists. Neurons
    outside the maximum match have no simple match and are not drawn; ``fraction`` is the size
    over the layer pair's neurons. ``device``: see :func:`matchers`."""
    if eps is not None:
        check_eps([eps])
    check_device(device)
    rng = np.random.default_rng(seed)
    rows = []
    jobs = [(layer, pair) for layer in layers for pair in pairs]
    for layer, (a, b, kind) in track(jobs, "simple matches"):
        m = matchers(acts[a][layer], acts[b][layer], False, n_coords, 1, seed, device)[0]
        e = eps_half(m) if eps is None else eps
        if e >= 1:  # more than half the neurons dead: no eps < 1 reaches a half match
            continue
        mm = m.maximum_match(e)
        # indices drawn, not the kept (read-only) match shuffled: NumPy 2.4 refuses to shuffle
        # an empty read-only array; the draw is the same as rng.permutation(mm.x)
        units = [("x", int(u)) for u in mm.x[rng.permutation(len(mm.x))][:n_units]]
        units += [("y", int(u)) for u in mm.y[rng.permutation(len(mm.y))][:n_units]]
        for side, unit in units:
            for order in range(n_orders):
                match = m.minimal_match(e, unit, side, seed=int(rng.integers(2**31)))
                rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind, "eps": e,
                             "side": side, "unit": unit, "order": order, "size": match.size,
                             "fraction": match.size / (m.n_x + m.n_y),
                             "layer_units": m.n_x + m.n_y, "max_match_size": mm.size})
    return pd.DataFrame(rows, columns=["layer", "net_a", "net_b", "kind", "eps", "side", "unit",
                                       "order", "size", "fraction", "layer_units",
                                       "max_match_size"])


def per_pair(table: pd.DataFrame, column: str, how: str = "first") -> pd.DataFrame:
    """One row per (layer, pair) of a longer table, ``column`` reduced by ``how``."""
    return (table.groupby(["layer", "net_a", "net_b", "kind"], sort=False)[column].agg(how)
            .reset_index())


def mms_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean MMS over pairs and the number of pairs, per layer, kind, variant and eps (for the
    heatmap; intervals over networks are those of the thresholds, :func:`pairs.summarise`)."""
    out = (table.groupby(["layer", "kind", "variant", "eps"], sort=False)["mms"]
           .agg(["mean", "size"]).rename(columns={"size": "pairs"}))
    return out.reset_index()


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "wang2018towards"

#: The fixed eps of every simple-match search, the same for every pair, chosen before the
#: runs: the middle of the range (0.6-0.8) where the first build's MMS changed.
SIMPLE_EPS = 0.7

CLAIMS = {c.id: c for c in [
    Claim("small_match_at_moderate_eps", PAPER,
          "At moderate eps the maximum match covers a small fraction of neurons",
          "eps50 (the smallest eps at which half of both layers match), trained vs trained, "
          f"raw, smallest over layers; the paper's largest eps is {max(PAPER_EPS):g}",
          Rule("above", max(PAPER_EPS))),
    Claim("mms_rises_with_eps", PAPER, "MMS rises with eps",
          "MMS at eps 0.5 minus MMS at eps 0.15, trained vs trained, raw, smallest over layers",
          Rule("above", 0.0), kind="sanity"),
    Claim("ends_match_more", PAPER,
          "MMS is higher near the input and the output than in the middle layers",
          "eps50 of the middle layers minus eps50 of the first and last (a lower eps50 is a "
          "closer match), trained pairs minus the same contrast of untrained pairs, raw",
          Rule("above", 0.0)),
    Claim("simple_matches_small", PAPER, "Simple matches are mostly small",
          f"median simple-match size as a fraction of the layer pair's neurons, at eps = "
          f"{SIMPLE_EPS:g} for every pair, trained vs trained, largest over layers",
          Rule("below", 0.1), own_threshold=True),
    Claim("trained_match_more", "study",
          "Trained networks match each other more than two untrained networks do",
          "eps50 untrained pairs minus eps50 trained pairs, raw, smallest over layers",
          Rule("above", 0.0)),
]}


def verdicts(curves: pd.DataFrame, simple: pd.DataFrame, layers: Sequence[str], n: int,
             **kwargs) -> list[Verdict]:
    """The chapter's verdicts (see :data:`CLAIMS`) from the MMS table (raw rows at eps 0.15,
    0.5 and :data:`SIMPLE_EPS` needed) and the simple-match table (searched at
    :data:`SIMPLE_EPS`)."""
    layers = list(layers)
    interval, low, high = stats.interval_over_networks, stats.weakest, stats.strongest
    raw = curves[curves.variant == RAW]

    def at(e: float) -> pd.DataFrame:
        sel = raw[np.isclose(raw.eps, e)]
        if sel.empty:
            raise ValueError(f"the MMS table has no rows at eps = {e}")
        return sel

    def ref(name, values, pairs, reduce=stats.identity):
        return Reference.of(name, stats.over_networks(values, n, pairs, reduce, **kwargs))

    out = []
    half = per_pair(raw, "eps50")
    sides = layer_arrays(half, "eps50", layers, n)
    tt, tu, uu = sides
    out.append(CLAIMS["small_match_at_moderate_eps"].judge(
        stats.over_networks(tt, n, True, low, **kwargs),
        ref("trained vs untrained", tu, False, low),
        None if sides.null is None else ref("samples of one network shuffled", sides.null,
                                            False, low),
        uu=ref("untrained vs untrained", uu, True, low)))

    hi, lo = layer_arrays(at(0.5), "mms", layers, n), layer_arrays(at(0.15), "mms", layers, n)
    out.append(CLAIMS["mms_rises_with_eps"].judge(
        interval(lambda i: low(stats.pair_mean(hi.tt - lo.tt, i)), n, **kwargs),
        ref("trained vs untrained", hi.tu - lo.tu, False, low),
        None if hi.null is None else ref("samples of one network shuffled", hi.null - lo.null,
                                         False, low),
        uu=ref("untrained vs untrained", hi.uu - lo.uu, True, low),
        note="MMS cannot fall as eps grows (a match at eps is a match at every larger eps)."))

    if len(layers) >= 3:
        def u_shape(v: np.ndarray) -> np.ndarray:  # (layers, ...) -> middle minus ends
            return v[1:-1].mean(axis=0) - (v[0] + v[-1]) / 2
        out.append(CLAIMS["ends_match_more"].judge(
            interval(lambda i: u_shape(stats.pair_mean(tt, i)) - u_shape(stats.pair_mean(uu, i)),
                     n, **kwargs),
            ref("contrast, trained vs untrained", u_shape(tu), False),
            None if sides.null is None else ref("contrast, samples of one network shuffled",
                                                u_shape(sides.null), False),
            uu=ref("contrast, untrained vs untrained", u_shape(uu), True),
            extra=(ref("contrast, trained vs trained", u_shape(tt), True),)))
    out.append(training_verdict(
        CLAIMS["trained_match_more"], sides, n, sign=-1.0, where="smallest eps50 over layers",
        reference_reduce=low,
        note="eps50 is the smallest eps at which half of both layers' neurons match (lower: "
             "closer)."))

    median = per_pair(simple, "fraction", "median")
    have = set(median.layer)
    n_pairs = n * (n - 1) + n  # tt and uu pairs, and tu
    full = [la for la in layers if la in have and len(median[median.layer == la]) == n_pairs]
    if full:
        tt, tu, uu = layer_arrays(median, "fraction", full, n)
        # the null bounds every simple match: none is larger than the maximum match
        mms_null = layer_arrays(at(SIMPLE_EPS), "mms", full, n).null
        out.append(CLAIMS["simple_matches_small"].judge(
            stats.over_networks(tt, n, True, high, **kwargs),
            ref("trained vs untrained", tu, False, high),
            None if mms_null is None else ref(
                f"null: MMS at eps = {SIMPLE_EPS:g} with one network's samples shuffled, the "
                f"largest simple match it allows (largest layer)", mms_null, False, high),
            uu=ref("untrained vs untrained", uu, True, high),
            note="" if len(full) == len(layers) else
            f"Layers where some pair has no maximum match at eps = {SIMPLE_EPS:g} are left "
            f"out: {sorted(set(layers) - set(full))}."))
    return out


# ---------------------------------------------------------------------------------------------
# what the page shows: tables, recorded numbers and figures


def shapes_table(nets: Networks, n_coords: int) -> pd.DataFrame:
    """Per layer: rows, neurons, rows per coordinate draw, and the mean share of the neurons'
    vectors (trained and untrained networks; :func:`mean_share`)."""
    acts, n = nets.acts, nets.n
    return pd.DataFrame([{
        "layer": layer, "rows (samples)": acts["t0"][layer].shape[0],
        "neurons": acts["t0"][layer].shape[1],
        "rows per draw": min(acts["t0"][layer].shape[0], n_coords),
        "mean share, trained": np.mean([mean_share(acts[f"t{i}"][layer]) for i in range(n)]),
        "mean share, untrained": np.mean([mean_share(acts[f"u{i}"][layer]) for i in range(n)])}
        for layer in nets.layers])


def shapes_warning(shapes: pd.DataFrame) -> str:
    """A warning when some layer has fewer than 5 rows per neuron of the pair; otherwise the
    fewest rows per neuron, so the page always says which case it is."""
    fewest = float((shapes["rows per draw"] / (2 * shapes["neurons"])).min())
    if fewest < 5:
        return (f"**Warning:** some layer has fewer than 5 rows per neuron of the pair (fewest: "
                f"{fewest:.3g}); spans are then large by chance and MMS is inflated.")
    return f"Every layer has at least 5 rows per neuron of the pair (fewest: {fewest:.3g})."


def curve_grid(curve_points: int, eps_grid: Sequence[float]) -> np.ndarray:
    """One eps grid for the curves, the paper's values and the claims' eps, the simple matches'
    included (each layer pair is factorised once for all of them)."""
    return np.union1d(np.linspace(0, 0.99, curve_points),
                      list(eps_grid) + [0.15, 0.5, SIMPLE_EPS])


def mms_curves(curves: pd.DataFrame) -> Figure:
    """MMS against eps per layer (columns), mean over pairs, raw and centred (rows)."""
    import seaborn as sns

    g = sns.relplot(curves, x="eps", y="mms", hue="kind", col="layer", row="variant",
                    kind="line", errorbar=None, height=2.8, aspect=1.1,
                    facet_kws={"margin_titles": True})
    g.set(ylim=(-0.02, 1.02), ylabel="MMS")
    return g.figure


def thresholds_table(curves: pd.DataFrame, n: int) -> pd.DataFrame:
    """Per variant, layer and threshold (eps50, full_eps): the summary over networks."""
    return pd.concat([
        summarise(per_pair(d, "eps50").merge(per_pair(d, "full_eps")), ["eps50", "full_eps"],
                  n).assign(variant=v)
        for v, d in curves.groupby("variant", sort=False)], ignore_index=True)


def record_thresholds(report: Any, thresholds: pd.DataFrame) -> None:
    """The thresholds table and, for raw activations, its numbers per layer."""
    report.table("sm_thresholds", thresholds)
    for _, row in thresholds[thresholds.variant == RAW].iterrows():
        report.number(f"sm_{row['statistic']}_{row['layer']}", float(row["trained"]))
        report.number(f"sm_{row['statistic']}_untrained_{row['layer']}", float(row["untrained"]))


def mms_grid(summary: pd.DataFrame, eps_grid: Sequence[float]) -> Figure:
    """Mean MMS over pairs at the paper's eps values, as an annotated heat map."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    wide = summary.pivot_table(index=["variant", "kind", "layer"], columns="eps", values="mean",
                               sort=False)
    fig, ax = plt.subplots(figsize=(1.4 * len(eps_grid) + 2, 0.45 * len(wide) + 1))
    sns.heatmap(wide, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", ax=ax,
                cbar_kws={"label": "MMS"})
    ax.set(xlabel="eps", ylabel="")
    return fig


def simple_sizes(simple: pd.DataFrame, n_layers: int) -> Figure:
    """Sizes of v-minimal matches as a fraction of the layer pair's neurons, per layer."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(1.8 * n_layers + 2.5, 3.4))
    sns.boxplot(simple, x="layer", y="fraction", hue="kind", showfliers=False, ax=ax)
    ax.set(ylabel="simple-match size / layer-pair neurons", ylim=(0, None))
    return fig


def simple_summary(simple: pd.DataFrame) -> pd.DataFrame:
    """Per layer and kind of pair: median size and fraction, matches searched, neurons."""
    return simple.groupby(["layer", "kind"], sort=False).agg(
        median_size=("size", "median"), median_fraction=("fraction", "median"),
        searched=("size", "size"), neurons=("layer_units", "first"))


__all__ = ["CENTRED", "CLAIMS", "PAPER_EPS", "SIMPLE_EPS", "RAW", "check_eps", "curve_grid",
           "eps_half", "matchers", "mean_share", "mms_curves", "mms_grid", "mms_summary",
           "mms_table", "per_pair", "record_thresholds", "rows_kept", "shapes_table",
           "shapes_warning", "simple_match_table", "simple_sizes", "simple_summary",
           "thresholds_table", "verdicts"]
