"""Grounding of every measure in function (Klabunde et al. 2025, ReSi): over the pairs of trained
networks of a run, does a measure score as more alike the pairs that *behave* more alike? Per
layer and measure, Spearman's rho (:func:`repsim_utils.science.function.rank_correlation`)
between the pair's similarity and

- its **disagreement**: the share of probe inputs on which the two predict different classes;
- its **accuracy gap**: |acc_a - acc_b| on the probe inputs;
- its **stitching penalty** at that layer: the mean, over both directions, of the receiver's
  accuracy minus the directly matched stitch's (:mod:`repsim_utils.science.stitching`).

A grounded similarity correlates *negatively* with all three. Beside it, the same rho over pairs
of untrained networks (their similarity against their disagreement): a rho that untrained
networks reach as well is the architecture's, not learning's.

And the principal-component deletion test of Ding, Denain & Steinhardt (2021)
(:mod:`repsim_utils.science.deletion`): per pair (t_i, t_j) and k, how much similarity t_i
loses with t_j when t_j's top k principal components are removed, against how much accuracy a
linear probe on t_j loses (:func:`pc_deletion_table`); Spearman's rho over (pair, k). The
number of components deleted, k, knows nothing of the networks and still orders the rows in
part; it is the reference a measure must beat (:func:`deletion_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from repsim_utils.base.progress import track
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import (
    BOTH_UNTRAINED,
    TRAINED,
    UNTRAINED,
    trained_matrix,
    trained_pairs,
)
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict
from repsim_utils.nets.models import Network
from repsim_utils.science import deletion as dl
from repsim_utils.science import function as fn
from repsim_utils.science import stitching as st
from repsim_utils.science.measures import MEASURES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DISAGREEMENT, GAP, STITCH = "disagreement", "accuracy gap", "stitching penalty"
FUNCTIONAL = (DISAGREEMENT, GAP, STITCH)


def _logits(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    return st.features(net, x).numpy()


def function_table(trained: Sequence[Network], untrained: Sequence[Network], x: torch.Tensor,
                   y: torch.Tensor) -> pd.DataFrame:
    """Per pair of trained networks and per pair of untrained networks (``kind``): their
    disagreement and accuracy gap on the inputs ``x`` (labels ``y``)."""
    rows = []
    for kind, nets, prefix in ((TRAINED, trained, "t"), (BOTH_UNTRAINED, untrained, "u")):
        logits = [_logits(net, x) for net in nets]
        acc = [fn.accuracy(g, y.numpy()) for g in logits]
        for i, j in trained_pairs(len(nets)):
            rows.append({"net_a": f"{prefix}{i}", "net_b": f"{prefix}{j}", "kind": kind,
                         DISAGREEMENT: fn.disagreement(logits[i], logits[j]),
                         GAP: fn.accuracy_gap(acc[i], acc[j])})
    return pd.DataFrame(rows)


def _direct_penalty(sender: tuple[torch.Tensor, torch.Tensor], fit: st.AffineFit,
                    receiver: tuple[torch.Tensor, torch.Tensor], back: nn.Module, own: float,
                    y_test: torch.Tensor, max_rows: int) -> float:
    """The receiver's own accuracy minus that of the direct match from ``sender`` (fit and test
    outputs; ``fit``: its :func:`~repsim_utils.science.stitching.sender_fit`) into ``back``."""
    stitch = st.direct_match(sender[0], receiver[0], max_rows, fit=fit)
    return own - st.accuracy_and_loss(nn.Sequential(stitch, back), sender[1], y_test)[0]


def stitch_penalty_table(trained: Sequence[Network], layers: Sequence[str],
                         fit: tuple[torch.Tensor, torch.Tensor],
                         test: tuple[torch.Tensor, torch.Tensor], max_rows: int = 20_000,
                         untrained: Sequence[Network] = ()) -> pd.DataFrame:
    """Per layer and pair of trained networks: the direct-matching stitching penalty (fitted
    on ``fit``, tested on ``test``), the mean of both directions; with ``untrained``, also the
    penalty of each untrained network u_i as the sender into t_i (``kind``
    :data:`~repsim_utils.inference.pairs.UNTRAINED`, ``net_b`` u_i), the reference of the
    ladder's function rung."""
    (x_fit, _), (x_test, y_test) = fit, test
    rows = []
    for layer in track(list(layers), "stitching penalties"):
        split = [st.split(net, layer) for net in trained]
        h = [(st.features(f, x_fit), st.features(f, x_test)) for f, _ in split]
        own = [st.accuracy_and_loss(b, h[j][1], y_test)[0] for j, (_, b) in enumerate(split)]
        fits = [st.sender_fit(fit_out, max_rows) for fit_out, _ in h]  # once per network
        for i, j in trained_pairs(len(trained)):
            forth = _direct_penalty(h[i], fits[i], h[j], split[j][1], own[j], y_test, max_rows)
            back = _direct_penalty(h[j], fits[j], h[i], split[i][1], own[i], y_test, max_rows)
            rows.append({"layer": layer, "net_a": f"t{i}", "net_b": f"t{j}", "kind": TRAINED,
                         STITCH: 0.5 * (forth + back)})
        for i, net in enumerate(untrained):
            front = st.split(net, layer)[0]
            h_u = (st.features(front, x_fit), st.features(front, x_test))
            rows.append({"layer": layer, "net_a": f"t{i}", "net_b": f"u{i}", "kind": UNTRAINED,
                         STITCH: _direct_penalty(h_u, st.sender_fit(h_u[0], max_rows), h[i],
                                                 split[i][1], own[i], y_test, max_rows)})
    return pd.DataFrame(rows)


