"""The standard-measures chapter's pipeline: CKA, CCA, Procrustes and RSA
(:mod:`repsim_utils.science.measures`) on the convergent-learning chapter's networks, beside
unit matching and subspace matching, as tidy tables; layer identification (Kornblith et al.
2019): does a measure find, for each layer of one network, the corresponding layer of another
network trained from a different seed? And the claims the chapter tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from repsim_utils.base.progress import track
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import (
    TRAINED,
    Pair,
    identification_credit,
    layer_arrays,
    pair_table,
    trained_matrix,
    trained_pairs,
)
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict, trained_vs_untrained
from repsim_utils.science import measures as rm

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Acts = dict[str, dict[str, np.ndarray]]

#: Every measure the chapter compares: the registry of :mod:`repsim_utils.science.measures`
#: (the study's unit and subspace lenses and the standard measures).
MEASURES = rm.MEASURES
MMS_EPS = rm.MMS_EPS


def subsample(acts: Acts, max_samples: int, seed: int = 0) -> Acts:
    """The same random rows (samples) of every network's layer, at most ``max_samples``: the
    RDMs of RSA are samples x samples."""
    out: Acts = {}
    for net, layers in acts.items():
        out[net] = {}
        for layer, a in layers.items():
            if len(a) > max_samples:
                rows = np.sort(np.random.default_rng(seed).choice(len(a), max_samples,
                                                                  replace=False))
                a = a[rows]
            out[net][layer] = a
    return out


def measure_table(acts: Acts, layers: Sequence[str], pairs: Sequence[Pair],
                  measures: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (layer, pair): every measure between the same layer of the two networks (one
    column per measure)."""
    names = list(MEASURES) if measures is None else list(measures)
    return pair_table(layers, pairs, lambda layer, a, b: {
        m: MEASURES[m](acts[a][layer], acts[b][layer]) for m in names}, "standard measures")


def identification_table(acts: Acts, layers: Sequence[str], n: int,
                         measures: Sequence[str] | None = None) -> pd.DataFrame:
    """Layer identification (Kornblith et al. 2019): for every pair of trained networks (i, j)
    and every measure, :func:`~repsim_utils.inference.pairs.identification_credit` of the
    similarities of each layer of one network to every layer of the other, both directions
    (an asymmetric measure is computed again with the arguments swapped); chance is
    1 / layers."""
    names = list(MEASURES) if measures is None else list(measures)
    rows = []
    for i, j in track(trained_pairs(n), "layer identification"):
        x, y = f"t{i}", f"t{j}"
        for m in names:
            measure = MEASURES[m]
            forth = np.array([[measure(acts[x][la], acts[y][lb]) for lb in layers]
                              for la in layers])
            back = (forth.T if measure.symmetric else
                    np.array([[measure(acts[y][la], acts[x][lb]) for lb in layers]
                              for la in layers]))
            rows.append({"net_a": x, "net_b": y, "kind": TRAINED, "measure": m,
                         "accuracy": identification_credit(forth, back)})
    return pd.DataFrame(rows)


def identification_summary(table: pd.DataFrame, n: int, n_layers: int, **kwargs
                           ) -> pd.DataFrame:
    """Per measure: layer-identification accuracy over pairs of trained networks with its 95%
    interval over networks, beside chance (1 / layers)."""
    rows = []
    for m, d in table.groupby("measure", sort=False):
        e = stats.over_networks(trained_matrix(d, "accuracy", n), n, True, **kwargs)
        rows.append({"measure": m, "accuracy": e.value, "accuracy_low": e.low,
                     "accuracy_high": e.high, "chance": 1 / n_layers})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "kornblith2019similarity"


def claims(measures: Sequence[str] | None = None) -> dict[str, Claim]:
    """Two claims per measure: it identifies corresponding layers above chance (Kornblith et
    al. 2019's test of a measure), and it scores trained networks as more alike than a trained
    and an untrained one (the study's question)."""
    out = {}
    for m in (list(MEASURES) if measures is None else measures):
        key = MEASURES[m].key
        out[f"{key}_identifies_layers"] = Claim(
            f"{key}_identifies_layers", PAPER,
            f"{m} identifies the corresponding layer of another network above chance",
            f"layer-identification accuracy of {m} minus chance, pairs of trained networks",
            Rule("above", 0.0))
        out[f"{key}_trained_more_alike"] = Claim(
            f"{key}_trained_more_alike", "study",
            f"Under {m}, trained networks are more alike than a trained and an untrained one",
            f"{m}, trained vs trained minus trained vs untrained, weakest layer",
            Rule("above", 0.0))
    return out


CLAIMS = claims()


def verdicts(table: pd.DataFrame, ident: pd.DataFrame, layers: Sequence[str], n: int,
             measures: Sequence[str] | None = None, **kwargs) -> list[Verdict]:
    """The chapter's verdicts (see :data:`CLAIMS`)."""
    layers = list(layers)
    names = list(MEASURES) if measures is None else list(measures)
    chapter_claims = claims(names)  # measures registered after import have claims too
    out = []
    for m in names:
        key = MEASURES[m].key
        tt_id = trained_matrix(ident[ident.measure == m], "accuracy", n)
        out.append(chapter_claims[f"{key}_identifies_layers"].judge(
            stats.over_networks(tt_id - 1 / len(layers), n, True, **kwargs),
            Reference("chance", 1 / len(layers))))
        tt, tu = layer_arrays(table, m, layers, n)
        out.append(trained_vs_untrained(chapter_claims[f"{key}_trained_more_alike"], tt, tu, n,
                                        sign=1.0 if MEASURES[m].kind == "similarity" else -1.0,
                                        **kwargs))
    return out


# ---------------------------------------------------------------------------------------------
# what the page shows


def record_identification(report: Any, summary: pd.DataFrame) -> None:
    """The layer-identification summary and each measure's accuracy."""
    report.table("stdm_identification", summary)
    for _, row in summary.iterrows():
        report.number(f"stdm_identification_{MEASURES[row['measure']].key}",
                      float(row["accuracy"]))


def identification_plot(summary: pd.DataFrame, n_layers: int) -> Figure:
    """Layer-identification accuracy of every measure with its interval, beside chance."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    y = np.arange(len(summary))
    v = summary["accuracy"].to_numpy()
    err = np.stack([v - summary["accuracy_low"], summary["accuracy_high"] - v])
    ax.errorbar(v, y, xerr=err, fmt="o", capsize=3)
    ax.axvline(1 / n_layers, ls="--", color="0.4", label="chance")
    ax.set(yticks=y, yticklabels=summary["measure"], xlim=(0, 1.05),
           xlabel="layer-identification accuracy")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    return fig


__all__ = ["CLAIMS", "MEASURES", "MMS_EPS", "claims", "identification_plot",
           "identification_summary", "identification_table", "measure_table",
           "record_identification", "subsample", "verdicts"]
