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
from repsim_utils.chapters import grounding
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import (
    BOTH_UNTRAINED,
    NULL,
    TRAINED,
    Pair,
    identification_credit,
    identification_matrices,
    layer_arrays,
    shuffled_acts,
    trained_pairs,
)
from repsim_utils.inference.verdicts import (
    Claim,
    Rule,
    Verdict,
    identification_verdict,
    training_verdict,
)
from repsim_utils.science import measures as rm
from repsim_utils.science import prepared as pp

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
    _check_samples(out)
    return out


def _check_samples(acts: Acts) -> None:
    """Before any pair is computed: the CCA family compares the widest layer with the same
    layer of another network, so the rows must exceed twice its units
    (:func:`~repsim_utils.science.measures.check_cca_samples`, on widths: ranks can only be
    lower)."""
    for net, layers in acts.items():
        rows = min(len(a) for a in layers.values())
        widest = max(a.shape[1] for a in layers.values())
        rm.check_cca_samples(rows, widest, widest,
                             f"network {net}'s layers ({rows} rows per layer)")


class _Layers:
    """One measure's prepared layers (:meth:`~repsim_utils.science.measures.Measure.layer`),
    each computed on first use and kept while this measure is compared: the per-network work
    of every pair a layer is in, done once."""

    def __init__(self, measure: rm.Measure, nets: Any, device: str | None = None) -> None:
        self._measure, self._nets, self._device, self._done = measure, nets, device, {}

    def __getitem__(self, key: tuple[str, str]) -> Any:
        if key not in self._done:
            net, layer = key
            self._done[key] = self._measure.layer(self._nets[net][layer], self._device)
        return self._done[key]


def measure_table(acts: Acts, layers: Sequence[str], pairs: Sequence[Pair],
                  measures: Sequence[str] | None = None, device: str | None = None
                  ) -> pd.DataFrame:
    """Per (layer, pair): every measure between the same layer of the two networks (one
    column per measure). Measure by measure, each network's layer is prepared once for all
    its pairs, on ``device`` (a torch device, e.g. "cuda"; None: NumPy) for the measures with
    a device path (:attr:`~repsim_utils.science.measures.Measure.on_devices`)."""
    pp.check_device(device)
    names = list(MEASURES) if measures is None else list(measures)
    keys = [(la, p) for la in layers for p in pairs]
    values: dict[str, list[float]] = {}
    for m in track(names, "standard measures"):
        measure, prepared = MEASURES[m], _Layers(MEASURES[m], acts, device)
        values[m] = [measure.compare(prepared[a, la], prepared[b, la]) for la, (a, b, _) in keys]
    return pd.DataFrame([{"layer": la, "net_a": a, "net_b": b, "kind": kind}
                         | {m: values[m][k] for m in names}
                         for k, (la, (a, b, kind)) in enumerate(keys)])


def identification_table(acts: Acts, layers: Sequence[str], n: int,
                         measures: Sequence[str] | None = None, seed: int = 0,
                         device: str | None = None) -> pd.DataFrame:
    """Layer identification (Kornblith et al. 2019): for every pair of trained networks (i, j),
    every pair of untrained networks and every trained pair with j's samples shuffled (the
    same order in every layer: the null of the argmax itself), and every measure,
    :func:`~repsim_utils.inference.pairs.identification_credit` of the similarities of each
    layer of one network to every layer of the other, both directions (an asymmetric measure
    is computed again with the arguments swapped). Chance would be 1 / layers, but neither
    the null nor untrained networks score chance: layers of different widths or resolutions
    can be told apart without any learning. Measure by measure, each network's layer
    (shuffled ones included) is prepared once for all its pairs, on ``device`` as in
    :func:`measure_table`."""
    pp.check_device(device)
    names = list(MEASURES) if measures is None else list(measures)
    nets = shuffled_acts(acts, n, seed)
    jobs = [(f"t{i}", f"t{j}", TRAINED) for i, j in trained_pairs(n)]
    jobs += [(f"u{i}", f"u{j}", BOTH_UNTRAINED) for i, j in trained_pairs(n)]
    jobs += [(f"t{i}", f"s{j}", NULL) for i, j in trained_pairs(n)]
    credit: dict[tuple[int, str], float] = {}
    for m, (k, (x, y, _)) in track([(m, job) for m in names for job in enumerate(jobs)],
                                   "layer identification"):
        measure = MEASURES[m]
        if k == 0:
            prepared = _Layers(measure, nets, device)  # the previous measure's are let go
        forth = np.array([[measure.compare(prepared[x, la], prepared[y, lb]) for lb in layers]
                          for la in layers])
        back = (forth.T if measure.symmetric else
                np.array([[measure.compare(prepared[y, la], prepared[x, lb]) for lb in layers]
                          for la in layers]))
        credit[k, m] = identification_credit(forth, back)
    return pd.DataFrame([{"net_a": x, "net_b": y, "kind": kind, "measure": m,
                          "accuracy": credit[k, m]}
                         for k, (x, y, kind) in enumerate(jobs) for m in names])