def _matrix(table: pd.DataFrame, column: str, n: int, prefix: str) -> np.ndarray:
    m = np.full((n, n), np.nan)
    for a, b, v in table[["net_a", "net_b", column]].itertuples(index=False):
        if not (a.startswith(prefix) and b.startswith(prefix)):
            continue
        i, j = int(a[1:]), int(b[1:])
        m[i, j] = m[j, i] = v
    if np.isnan(m[~np.eye(n, dtype=bool)]).any():
        raise ValueError(f"{column}: some pairs of the {n} networks are missing")
    return m


def grounding_table(measures: pd.DataFrame, function: pd.DataFrame, stitches: pd.DataFrame,
                    layers: Sequence[str], n: int, names: Sequence[str]) -> pd.DataFrame:
    """Per layer, measure (``names``, columns of the :func:`measure_table` ``measures``) and
    functional quantity: Spearman's rho over the pairs of trained networks with its 95% interval
    over networks (``rho``, ``low``, ``high``; NaN where rho is undefined without some network,
    a quantity constant over the pairs), and for the disagreement the same over pairs of
    untrained networks (``uu``...)."""
    rows = []
    func = {q: _matrix(function[function.kind == TRAINED], q, n, "t") for q in (DISAGREEMENT, GAP)}
    uu_dis = _matrix(function[function.kind == BOTH_UNTRAINED], DISAGREEMENT, n, "u")
    for layer in layers:
        d = measures[measures.layer == layer]
        func[STITCH] = _matrix(stitches[(stitches.layer == layer)
                                        & (stitches.kind == TRAINED)], STITCH, n, "t")
        for m in names:
            tt = _matrix(d[d.kind == TRAINED], m, n, "t")
            for q in FUNCTIONAL:
                e = stats.rank_correlation_over_networks(tt, func[q])
                row = {"layer": layer, "measure": m, "quantity": q}
                row |= ({"rho": e.value, "low": e.low, "high": e.high} if e else
                        dict.fromkeys(("rho", "low", "high"), np.nan))
                if q == DISAGREEMENT:
                    u = stats.rank_correlation_over_networks(_matrix(d[d.kind == BOTH_UNTRAINED], m,
                                                                  n, "u"), uu_dis)
                    row |= ({"uu": u.value, "uu_low": u.low, "uu_high": u.high} if u else
                            dict.fromkeys(("uu", "uu_low", "uu_high"), np.nan))
                rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# principal-component deletion (Ding et al. 2021)

