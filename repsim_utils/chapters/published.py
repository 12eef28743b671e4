"""Published numbers beside the study's: for every quantity or claim of a cited paper that a
chapter also measures, the paper's number, the study's (per run, with its 95% interval over
networks) and the references beside it (two untrained networks, a trained and an untrained one,
the null), and whether the two are the *same quantity* (at the same or another scale) or only
the *same claim* (another statistic of the same question).

:data:`PUBLISHED` is the one table of them; :func:`published_table` reads the runs' results;
:func:`cka_null_level` computes the one published number that needs no network, the level of
biased linear CKA between independent data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SAME_SCALE = "same quantity, same scale"
OTHER_SCALE = "same quantity, another scale"
SAME_CLAIM = "same claim, another statistic"

#: the columns of a summary table (:func:`repsim_utils.inference.pairs.summarise`)
TRAINED_COLUMNS = ("trained", "trained_low", "trained_high")
SUMMARY_REFERENCES = (("untrained pairs", "uu"), ("trained vs untrained", "untrained"),
                      ("null", "null"))


@dataclass(frozen=True)
class Published:
    """One published number and where the study measures it: the results table ``key`` of
    ``chapter``'s runs, the row matching ``where`` (and ``layer``: "first" or "last" of the
    table's layers), the study's value and interval in the columns ``value`` and the
    references in ``references`` ((label, column) pairs); or, with ``key`` "verdict:<id>",
    that verdict's value, interval and references."""

    paper: str
    quantity: str
    published: str
    relation: str
    chapter: str
    key: str
    where: tuple[tuple[str, Any], ...] = ()
    layer: str | None = None
    value: tuple[str, str, str] = TRAINED_COLUMNS
    references: tuple[tuple[str, str], ...] = SUMMARY_REFERENCES
    #: -1: the study's statistic is a similarity where the paper's is a dissimilarity
    sign: float = 1.0
    #: the layer, for a table without a layer column
    layers: str = "last hidden"


def _kornblith(measure: str, published: str, identifies: bool) -> Published:
    return Published(
        "kornblith2019similarity", f"layer identification by {measure}", published
        + (" (identifies)" if identifies else " (fails)"),
        f"{SAME_CLAIM}: 10 CNNs on CIFAR-10, 10 or more layers, where here 3", "standard_measures",
        "stdm_identification", (("measure", measure),), None,
        ("accuracy", "accuracy_low", "accuracy_high"),
        (("untrained pairs", "uu"), ("shuffled null", "null"), ("1 / layers", "chance")),
        layers="all layers")


def _ding(measure: str) -> Published:
    return Published(
        "ding2021grounding", f"principal-component deletion: rho of {measure}'s change with a "
        f"linear probe's", "0.75-0.87 for CKA, PWCCA and Procrustes",
        f"{OTHER_SCALE}: their networks and k; here the last hidden layer, k in 1, 2, 4",
        "standard_measures", "stdm_pc_deletion_rho", (("measure", measure),), None,
        ("rho", "low", "high"), (("rho of k alone", "rho_k"),))


def _ding_seeds(measure: str) -> Published:
    return Published(
        "ding2021grounding", f"across seeds: rho of {measure}'s dissimilarity with the "
        f"functional difference", "0.03-0.24 for CKA, PWCCA and Procrustes (fine-tuning seeds)",
        f"{SAME_CLAIM}: theirs the out-of-distribution accuracy, here the accuracy gap on held-out "
        "inputs, last hidden layer; the study's rho of the similarity with the sign turned",
        "standard_measures", "stdm_grounding", (("measure", measure), ("quantity", "accuracy gap")),
        "last", ("rho", "low", "high"), (), sign=-1.0)


def _li(statistic: str, published: str) -> Published:
    return Published(
        "li2016convergent", f"{statistic}-matched correlation, first layer", published,
        f"{OTHER_SCALE}: AlexNet conv1 (96 units) on ImageNet, two networks", "convergent_learning",
        "cl_summary", (("statistic", statistic),), "first")


#: Every published number the study measures again.
PUBLISHED: tuple[Published, ...] = (
    _li("semi", "0.703"),
    _li("bipartite", "0.663"),
    _kornblith("linear CKA", "99.3%", True),
    _kornblith("linear regression (R^2)", "45.4%", False),
    _kornblith("PWCCA", "11.1%", False),
    _kornblith("SVCCA", "9.9-15.1%", False),
    _kornblith("CCA (mean rho)", "1.4-10.6%", False),
    Published("bansal2021revisiting", "stitching penalty between seeds (task-loss stitch)",
              "small (qualitative: networks of different seeds stitch with little loss)",
              f"{SAME_CLAIM}: ResNets on CIFAR-10 and ImageNet; here the worst layer's accuracy "
              "penalty", "stitching", "verdict:seeds_stitch_with_little_loss"),
    *(_ding(m) for m in ("linear CKA", "PWCCA", "Procrustes")),
    *(_ding_seeds(m) for m in ("linear CKA", "PWCCA", "Procrustes")),
)

