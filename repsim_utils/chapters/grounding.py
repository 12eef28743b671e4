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
from repsim_utils.inference.pairs import BOTH_UNTRAINED, TRAINED, UNTRAINED, trained_pairs
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict
from repsim_utils.nets.models import Network
from repsim_utils.science import function as fn
from repsim_utils.science import stitching as st

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
# claims and verdicts

PAPER = "klabunde2025resi"


def claims(names: Sequence[str]) -> dict[str, Claim]:
    """Per measure, the study's question: on the last hidden layer, do the pairs of trained
    networks that the measure scores as more alike disagree less?"""
    from repsim_utils.science.measures import MEASURES

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
    for m, claim in zip(names, claims(names).values(), strict=True):
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


__all__ = ["DISAGREEMENT", "FUNCTIONAL", "GAP", "STITCH", "claims", "function_table",
           "grounding_plot", "grounding_table", "stitch_penalty_table", "verdicts"]