#: numbers of top principal components deleted
DELETIONS = (1, 2, 4)
PROBE = "probe accuracy lost"


def _pooled(h: torch.Tensor) -> np.ndarray:
    """(inputs, units) from a layer's output: conv channels averaged over positions (the
    deletion acts on channels, and averaging is linear, so it commutes with it)."""
    h = h.numpy().astype(np.float64)
    return h.reshape(len(h), h.shape[1], -1).mean(2) if h.ndim > 2 else h


def pc_deletion_table(acts: dict[str, dict[str, np.ndarray]], measures: pd.DataFrame,
                      trained: Sequence[nn.Module], layer: str,
                      fit: tuple[torch.Tensor, torch.Tensor],
                      test: tuple[torch.Tensor, torch.Tensor], names: Sequence[str],
                      ks: Sequence[int] = DELETIONS, device: str | None = None) -> pd.DataFrame:
    """Per pair i < j of trained networks and per k in ``ks``: each measure's loss
    m(t_i, t_j) - m(t_i, t_j without its top k principal components) at ``layer`` (the
    components of t_j's rows in ``acts``; m(t_i, t_j) from the :func:`measure_table`
    ``measures``), and :data:`PROBE`, the held-out accuracy a least-squares linear probe on
    t_j's layer loses by the same deletion (fitted on ``fit``, scored on ``test``; conv
    channels averaged over positions)."""
    n = len(trained)
    width = acts["t0"][layer].shape[1]
    if max(ks) >= width:
        raise ValueError(f"deleting {max(ks)} components of a {width}-unit layer {layer!r}: "
                         f"keep k below the width")
    (x_fit, y_fit), (x_test, y_test) = fit, test
    deleted, lost = {}, {}
    for j, net in enumerate(track(list(trained), f"principal-component deletion at {layer}")):
        a = acts[f"t{j}"][layer]
        front = st.split(net, layer)[0]
        h_fit, h_test = _pooled(st.features(front, x_fit)), _pooled(st.features(front, x_test))
        own = dl.probe_accuracy(h_fit, y_fit.numpy(), h_test, y_test.numpy())
        mean, v = dl.top_components(a, max(ks))
        for k in ks:
            deleted[j, k] = dl.delete_components(a, mean, v[:, :k])
            lost[j, k] = own - dl.probe_accuracy(dl.delete_components(h_fit, mean, v[:, :k]),
                                                 y_fit.numpy(),
                                                 dl.delete_components(h_test, mean, v[:, :k]),
                                                 y_test.numpy())
    rows = [{"layer": layer, "net_a": f"t{i}", "net_b": f"t{j}", "k": k, PROBE: lost[j, k]}
            for i, j in trained_pairs(n) for k in ks]
    d = measures[measures.layer == layer]
    for m in names:
        measure = MEASURES[m]
        full = trained_matrix(d, m, n)
        ref = {i: measure.layer(acts[f"t{i}"][layer], device) for i in range(n)}
        # each deleted layer is prepared once, not once per partner
        cut = {key: measure.layer(a, device) for key, a in deleted.items()}
        for row in rows:
            i, j, k = int(row["net_a"][1:]), int(row["net_b"][1:]), row["k"]
            row[m] = full[i, j] - measure.compare(ref[i], cut[j, k])
    return pd.DataFrame(rows)


def _rows_rho(x: np.ndarray, y: np.ndarray, nets: np.ndarray, keep: np.ndarray) -> float:
    """Spearman's rho of x and y over the rows whose two networks are both in ``keep``; NaN
    where either is constant there."""
    rows = np.isin(nets, keep).all(1)
    return fn.spearman(x[rows], y[rows])