#: The published null of biased linear CKA between independent data with 8 features each, by
#: samples: the quantity :func:`cka_null_level` computes.
CKA_NULL = {32: 0.198, 64: 0.114, 256: 0.029}


def cka_null_level(n_samples: int, n_features: int = 8, reps: int = 2000, seed: int = 0
                   ) -> tuple[float, float]:
    """(mean, standard error) over ``reps`` draws of biased linear CKA
    (:func:`repsim_utils.science.measures.linear_cka`'s formula,
    ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred X, Y) between two independent standard
    normal (n_samples, n_features) matrices: its level where nothing is shared, which falls
    with the samples as about n_features / n_samples."""
    if n_samples < 3 or n_features < 1 or reps < 2:
        raise ValueError(f"need n_samples >= 3, n_features >= 1 and reps >= 2, got "
                         f"{n_samples}, {n_features}, {reps}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((reps, n_samples, n_features))
    y = rng.standard_normal((reps, n_samples, n_features))
    x -= x.mean(1, keepdims=True)
    y -= y.mean(1, keepdims=True)
    xy = np.einsum("rni,rnj->rij", x, y)
    xx, yy = np.einsum("rni,rnj->rij", x, x), np.einsum("rni,rnj->rij", y, y)
    cka = (xy ** 2).sum((1, 2)) / np.sqrt((xx ** 2).sum((1, 2)) * (yy ** 2).sum((1, 2)))
    return float(cka.mean()), float(cka.std(ddof=1) / np.sqrt(reps))


def _interval(v: float, lo: float, hi: float) -> str:
    if any(x is None or not np.isfinite(x) for x in (v, lo, hi)):
        return "—"
    return f"{v:.3g} [{lo:.3g}, {hi:.3g}]"


def _value(v: Any) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.3g}"


def _row(entry: Published, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    match = [r for r in rows if all(r.get(k) == v for k, v in entry.where)]
    if entry.layer is not None and match:
        layers = list(dict.fromkeys(r["layer"] for r in match))
        layer = layers[0] if entry.layer == "first" else layers[-1]
        match = [r for r in match if r["layer"] == layer]
    return match[0] if match else None


def _study(entry: Published, record: Any) -> dict[str, str] | None:
    """The study's value, interval, layer and references in ``record`` (None: absent)."""
    s = entry.sign
    if entry.key.startswith("verdict:"):
        vid = entry.key.partition(":")[2]
        v = next((v for v in record.verdicts if v["id"] == vid), None)
        if v is None:
            return None
        refs = [(r["name"], r["value"]) for r in (v.get("uu"), v.get("baseline"), v.get("null"))
                if r]
        return {"layer": "worst layer", "study": _interval(s * v["value"], *sorted(
                    (s * v["ci"][0], s * v["ci"][1]))),
                "references": "; ".join(f"{label} {_value(x)}" for label, x in refs) or "—"}
    row = _row(entry, record.results.get(entry.key, []))
    if row is None:
        return None
    v, lo, hi = (row.get(c) for c in entry.value)
    if s < 0 and None not in (v, lo, hi):
        v, lo, hi = -v, -hi, -lo
    return {"layer": str(row.get("layer", entry.layers)),
            "study": _interval(v, lo, hi),
            "references": "; ".join(f"{label} {_value(row.get(c))}"
                                    for label, c in entry.references) or "—"}


def published_table(records: Mapping[str, Any]) -> pd.DataFrame:
    """One row per published number (:data:`PUBLISHED`) and run of its chapter: the paper,
    quantity, published value and relation beside the run, layer, the study's value [95%
    interval over networks] and its references; and one row per sample size of the CKA null
    (:data:`CKA_NULL`, the study's value from :func:`cka_null_level`, +-1.96 standard
    errors of its simulation)."""
    rows = []
    for entry in PUBLISHED:
        for record in records.values():
            if record.chapter != entry.chapter or (study := _study(entry, record)) is None:
                continue
            rows.append({"paper": entry.paper, "quantity": entry.quantity,
                         "published": entry.published, "relation": entry.relation,
                         "run": record.run} | study)
    for n, published in CKA_NULL.items():
        mean, se = cka_null_level(n)
        rows.append({"paper": "source not found (the figure of issue 21)",
                     "quantity": f"biased linear CKA between independent data, 8 features, "
                                 f"{n} samples", "published": f"{published:g}",
                     "relation": SAME_SCALE, "run": "simulation (2,000 draws)", "layer": "—",
                     "study": _interval(mean, mean - 1.96 * se, mean + 1.96 * se),
                     "references": "—"})
    return pd.DataFrame(rows, columns=["paper", "quantity", "published", "relation", "run",
                                       "layer", "study", "references"])


__all__ = ["CKA_NULL", "OTHER_SCALE", "PUBLISHED", "Published", "SAME_CLAIM", "SAME_SCALE",
           "cka_null_level", "published_table"]
