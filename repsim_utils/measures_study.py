"""The standard-measures chapter's pipeline: CKA, CCA, Procrustes and RSA
(:mod:`repsim_utils.reference_measures`) on the convergent-learning chapter's networks, beside
unit matching and subspace matching, as tidy tables; layer identification (Kornblith et al.
2019): does a measure find, for each layer of one network, the corresponding layer of another
network trained from a different seed? And the claims the chapter tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from . import matching, stats
from . import reference_measures as rm
from .pairs import TRAINED, layer_arrays, trained_matrix
from .progress import track
from .subspace import SubspaceMatcher
from .verdicts import Claim, Reference, Rule, Verdict

Acts = dict[str, dict[str, np.ndarray]]

#: eps of the maximum-match similarity used as a measure here
MMS_EPS = 0.5


def unit_matching(a: np.ndarray, b: np.ndarray) -> float:
    """Mean semi-matched correlation (Li et al. 2016), dead units counting 0."""
    return matching.semi_match(matching.correlation(a, b)).mean


def mms(a: np.ndarray, b: np.ndarray) -> float:
    """Maximum-match similarity at :data:`MMS_EPS` (Wang et al. 2018)."""
    return float(SubspaceMatcher(a, b).similarity(MMS_EPS))


_RANKS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _ranks(a: np.ndarray) -> np.ndarray:
    """RDM ranks of ``a``, computed once per array (the same layer is in many pairs)."""
    hit = _RANKS.get(id(a))
    if hit is None or hit[0] is not a:
        hit = _RANKS[id(a)] = (a, rm.rdm_ranks(a))
    return hit[1]


def rsa(a: np.ndarray, b: np.ndarray) -> float:
    """RSA (Spearman correlation of Euclidean RDMs, rsatoolbox's RDMs), with each array's RDM
    ranked once: equal to :func:`reference_measures.rsa`."""
    return rm.rsa_ranks(_ranks(a), _ranks(b))


#: Measures whose value changes when the two arguments are swapped.
ASYMMETRIC = frozenset({"PWCCA"})

#: Every measure compared in the chapter: the study's two unit lenses and the standard ones.
MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "unit matching": unit_matching, f"MMS (eps {MMS_EPS})": mms, **rm.MEASURES, "RSA": rsa}


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


def measure_table(acts: Acts, layers: Sequence[str], pairs: Sequence[tuple[str, str, str]],
                  measures: Sequence[str] = tuple(MEASURES)) -> pd.DataFrame:
    """Per (layer, pair): every measure between the same layer of the two networks (one
    column per measure)."""
    rows = []
    jobs = [(layer, pair) for layer in layers for pair in pairs]
    for layer, (a, b, kind) in track(jobs, "standard measures"):
        rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind}
                    | {m: MEASURES[m](acts[a][layer], acts[b][layer]) for m in measures})
    return pd.DataFrame(rows)


def identification_table(acts: Acts, layers: Sequence[str], n: int,
                         measures: Sequence[str] = tuple(MEASURES)) -> pd.DataFrame:
    """Layer identification (Kornblith et al. 2019): for every ordered pair of trained networks
    (i, j) and layer l of i, the similarity of l to every layer of j; the credit is 1 when the
    most similar is l itself, 1/k when l ties with k - 1 others, else 0. Per (pair, measure):
    the mean credit over layers and both directions; chance is 1 / layers."""
    rows = []
    jobs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for i, j in track(jobs, "layer identification"):
        for m in measures:
            credit = []
            x, y = f"t{i}", f"t{j}"
            forth = np.array([[MEASURES[m](acts[x][la], acts[y][lb]) for lb in layers]
                              for la in layers])
            # the other direction: the transpose, unless the measure is asymmetric
            back = (forth.T if m not in ASYMMETRIC else
                    np.array([[MEASURES[m](acts[y][la], acts[x][lb]) for lb in layers]
                              for la in layers]))
            for sim in (forth, back):
                for k in range(len(layers)):
                    best = np.flatnonzero(np.isclose(sim[k], sim[k].max(), rtol=0,
                                                     atol=1e-12))
                    credit.append(1 / len(best) if k in best else 0.0)
            rows.append({"net_a": f"t{i}", "net_b": f"t{j}", "kind": TRAINED, "measure": m,
                         "accuracy": float(np.mean(credit))})
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


def claims(measures: Sequence[str] = tuple(MEASURES)) -> dict[str, Claim]:
    """Two claims per measure: it identifies corresponding layers above chance (Kornblith et
    al. 2019's test of a measure), and it scores trained networks as more alike than a trained
    and an untrained one (the study's question)."""
    out = {}
    for m in measures:
        key = m.split(" (")[0].lower().replace(" ", "_")
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
             measures: Sequence[str] = tuple(MEASURES), **kwargs) -> list[Verdict]:
    """The chapter's verdicts (see :data:`CLAIMS`)."""
    layers = list(layers)
    out = []
    for m in measures:
        key = m.split(" (")[0].lower().replace(" ", "_")
        tt_id = trained_matrix(ident[ident.measure == m], "accuracy", n)
        out.append(CLAIMS[f"{key}_identifies_layers"].judge(
            stats.over_networks(tt_id - 1 / len(layers), n, True, **kwargs),
            Reference("chance", 1 / len(layers))))
        tt, tu = layer_arrays(table, m, layers, n)
        out.append(CLAIMS[f"{key}_trained_more_alike"].judge(
            stats.effect_over_networks(tt, tu, n, stats.weakest, **kwargs),
            Reference.of("trained vs untrained (weakest layer)",
                         stats.over_networks(tu, n, False, stats.weakest, **kwargs))))
    return out


__all__ = ["CLAIMS", "MEASURES", "MMS_EPS", "claims", "identification_summary",
           "identification_table", "measure_table", "mms", "subsample", "unit_matching",
           "verdicts"]