def deletion_table(table: pd.DataFrame, n: int, names: Sequence[str]) -> pd.DataFrame:
    """Per measure: Spearman's rho over the (pair, k) rows of :func:`pc_deletion_table` between
    the measure's loss and the probe's (``rho``), the same for k itself (``rho_k``, the
    reference: the number of components deleted), and their difference (``beyond_k``), each
    with its 95% jackknife interval over networks (a network left out with all its rows);
    NaN where undefined without some network."""
    nets = np.array([[int(a[1:]), int(b[1:])] for a, b in table[["net_a", "net_b"]].itertuples(
        index=False)])
    probe, k = table[PROBE].to_numpy(float), table["k"].to_numpy(float)
    rows = []
    for m in names:
        x = table[m].to_numpy(float)

        def statistic(idx: np.ndarray, x: np.ndarray = x) -> np.ndarray:
            idx = np.asarray(idx)
            sets = idx[None] if idx.ndim == 1 else idx
            out = np.array([[_rows_rho(x, probe, nets, s), _rows_rho(k, probe, nets, s)]
                            for s in sets]).T  # (2, sets)
            out = np.vstack([out, out[:1] - out[1:]])
            return out[:, 0] if idx.ndim == 1 else out

        row = {"measure": m}
        if n < 4 or np.isnan(statistic(stats.leave_one_out(n))).any():
            row |= dict.fromkeys(("rho", "low", "high", "rho_k", "rho_k_low", "rho_k_high",
                                  "beyond_k", "beyond_k_low", "beyond_k_high"), np.nan)
        else:
            e = stats.interval_over_networks(statistic, n)
            for name, est in zip(("rho", "rho_k", "beyond_k"), e, strict=True):
                pre = "" if name == "rho" else f"{name}_"
                row |= {name: est.value, f"{pre}low": est.low, f"{pre}high": est.high}
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "klabunde2025resi"


def claims(names: Sequence[str]) -> dict[str, Claim]:
    """Per measure, two study questions on the last hidden layer: do the pairs of trained
    networks that the measure scores as more alike disagree less (``_grounded``), and does
    the measure's loss under principal-component deletion follow a linear probe's more
    closely than the number of deleted components does (``_pc_deletion``)?"""
    return grounded_claims(names) | deletion_claims(names)


def deletion_claims(names: Sequence[str]) -> dict[str, Claim]:
    """Per measure: the principal-component deletion test (Ding et al. 2021) on the last
    hidden layer, against the reference of k alone."""
    return {f"{MEASURES[m].key}_pc_deletion": Claim(
        f"{MEASURES[m].key}_pc_deletion", "study",
        f"When a network's top principal components are deleted, {m} falls more for the pairs "
        f"and deletions that cost a linear probe more accuracy, beyond what the number of "
        f"components deleted predicts (last hidden layer)",
        f"Spearman's rho of {m}'s loss and the probe's over (pair, k), minus that of k",
        Rule("above", 0.0)) for m in names}


def grounded_claims(names: Sequence[str]) -> dict[str, Claim]:
    """Per measure: its rho with the disagreement over pairs of trained networks."""
    return {f"{MEASURES[m].key}_grounded": Claim(
        f"{MEASURES[m].key}_grounded", "study",
        f"Pairs of trained networks that {m} scores as more alike disagree less on the probe "
        f"inputs (last hidden layer)",
        f"Spearman's rho of {m} and the disagreement over pairs of trained networks",
        Rule("below", 0.0)) for m in names}


def verdicts(grounding: pd.DataFrame, layers: Sequence[str], names: Sequence[str]
             ) -> list[Verdict]:
    """One verdict per measure (:func:`claims`) on the last hidden layer, beside the same rho
    over untrained pairs and the rho with the stitching penalty; "not testable" where rho is
    undefined (the disagreement or the measure constant over the pairs)."""
    out = []
    g = grounding[grounding.layer == layers[-1]].set_index(["measure", "quantity"])
    for m, claim in zip(names, grounded_claims(names).values(), strict=True):
        r = g.loc[(m, DISAGREEMENT)]
        if np.isnan(r.rho):
            out.append(claim.judge(stats.Estimate(0.0, 0.0, 0.0), untestable=(
                "the rank correlation is undefined without some network: the disagreement or "
                "the measure is constant over the remaining pairs.")))
            continue
        extra = []
        s = g.loc[(m, STITCH)]
        if not np.isnan(s.rho):
            extra.append(Reference("rho with the stitching penalty", float(s.rho),
                                   (float(s.low), float(s.high))))
        uu = (None if np.isnan(r.uu) else
              Reference("rho over untrained pairs", float(r.uu), (float(r.uu_low),
                                                                 float(r.uu_high))))
        out.append(claim.judge(stats.Estimate(float(r.rho), float(r.low), float(r.high)), uu=uu,
                               extra=tuple(extra)))
    return out