def identification_summary(table: pd.DataFrame, n: int, n_layers: int, **kwargs
                           ) -> pd.DataFrame:
    """Per measure: layer-identification accuracy of trained pairs, of untrained pairs and of
    the shuffled null, each with its 95% interval over networks, beside chance (1 / layers) and
    the accuracy Kornblith et al. (2019, Table 2) published for the same test (the same claim
    at another scale: 10 CNNs on CIFAR-10 with 10 or more layers; ``kornblith_2019``)."""
    rows = []
    for m, d in table.groupby("measure", sort=False):
        row = {"measure": m}
        for kind, name in ((TRAINED, "accuracy"), (BOTH_UNTRAINED, "uu"), (NULL, "null")):
            e = stats.over_networks(identification_matrices(d, n)[kind], n, True, **kwargs)
            row |= {name: e.value, f"{name}_low": e.low, f"{name}_high": e.high}
        published = KORNBLITH_TABLE2.get(m)
        rows.append(row | {"chance": 1 / n_layers,
                           "kornblith_2019": published[1] if published else "not tested"})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "kornblith2019similarity"

#: Kornblith et al. (2019), Table 2: the measures they tested for layer identification, whether
#: each identified the corresponding layer, and its accuracy there.
KORNBLITH_TABLE2 = {
    "linear CKA": (True, "99.3%"),
    "linear regression (R^2)": (False, "45.4%"),
    "CCA (mean rho)": (False, "1.4-10.6%"),
    "SVCCA": (False, "9.9-15.1%"),
    "PWCCA": (False, "11.1%"),
}
#: "Fails to identify": accuracy at most this far above the shuffled null (the study's margin).
FAIL_MARGIN = 0.1
#: Measures whose "trained more alike" verdict another chapter already gives (counted once).
ELSEWHERE = {"unit matching": "convergent_learning"}


def claims(measures: Sequence[str] | None = None) -> dict[str, Claim]:
    """Per measure: its layer identification (a paper claim for the measures Kornblith et al.
    2019 tested, with their outcome: CKA identifies, the CCA family fails; a study question for
    the others), and, unless another chapter gives it, whether it scores trained networks as
    more alike than two untrained ones (the study's question)."""
    out = {}
    for m in (list(MEASURES) if measures is None else measures):
        key = MEASURES[m].key
        stat = (f"layer-identification accuracy of {m}, trained pairs minus the larger of the "
                f"same pairs with one network's samples shuffled and a pair of untrained "
                f"networks")
        if m in KORNBLITH_TABLE2 and not KORNBLITH_TABLE2[m][0]:
            out[f"{key}_identifies_layers"] = Claim(
                f"{key}_identifies_layers", PAPER,
                f"{m} fails to identify the corresponding layer of another network "
                f"(Kornblith et al. 2019: {KORNBLITH_TABLE2[m][1]})", stat,
                Rule("below", FAIL_MARGIN), own_threshold=True)
        else:
            paper = m in KORNBLITH_TABLE2
            out[f"{key}_identifies_layers"] = Claim(
                f"{key}_identifies_layers", PAPER if paper else "study",
                f"{m} identifies the corresponding layer of another network"
                + (f" (Kornblith et al. 2019: {KORNBLITH_TABLE2[m][1]})" if paper else ""),
                stat, Rule("above", 0.0))
        if m not in ELSEWHERE:
            out[f"{key}_trained_more_alike"] = Claim(
                f"{key}_trained_more_alike", "study",
                f"Under {m}, trained networks are more alike than two untrained networks",
                f"{m}, trained pairs minus untrained pairs, weakest layer", Rule("above", 0.0))
    return out


#: Every claim the chapter tests: the measures' (:func:`claims`) and their grounding in function
#: (:func:`repsim_utils.chapters.grounding.claims`).
CLAIMS = claims() | grounding.claims(list(MEASURES))


def verdicts(table: pd.DataFrame, ident: pd.DataFrame, layers: Sequence[str], n: int,
             measures: Sequence[str] | None = None, **kwargs) -> list[Verdict]:
    """The chapter's verdicts (see :data:`CLAIMS`)."""
    layers = list(layers)
    names = list(MEASURES) if measures is None else list(measures)
    chapter_claims = claims(names)  # measures registered after import have claims too

    out = []
    for m in names:
        key = MEASURES[m].key
        out.append(identification_verdict(
            chapter_claims[f"{key}_identifies_layers"],
            identification_matrices(ident[ident.measure == m], n), n, len(layers), **kwargs))
        if f"{key}_trained_more_alike" in chapter_claims:
            out.append(training_verdict(
                chapter_claims[f"{key}_trained_more_alike"], layer_arrays(table, m, layers, n),
                n, sign=1.0 if MEASURES[m].kind == "similarity" else -1.0, **kwargs))
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
    """Layer-identification accuracy of every measure with its interval: trained pairs beside
    untrained pairs and the shuffled null, and chance."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(summary) + 1.4))
    y = np.arange(len(summary))
    for k, (name, label, marker) in enumerate((("accuracy", "trained vs trained", "o"),
                                               ("uu", "untrained vs untrained", "s"),
                                               ("null", "null (samples shuffled)", "x"))):
        v = summary[name].to_numpy()
        err = np.stack([v - summary[f"{name}_low"], summary[f"{name}_high"] - v])
        ax.errorbar(v, y + (k - 1) * 0.22, xerr=err, fmt=marker, capsize=3, label=label)
    ax.axvline(1 / n_layers, ls="--", color="0.4", label="chance")
    ax.set(yticks=y, yticklabels=summary["measure"], xlim=(-0.02, 1.05),
           xlabel="layer-identification accuracy")
    ax.invert_yaxis()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return fig


__all__ = ["CLAIMS", "ELSEWHERE", "FAIL_MARGIN", "KORNBLITH_TABLE2", "MEASURES", "MMS_EPS",
           "claims", "identification_plot",
           "identification_summary", "identification_table", "measure_table",
           "record_identification", "subsample", "verdicts"]
