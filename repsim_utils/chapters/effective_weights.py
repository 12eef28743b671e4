"""The effective-weights chapter's pipeline (Ye 2025): class structure of W_eff(x) over
training checkpoints, beside the same measures on the raw inputs and on the last hidden layer;
the similarity of W_eff(x) between networks trained from different seeds, for the same input;
the claims the chapter tests and their verdicts. Built on :mod:`repsim_utils.science.effective`,
:mod:`repsim_utils.science.class_structure`, :mod:`repsim_utils.inference.stats` and
:mod:`repsim_utils.inference.verdicts`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from repsim_utils.base.progress import track
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import pair_arrays, pair_list, trained_pairs
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict, training_verdict
from repsim_utils.nets.activations import activations
from repsim_utils.nets.data import Dataset
from repsim_utils.nets.models import Network
from repsim_utils.nets.zoo import Trained
from repsim_utils.science import class_structure as cs
from repsim_utils.science.effective import effective_weights, identity_error

W_EFF = "W_eff(x)"
HIDDEN = "last hidden layer"
RAW_INPUT = "raw input x"


def probe_set(data: Dataset, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, class-balanced probe set from the test split: ``per_class`` inputs of every
    class (chosen with ``seed``), ordered by class."""
    if per_class < 2:
        raise ValueError(f"per_class must be >= 2, got {per_class}")
    x, y = data.x_test, data.y_test
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < per_class:
            raise ValueError(f"class {int(c)} has only {len(idx)} test samples, fewer than "
                             f"per_class = {per_class}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    pick = torch.cat(picks)
    return x[pick], y[pick]


def weights_at(run: Trained | Network, epoch: int, x: torch.Tensor, device: str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(W_eff flattened to (samples, outputs * inputs), b_eff and f(x) (samples, outputs), the
    identity error max |W_eff x + b_eff - f(x)|) of ``run`` at checkpoint ``epoch`` (or of an
    untrained network), in float64, computed on ``device`` (a torch device: "cuda" on a
    GPU; None: the CPU)."""
    device = device or "cpu"
    net = (run.at(epoch) if isinstance(run, Trained) else copy.deepcopy(run))
    net = net.to(device=device, dtype=torch.float64).eval()
    x = x.to(device=device, dtype=torch.float64)
    w, b = effective_weights(net, x)
    with torch.no_grad():
        f = net(x)
    err = identity_error(w, b, x, f)
    return w.flatten(1).cpu().numpy(), b.cpu().numpy(), f.cpu().numpy(), err


def effective_table(runs: dict[str, Trained], x: torch.Tensor, y: torch.Tensor,
                    k: int = 5, device: str | None = None
                    ) -> tuple[pd.DataFrame, dict[tuple[str, int], np.ndarray]]:
    """Per (network, checkpoint, representation): every class-structure measure
    (:func:`class_structure.measures`) of W_eff(x) and of the last hidden layer, the test
    accuracy, the share of the output carried by b_eff (mean ||b_eff|| / mean ||f||) and the
    identity error. Also returns the flattened W_eff per (network, epoch). The effective
    weights are computed on ``device`` (:func:`weights_at`)."""
    labels = y.numpy()
    rows, flat = [], {}
    jobs = [(name, run, e) for name, run in runs.items() for e in sorted(run.checkpoints)]
    for name, run, epoch in track(jobs, "effective weights"):
        w, b, f, err = weights_at(run, epoch, x, device)
        flat[name, epoch] = w
        net = run.at(epoch)
        hidden = activations(net, x, [net.hidden[-1]], dtype=np.float64,
                             per_input=True)[net.hidden[-1]]
        acc = next(h["test_acc"] for h in run.history if h["epoch"] == epoch)
        common = {"network": name, "seed": run.seed, "epoch": epoch, "test_acc": acc}
        rows.append(common | {"representation": W_EFF} | cs.measures(w, labels, k) | {
            "bias_share": float(np.linalg.norm(b, axis=1).mean()
                                / np.linalg.norm(f, axis=1).mean()),
            "identity_error": err})
        rows.append(common | {"representation": HIDDEN} | cs.measures(hidden, labels, k))
    return pd.DataFrame(rows), flat


def map_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over inputs i of cos(a_i, b_i): how alike two networks' flattened maps W_eff(x_i)
    are for the same input (1: the same map up to scale). No alignment is needed: both live
    in (outputs x inputs)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (inputs, features) arrays of one shape, got {a.shape} and "
                         f"{b.shape}")
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    if np.any(den == 0):
        raise ValueError("a zero map has no direction: cosine undefined")
    return float((num / den).mean())


def cross_seed_table(trained: Sequence[Trained], untrained: Sequence[Network], x: torch.Tensor,
                     y: torch.Tensor, flat: dict[tuple[str, int], np.ndarray],
                     names: Sequence[str], seed: int = 0, device: str | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, trend). ``pairs``: per pair of networks (every two trained ones ``t{i}``, every
    two independent untrained ones ``u{i}`` and each trained one with ``u{i}``), the map
    similarity of their final W_eff(x) on the same inputs, and two nulls with the second
    network's inputs shuffled: across all inputs (``similarity_null``) and within each class
    (``similarity_null_class``: what class structure alone gives). ``trend``: per pair of
    trained networks and checkpoint, the similarity when both are at that epoch (epoch 0: two
    untrained networks). ``names[i]`` keys ``flat``; the untrained W_eff are computed on
    ``device``."""
    n = len(trained)
    final = {i: flat[names[i], max(trained[i].checkpoints)] for i in range(n)}
    base = {i: weights_at(u, 0, x, device)[0] for i, u in enumerate(untrained)}
    perm = np.random.default_rng(seed).permutation(len(x))
    within = stats.within_class_permutation(y.numpy(), seed)
    maps = {f"t{i}": final[i] for i in range(n)} | {f"u{i}": base[i] for i in range(n)}
    rows = [{"net_a": a, "net_b": b, "kind": kind,
             "similarity": map_similarity(maps[a], maps[b]),
             "similarity_null": map_similarity(maps[a], maps[b][perm]),
             "similarity_null_class": map_similarity(maps[a], maps[b][within])}
            for a, b, kind in pair_list(n)]
    trend = [{"net_a": f"t{i}", "net_b": f"t{j}", "epoch": e,
              "similarity": map_similarity(flat[names[i], e], flat[names[j], e])}
             for i, j in trained_pairs(n)
             for e in sorted(set(trained[i].checkpoints) & set(trained[j].checkpoints))]
    return pd.DataFrame(rows), pd.DataFrame(trend)


#: The class-structure measures of the per-network claims, and their label-shuffled null.
NULL_MEASURES = {"cos_intra_centred": lambda z, y: cs.class_cosines(z, y, center=True)[0],
                 "distance_ratio": cs.distance_ratio, "silhouette": cs.silhouette}


def label_null_table(flat: Mapping[tuple[str, int], np.ndarray], names: Sequence[str],
                     x: torch.Tensor, labels: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """The null of the per-network claims: the measures of :data:`NULL_MEASURES` with the class
    labels shuffled (one permutation for every network and state), per network ``names[i]``
    (``net`` i) at its first checkpoint (``init``) and its last (``final``), and of the raw
    inputs (``net`` -1, state ``raw``): what "class structure" scores when the classes are
    random groups of the same sizes."""
    shuffled = np.random.default_rng(seed).permutation(np.asarray(labels))
    rows = [{"net": -1, "state": "raw"} | {m: f(x.flatten(1).numpy(), shuffled)
                                           for m, f in NULL_MEASURES.items()}]
    for i, name in enumerate(names):
        epochs = sorted(e for key, e in flat if key == name)
        if not epochs:
            raise ValueError(f"no effective weights stored for {name!r}")
        for state, epoch in (("init", epochs[0]), ("final", epochs[-1])):
            rows.append({"net": i, "state": state} | {
                m: f(flat[name, epoch], shuffled) for m, f in NULL_MEASURES.items()})
    return pd.DataFrame(rows)


def joint_embedding(arrays: Sequence[np.ndarray], normalise: bool = True, seed: int = 0
                    ) -> list[np.ndarray]:
    """2-D PCA coordinates of every array (samples, features), with one PCA fitted on all of
    them together so that the axes are shared across checkpoints. ``normalise`` first centres
    each array over its samples and scales each row to unit norm: the geometry of the centred
    cosine, blind to the growth of the maps' common component and norm during training."""
    if normalise:
        arrays = [a - a.mean(axis=0) for a in arrays]
        arrays = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in arrays]
    pca = PCA(n_components=2, random_state=seed).fit(np.vstack(arrays))
    return [pca.transform(a) for a in arrays]


def class_templates(w: np.ndarray, labels: np.ndarray, n_out: int) -> np.ndarray:
    """Mean over the samples of class c of row c of W_eff(x) (the map that produces the class-c
    logit): (classes, inputs), in the order of the sorted class labels."""
    w = w.reshape(len(w), n_out, -1)
    classes = np.unique(labels)
    return np.stack([w[labels == c, int(c)].mean(axis=0) for c in classes])


# ---------------------------------------------------------------------------------------------
# the chapter's networks, tables and recorded numbers

MEASURE_COLUMNS = ["cos_intra_centred", "class_mean_cos", "distance_ratio", "silhouette", "knn"]
#: the measures of the metrics figure, as the page names them
METRIC_NAMES = {"cos_intra_centred": "cosine within class (centred)",
                "class_mean_cos": "cosine between class means",
                "distance_ratio": "distance ratio within / between", "silhouette": "silhouette",
                "knn": "k-NN accuracy", "test_acc": "test accuracy"}


def networks_by_bias(params: Mapping[str, Any]
                     ) -> tuple[dict[str, Trained], dict[str, tuple[list[Trained], list[Network]]]]:
    """({"<with bias|bias-free>, seed <s>": trained network}, {group: (trained, untrained)}):
    one group of networks per entry of ``biases``, with the checkpoints the chapter reads."""
    from repsim_utils.nets import recipes

    p = params
    runs, groups = {}, {}
    for bias in p["biases"]:
        recipe = recipes.classifier(p["dataset"], p["arch"], p["width"], p["depth"], p["epochs"],
                                    p["lr"], p["batch_size"], p["n_train"], device=p["device"],
                                    bias=bias, checkpoints=p["checkpoints"])
        label = "with bias" if bias else "bias-free"
        groups[label] = recipes.networks(recipe, p["seeds"], min_accuracy=p["min_accuracy"])
        for seed, run in zip(p["seeds"], groups[label][0], strict=True):
            runs[f"{label}, seed {seed}"] = run
    return runs, groups


def accuracy_table(runs: Mapping[str, Trained]) -> pd.DataFrame:
    return pd.DataFrame({"network": list(runs),
                         "test accuracy": [r.test_accuracy for r in runs.values()]})


def record_table(report: Any, table: pd.DataFrame) -> pd.DataFrame:
    """The class-structure table (with its ``bias`` column) and the identity check; returns
    the rows of W_eff(x)."""
    table["bias"] = np.where(table["network"].str.startswith("with bias"), "with bias",
                             "bias-free")
    report.table("ew_table", table, nulls="bias_share and identity_error exist for W_eff(x) only")
    weff = table[table.representation == W_EFF]
    report.number("ew_identity_error", float(weff["identity_error"].max()))
    return weff


def raw_structure(report: Any, x: torch.Tensor, labels: np.ndarray, k: int) -> dict[str, float]:
    """The class-structure measures of the raw inputs (the reference of every claim)."""
    raw = cs.measures(x.flatten(1).numpy(), labels, k=k)
    report.number("ew_knn_raw", raw["knn"])
    report.number("ew_silhouette_raw", raw["silhouette"])
    return raw


def ends_table(table: pd.DataFrame, raw: Mapping[str, float]) -> pd.DataFrame:
    """Mean measures per bias, representation and epoch, first and last checkpoint, beside the
    raw inputs."""
    ends = table[table.epoch.isin([table.epoch.min(), table.epoch.max()])]
    shown = ends.groupby(["bias", "representation", "epoch"])[MEASURE_COLUMNS].mean()
    shown.loc[("-", RAW_INPUT, 0), MEASURE_COLUMNS] = [raw[c] for c in MEASURE_COLUMNS]
    return shown


def record_ends(report: Any, weff: pd.DataFrame) -> None:
    """Mean measures of W_eff(x) at the first and the last checkpoint, per bias."""
    for (bias_label, epoch), d in weff.groupby(["bias", "epoch"]):
        if epoch not in (weff.epoch.min(), weff.epoch.max()):
            continue
        tag = "" if bias_label == "bias-free" else "_bias"
        when = "init" if epoch == weff.epoch.min() else "final"
        for col in ["cos_intra", "cos_inter", "cos_intra_centred", "cos_inter_centred",
                    "class_mean_cos", "distance_ratio", "silhouette", "knn", "bias_share"]:
            report.number(f"ew{tag}_{col}_{when}", float(d[col].mean()))


def verdict_group(groups: Mapping[str, Any]) -> str:
    """The group whose networks the verdicts judge: bias-free when there is one."""
    return "bias-free" if "bias-free" in groups else next(iter(groups))


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "ye2025linear"

CLAIMS = {c.id: c for c in [
    Claim("same_class_converge", PAPER,
          "Same-class effective weights converge over training",
          "centred within-class cosine of W_eff(x), end of training minus initialisation",
          Rule("above", 0.0)),
    Claim("classes_diverge", PAPER, "Different-class effective weights diverge",
          "distance ratio of W_eff(x) (mean distance within classes / between classes; "
          "distances ignore the map component all inputs share), end of training minus "
          "initialisation (a fall is divergence)", Rule("below", 0.0)),
    Claim("class_specific", PAPER,
          "W_eff(x) becomes class-specific: more class structure than the raw input and than at "
          "initialisation",
          "silhouette of W_eff(x) after training minus the larger of the raw input's and "
          "W_eff(x)'s at initialisation", Rule("above", 0.0)),
    Claim("seeds_converge", "study",
          "Effective weights of networks trained from different seeds converge to similar maps "
          "for the same input, beyond what the input's class explains",
          "mean cosine of W_eff(x) between two trained networks for the same input minus the "
          "same with the second network's inputs shuffled within each class",
          Rule("above", 0.0)),
    Claim("trained_more_alike", "study",
          "Trained networks have more similar effective weights for the same input than two "
          "untrained networks have",
          "mean cosine of W_eff(x) for the same input, trained pairs minus untrained pairs",
          Rule("above", 0.0)),
]}


def verdicts(table: pd.DataFrame, raw: dict[str, float], cross: pd.DataFrame, n: int,
             label_null: pd.DataFrame | None = None, **kwargs) -> list[Verdict]:
    """The chapter's verdicts (see :data:`CLAIMS`) from the per-network table of one bias
    setting (W_eff rows, networks in seed order), the raw-input measures, the cross-seed
    pair table and the labels-shuffled null of the per-network claims
    (:func:`label_null_table`, its networks in the same order); intervals are over
    networks."""
    w = table[table.representation == W_EFF]
    first = w[w.epoch == w.epoch.min()].sort_values("seed")
    last = w[w.epoch == w.epoch.max()].sort_values("seed")
    if len(first) != n or len(last) != n:
        raise ValueError(f"need one W_eff row per network at the first and last checkpoint, "
                         f"got {len(first)} and {len(last)} for {n} networks")

    def col(frame: pd.DataFrame, name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=np.float64)

    def mean(values: np.ndarray) -> stats.Estimate:
        return stats.mean_over_networks(values, **kwargs)

    def ref(name: str, values: np.ndarray, pairs: bool) -> Reference:
        return Reference.of(name, stats.over_networks(values, n, pairs, **kwargs))

    def shuffled(measure: str, statistic) -> Reference | None:
        """The claim's statistic computed again with the class labels shuffled."""
        if label_null is None:
            return None
        d = label_null.sort_values("net")
        init, final = (d[d.state == s][measure].to_numpy(np.float64) for s in ("init", "final"))
        if len(init) != n or len(final) != n:
            raise ValueError(f"the label null has {len(init)} networks, not {n}")
        return Reference.of("null: class labels shuffled",
                            mean(statistic(final, init, float(d[d.state == "raw"][measure]
                                                              .iloc[0]))))

    def change(final: np.ndarray, init: np.ndarray, _raw: float) -> np.ndarray:
        return final - init

    def specific(final: np.ndarray, init: np.ndarray, raw_value: float) -> np.ndarray:
        return final - np.maximum(init, raw_value)

    out = [
        CLAIMS["same_class_converge"].judge(
            mean(change(col(last, "cos_intra_centred"), col(first, "cos_intra_centred"), 0)),
            Reference.of("at initialisation", mean(col(first, "cos_intra_centred"))),
            shuffled("cos_intra_centred", change)),
        CLAIMS["classes_diverge"].judge(
            mean(change(col(last, "distance_ratio"), col(first, "distance_ratio"), 0)),
            Reference.of("at initialisation", mean(col(first, "distance_ratio"))),
            shuffled("distance_ratio", change),
            extra=(Reference("raw input x", raw["distance_ratio"]),),
            note="The statistic replaced the cosine between class means after the second "
                 "build's review: that cosine follows the map component all inputs share."),
        CLAIMS["class_specific"].judge(
            mean(specific(col(last, "silhouette"), col(first, "silhouette"),
                          raw["silhouette"])),
            Reference.of("W_eff(x) at initialisation", mean(col(first, "silhouette"))),
            shuffled("silhouette", specific),
            extra=(Reference("raw input x", raw["silhouette"]),)),
    ]
    sides = pair_arrays(cross, "similarity", n)
    within = pair_arrays(cross, "similarity_null_class", n)
    shuffled = pair_arrays(cross, "similarity_null", n)
    out.append(CLAIMS["seeds_converge"].judge(
        stats.over_networks(sides.tt - within.tt, n, True, **kwargs),
        ref("trained vs untrained, same input", sides.tu, False),
        ref("trained vs trained, inputs shuffled within each class", within.tt, True),
        uu=ref("untrained vs untrained, same input minus the same within-class null",
               sides.uu - within.uu, True),
        extra=(ref("trained vs trained, same input", sides.tt, True),
               ref("trained vs trained, inputs shuffled across classes", shuffled.tt, True))))
    out.append(training_verdict(
        CLAIMS["trained_more_alike"], sides, n, reduce=stats.identity, where="same input",
        null=ref("trained vs trained, inputs shuffled within each class", within.tt, True),
        **kwargs))
    return out