def deletion_verdicts(deletion: pd.DataFrame, names: Sequence[str]) -> list[Verdict]:
    """One verdict per measure (:func:`deletion_claims`) from the :func:`deletion_table`:
    rho beyond k's, with the measure's own rho and k's beside it; "not testable" where rho is
    undefined (the probe or the measure unchanged by every deletion)."""
    out = []
    d = deletion.set_index("measure")
    for m, claim in zip(names, deletion_claims(names).values(), strict=True):
        r = d.loc[m]
        if np.isnan(r.beyond_k):
            out.append(claim.judge(stats.Estimate(0.0, 0.0, 0.0), untestable=(
                "the rank correlation is undefined without some network: the probe's accuracy "
                "or the measure is unchanged by every deletion.")))
            continue
        out.append(claim.judge(
            stats.Estimate(float(r.beyond_k), float(r.beyond_k_low), float(r.beyond_k_high)),
            baseline=Reference("rho of k, the number of components deleted", float(r.rho_k),
                               (float(r.rho_k_low), float(r.rho_k_high))),
            extra=(Reference(f"rho of {m}'s loss with the probe's", float(r.rho),
                             (float(r.low), float(r.high))),)))
    return out


def deletion_plot(table: pd.DataFrame, names: Sequence[str]) -> Figure:
    """Each measure's loss under deletion against the probe's, one point per (pair, k),
    coloured by k: a measure that follows function rises with the probe's loss within each
    colour, not only from one colour to the next."""
    import matplotlib.pyplot as plt

    cols = 5
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.1 * rows + 0.6), squeeze=False,
                             sharex=True)
    ks = sorted(table.k.unique())
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(ks)))
    for ax, m in zip(axes.flat, names, strict=False):
        for k, c in zip(ks, colours, strict=True):
            d = table[table.k == k]
            ax.scatter(d[PROBE], d[m], s=8, color=c, label=f"k = {k}")
        ax.set_title(m, fontsize=9)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("probe accuracy lost", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("similarity lost", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(ks), frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def grounding_plot(grounding: pd.DataFrame) -> Figure:
    """Spearman's rho of every measure with each functional quantity (one panel each), per
    layer, with 95% intervals over networks; below 0: grounded."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(FUNCTIONAL), figsize=(10, 0.42 * grounding.measure.nunique()
                                                          + 1.6), sharey=True)
    names = list(dict.fromkeys(grounding.measure))
    layers = list(dict.fromkeys(grounding.layer))
    y = np.arange(len(names))
    for ax, q in zip(axes, FUNCTIONAL, strict=True):
        for k, layer in enumerate(layers):
            d = grounding[(grounding.quantity == q) & (grounding.layer == layer)]
            d = d.set_index("measure").loc[names]
            off = (k - (len(layers) - 1) / 2) * 0.2
            ax.errorbar(d.rho, y + off, xerr=[d.rho - d.low, d.high - d.rho], fmt="o",
                        capsize=2, label=layer)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set(title=q, xlim=(-1.05, 1.05), xlabel="Spearman's rho over pairs")
    axes[0].set(yticks=y, yticklabels=names)
    axes[0].invert_yaxis()
    axes[-1].legend(title="layer", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    return fig


__all__ = ["DELETIONS", "DISAGREEMENT", "FUNCTIONAL", "GAP", "PROBE", "STITCH", "claims",
           "deletion_claims", "deletion_plot", "deletion_table", "deletion_verdicts",
           "function_table", "grounded_claims", "grounding_plot", "grounding_table",
           "pc_deletion_table", "stitch_penalty_table", "verdicts"]
