"""The model-stitching chapter's pipeline: does one network's layer serve another network's
back as well as the back's own layer? Stitching (:mod:`repsim_utils.science.stitching`) of every
ordered pair of trained networks at every hidden layer, by direct matching and by task-loss
matching, with the controls that can fail, as tidy tables; and the claims the chapter tests.

Senders of one receiver t_j at its layer l (:data:`SENDERS`):

- another trained network t_i, i != j, at layer l (the question: every ordered pair);
- the untrained network u_j at layer l (the untrained sender: a stitch can also learn a map
  from features no training shaped);
- class-structured noise (Smith et al. 2025): a stitch that reads only the class off its input;
- the next trained network t_{j+1} at another layer (l - 1, or l + 1 for the first), where the
  shapes allow an affine stitch (MLPs; a conv layer of another depth has another resolution);
- t_j itself at layer l: the ceiling, a sanity check (direct matching gives the identity).

Two untrained networks are not a reference here: the penalty is measured on the receiver's task,
and an untrained receiver has no accuracy to lose, so the pair scores about 0 by construction.
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
from repsim_utils.inference.pairs import identification_credit, trained_pairs
from repsim_utils.inference.verdicts import Claim, Reference, Rule, Verdict
from repsim_utils.nets.data import Dataset
from repsim_utils.nets.models import Network
from repsim_utils.science import stitching as st

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAINED = "trained sender"
UNTRAINED = "untrained sender"
NOISE = "class-structured noise"
DEPTH = "other layer"
SELF = "itself"
#: The kinds of sender, in the order of the tables and figures.
SENDERS = (TRAINED, UNTRAINED, NOISE, DEPTH, SELF)
DIRECT, TASK = "direct matching", "task-loss matching"
METHODS = (DIRECT, TASK)
COLUMNS = ["layer", "sender_layer", "sender", "receiver", "kind", "method", "accuracy", "loss",
           "own_accuracy", "own_loss", "penalty", "loss_penalty"]


def other_layer(layers: Sequence[str], layer: str) -> str:
    """The sender layer of the depth control: the previous hidden layer, or the next one for
    the first."""
    k = list(layers).index(layer)
    return layers[k - 1] if k > 0 else layers[1]


def fit_and_test(data: Dataset, n_fit: int = 0, seed: int = 0
                 ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) on which stitches are fitted, the training split (a random ``n_fit`` of
    it; 0: all), and those on which they are tested, the test split."""
    fit = data.subset(n_train=n_fit or None, seed=seed)
    return (fit.x_train, fit.y_train), (data.x_test, data.y_test)


def _evaluate(back: nn.Module, stitch: st.Stitch, h: torch.Tensor, y: torch.Tensor
              ) -> tuple[float, float]:
    return st.accuracy_and_loss(nn.Sequential(stitch, back), h, y)


def stitch_table(trained: Sequence[Network], untrained: Sequence[Network], layers: Sequence[str],
                 fit: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                 n_classes: int, epochs: int = 2, lr: float = 1e-3, max_rows: int = 20_000,
                 seed: int = 0) -> pd.DataFrame:
    """One row per (layer, sender, receiver, method): the stitched network's held-out accuracy
    and cross-entropy, the receiver's own, and the penalties (:func:`stitching.penalty`).
    Stitches are fitted on ``fit`` (inputs, labels; conv fits on at most ``max_rows``
    (input, position) rows) and tested on ``test``; task-loss matching trains each direct
    match for ``epochs`` epochs at learning rate ``lr`` (0 epochs: direct matching only).
    Senders: :data:`SENDERS`."""
    n = len(trained)
    if n < 3 or len(untrained) != n:
        raise ValueError(f"need at least 3 trained networks and one untrained per trained one, "
                         f"got {n} and {len(untrained)}")
    if len(layers) < 2:
        raise ValueError("the depth control needs at least 2 hidden layers")
    (x_fit, y_fit), (x_test, y_test) = fit, test
    methods = METHODS if epochs > 0 else (DIRECT,)
    rows: list[dict] = []

    def outputs(net: Network, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        front = st.split(net, layer)[0]
        return st.features(front, x_fit), st.features(front, x_test)

    jobs = [(layer, j) for layer in layers for j in range(n)]
    current: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    fits: dict[tuple[str, str], st.AffineFit] = {}
    current_layer = None
    for layer, j in track(jobs, "stitches"):
        if layer != current_layer:  # every network's outputs at this layer, once
            current = {f"t{i}": outputs(t, layer) for i, t in enumerate(trained)}
            current |= {f"u{i}": outputs(u, layer) for i, u in enumerate(untrained)}
            current_layer, fits = layer, {}
        back = st.split(trained[j], layer)[1]
        own_fit, own_test = current[f"t{j}"]
        own = st.accuracy_and_loss(back, own_test, y_test)
        noise = st.ClassNoise.like(own_fit, n_classes, seed + j)
        senders = [(f"t{i}", layer, TRAINED, current[f"t{i}"]) for i in range(n) if i != j]
        senders += [(f"u{j}", layer, UNTRAINED, current[f"u{j}"]),
                    ("noise", layer, NOISE, (noise.draw(y_fit, seed + 1), noise.draw(y_test,
                                                                                    seed + 2)))]
        other, nxt = other_layer(layers, layer), trained[(j + 1) % n]
        probe = st.features(st.split(nxt, other)[0], x_fit[:1])  # its shape, from one input
        if st.check_stitchable(probe.shape[1:], own_fit.shape[1:]):
            senders.append((f"t{(j + 1) % n}", other, DEPTH, outputs(nxt, other)))
        senders.append((f"t{j}", layer, SELF, (own_fit, own_test)))
        for name, sender_layer, kind, (h_fit, h_test) in senders:
            key = (name, sender_layer)  # a network's factorisation serves all its receivers
            if kind == NOISE or key not in fits:
                fits[key] = st.sender_fit(h_fit, max_rows, seed)
            stitch = st.direct_match(h_fit, own_fit, max_rows, seed, fits[key])
            for method in methods:
                if method == TASK:
                    stitch = st.train_stitch(stitch, h_fit, back, y_fit, epochs, seed, lr)
                got = _evaluate(back, stitch, h_test, y_test)
                pen = st.penalty(own, got)
                rows.append({"layer": layer, "sender_layer": sender_layer, "sender": name,
                             "receiver": f"t{j}", "kind": kind, "method": method,
                             "accuracy": got[0], "loss": got[1], "own_accuracy": own[0],
                             "own_loss": own[1], "penalty": pen[0], "loss_penalty": pen[1]})
    return pd.DataFrame(rows, columns=COLUMNS)


def identification_table(trained: Sequence[Network], untrained: Sequence[Network],
                         layers: Sequence[str], fit: tuple[torch.Tensor, torch.Tensor],
                         test: tuple[torch.Tensor, torch.Tensor], max_rows: int = 20_000,
                         seed: int = 0) -> pd.DataFrame:
    """Layer identification by stitching (direct matching): for every pair of trained networks
    (i, j), each layer k of one is stitched into every layer l of the other; the credit of
    :func:`~repsim_utils.inference.pairs.identification_credit` (the best-stitching layer is
    the corresponding one; ties share the credit) with similarity = - penalty, both directions.
    Beside it, the same with the untrained networks u_i and u_j as senders into t_j and t_i
    (``kind`` :data:`UNTRAINED`): what the layers' shapes alone let a stitch identify. An
    empty table where some layers have other positions (conv layers of other depths)."""
    (x_fit, _), (x_test, y_test) = fit, test
    shapes = {st.features(st.split(trained[0], la)[0], x_fit[:1]).shape[1:] for la in layers}
    if len({s[1:] for s in shapes}) > 1:
        return pd.DataFrame(columns=["net_a", "net_b", "kind", "accuracy"])
    nets = {f"t{i}": t for i, t in enumerate(trained)} | {f"u{i}": u
                                                          for i, u in enumerate(untrained)}
    split = {(name, la): st.split(net, la) for name, net in nets.items() for la in layers}
    h = {key: (st.features(f, x_fit), st.features(f, x_test)) for key, (f, _) in split.items()}
    own = {(name, la): st.accuracy_and_loss(split[name, la][1], h[name, la][1], y_test)[0]
           for name in nets if name.startswith("t") for la in layers}

    fits = {key: st.sender_fit(fit_out, max_rows, seed) for key, (fit_out, _) in h.items()}

    def similarity(sender: str, receiver: str) -> np.ndarray:
        out = np.empty((len(layers), len(layers)))
        for k, lk in enumerate(layers):
            for m, lm in enumerate(layers):
                stitch = st.direct_match(h[sender, lk][0], h[receiver, lm][0], max_rows, seed,
                                         fits[sender, lk])
                got = _evaluate(split[receiver, lm][1], stitch, h[sender, lk][1], y_test)
                out[k, m] = -(own[receiver, lm] - got[0])
        return out

    rows = []
    for i, j in track(trained_pairs(len(trained)), "layer identification by stitching"):
        for kind, (a, b) in ((TRAINED, (f"t{i}", f"t{j}")), (UNTRAINED, (f"u{i}", f"u{j}"))):
            forth = similarity(a, f"t{j}")
            back = similarity(b, f"t{i}")
            rows.append({"net_a": f"t{i}", "net_b": f"t{j}", "kind": kind,
                         "accuracy": identification_credit(forth, back)})
    return pd.DataFrame(rows)


def _index(name: str) -> int:
    return int(name[1:])


def penalty_arrays(table: pd.DataFrame, layers: Sequence[str], n: int, method: str,
                   column: str = "penalty") -> dict[str, np.ndarray]:
    """{kind: values} of ``column`` for one method: the trained senders (layers, n, n), entry
    [l, i, j] from t_i into t_j (NaN on the diagonal; ordered pairs), every other kind
    (layers, n) by receiver. A kind with no row (the depth control of a conv net) is left
    out; a kind with some rows missing is an error."""
    d = table[table.method == method]
    out: dict[str, np.ndarray] = {}
    for kind in SENDERS:
        k = d[d.kind == kind]
        if k.empty:
            continue
        shape = (len(layers), n, n) if kind == TRAINED else (len(layers), n)
        values = np.full(shape, np.nan)
        for layer, sender, receiver, v in k[["layer", "sender", "receiver", column]].itertuples(
                index=False):
            li, j = list(layers).index(layer), _index(receiver)
            if kind == TRAINED:
                values[li, _index(sender), j] = v
            else:
                values[li, j] = v
        filled = values[:, ~np.eye(n, dtype=bool)] if kind == TRAINED else values
        if np.isnan(filled).any():
            raise ValueError(f"{method}, {kind}: some (layer, receiver) rows are missing")
        out[kind] = values
    return out


def summary_table(table: pd.DataFrame, layers: Sequence[str], n: int) -> pd.DataFrame:
    """Per layer, method, statistic (accuracy penalty, cross-entropy penalty) and kind of
    sender: the mean penalty with its 95% interval over networks (the trained senders: over
    ordered pairs of networks), and for every control the effect control - trained sender
    (> 0: the trained sender stitches better) with its interval."""
    rows = []
    for method in METHODS:
        if not (table.method == method).any():
            continue
        for column in ("penalty", "loss_penalty"):
            arrays = penalty_arrays(table, layers, n, method, column)
            tt = arrays[TRAINED]
            for kind, values in arrays.items():
                for li, layer in enumerate(layers):
                    pairs = kind == TRAINED
                    e = stats.over_networks(values[li], n, pairs)
                    row = {"layer": layer, "method": method, "statistic": column, "kind": kind,
                           "value": e.value, "low": e.low, "high": e.high}
                    if not pairs:
                        eff = stats.effect_over_networks(tt[li], values[li], n, sign=-1.0)
                        row |= {"effect": eff.value, "effect_low": eff.low,
                                "effect_high": eff.high}
                    rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "bansal2021revisiting"

#: The largest accuracy penalty the study calls "little loss", fixed before the runs: 5
#: percentage points (Bansal et al. report penalties of about a point or less at their scale;
#: the study's threshold is its own, and the verdict reports half and double of it).
LITTLE_LOSS = 0.05

CLAIMS = {c.id: c for c in [
    Claim("seeds_stitch_with_little_loss", PAPER,
          "networks trained from different seeds stitch with little loss at every layer",
          "largest over layers of the mean accuracy penalty, trained senders",
          Rule("below", LITTLE_LOSS), own_threshold=True),
    Claim("needs_a_trained_sender", "study",
          "a trained sender stitches better than an untrained one, in every layer",
          "smallest over layers of the untrained sender's penalty minus the trained one's",
          Rule("above", 0.0)),
    Claim("beats_class_noise", "study",
          "a trained sender stitches better than noise with the class structure of the inputs, "
          "in every layer",
          "smallest over layers of the noise sender's penalty minus the trained one's",
          Rule("above", 0.0)),
    Claim("prefers_the_same_layer", "study",
          "the same layer of another network stitches better than another layer of it, in "
          "every layer",
          "smallest over layers of the other layer's penalty minus the same layer's",
          Rule("above", 0.0)),
    Claim("identifies_layers", "study",
          "stitching identifies the corresponding layer: each layer of one network stitches "
          "best into the same layer of another",
          "layer-identification accuracy by direct-matching stitches, trained senders minus "
          "untrained senders into the same receivers",
          Rule("above", 0.0)),
    Claim("itself_is_free", "study",
          "a network directly matched to itself loses nothing (the stitch is the identity)",
          "largest over layers of the mean accuracy penalty of a network stitched to itself",
          Rule("below", 0.005), kind="sanity"),
]}


def verdict_method(table: pd.DataFrame) -> str:
    """The method the verdicts judge: task-loss matching where the run trained stitches (Bansal
    et al.'s), else direct matching."""
    return TASK if (table.method == TASK).any() else DIRECT


def identification_sentence(ident: pd.DataFrame) -> str:
    """What :func:`identification_table` found, in words: the mean accuracy of trained and of
    untrained senders over pairs, or why there is none."""
    if ident.empty:
        return ("No layer identification by stitching: the layers have other positions (conv "
                "layers of other depths), so no affine stitch joins a layer to another depth.")
    mean = ident.groupby("kind")["accuracy"].mean()
    return (f"Mean layer-identification accuracy over {int((ident.kind == TRAINED).sum())} pairs: "
            f"{mean[TRAINED]:.3f} from trained senders, {mean[UNTRAINED]:.3f} from untrained "
            f"senders into the same receivers.")


def identification_verdict(ident: pd.DataFrame, n: int, n_layers: int) -> Verdict:
    """Layer identification by stitching (:func:`identification_table`): the accuracy of trained
    senders minus that of untrained senders into the same receivers, pair by pair, with its
    interval over networks; "not testable" where no stitch between layers of other depths
    exists, or where untrained senders already identify every layer."""
    claim = CLAIMS["identifies_layers"]
    if ident.empty:
        return claim.judge(stats.Estimate(0.0, 0.0, 0.0), untestable=(
            "the layers have other positions (conv layers of other depths), so no affine "
            "stitch joins a layer to another depth."))
    m = {}
    for kind in (TRAINED, UNTRAINED):
        v = np.full((n, n), np.nan)
        for a, b, acc in ident[ident.kind == kind][["net_a", "net_b", "accuracy"]].itertuples(
                index=False):
            v[_index(a), _index(b)] = v[_index(b), _index(a)] = acc
        m[kind] = v
    off = ~np.eye(n, dtype=bool)
    untestable = ("untrained senders identify every layer too, so no accuracy of trained "
                  "senders could exceed the reference." if np.all(m[UNTRAINED][off] == 1) else "")
    return claim.judge(
        stats.over_networks(m[TRAINED] - m[UNTRAINED], n, True),
        baseline=Reference.of("accuracy, untrained senders",
                              stats.over_networks(m[UNTRAINED], n, True)),
        extra=(Reference.of("accuracy, trained senders", stats.over_networks(m[TRAINED], n, True)),
               Reference("chance", 1 / n_layers)), untestable=untestable,
        note="Stitches by direct matching.")


def verdicts(table: pd.DataFrame, layers: Sequence[str], n: int) -> list[Verdict]:
    """The chapter's verdicts (:data:`CLAIMS`) on the accuracy penalties of
    :func:`verdict_method`, each with the controls beside it (layer identification:
    :func:`identification_verdict`)."""
    method = verdict_method(table)
    a = penalty_arrays(table, layers, n, method)
    tt = a[TRAINED]

    def ref(name: str, kind: str) -> Reference:
        return Reference.of(f"{name} (worst layer)",
                            stats.over_networks(a[kind], n, False, stats.strongest))

    refs = (ref("untrained sender", UNTRAINED), ref("class-structured noise", NOISE))
    note = f"Stitches by {method}."
    out = [CLAIMS["seeds_stitch_with_little_loss"].judge(
        stats.over_networks(tt, n, True, stats.strongest), baseline=refs[0], null=refs[1],
        extra=(ref("itself", SELF),), note=note)]
    for cid, kind in (("needs_a_trained_sender", UNTRAINED), ("beats_class_noise", NOISE),
                      ("prefers_the_same_layer", DEPTH)):
        if kind not in a:
            effect = stats.Estimate(0.0, 0.0, 0.0)
            out.append(CLAIMS[cid].judge(effect, untestable=(
                "no layer of another depth has the same positions (a conv layer of another "
                "depth has another resolution), so no affine stitch exists."), note=note))
            continue
        effect = stats.effect_over_networks(tt, a[kind], n, stats.weakest, sign=-1.0)
        out.append(CLAIMS[cid].judge(effect, baseline=refs[0], null=refs[1],
                                     extra=(Reference.of("trained senders (worst layer)",
                                                         stats.over_networks(
                                                             tt, n, True, stats.strongest)),),
                                     note=note))
    out.append(CLAIMS["itself_is_free"].judge(
        stats.over_networks(penalty_arrays(table, layers, n, DIRECT)[SELF], n, False,
                            stats.strongest), note="Stitches by direct matching."))
    return out


# ---------------------------------------------------------------------------------------------
# figures

def penalty_plot(summary: pd.DataFrame, statistic: str = "penalty") -> Figure:
    """Mean penalty per layer and kind of sender, one panel per method, with 95% intervals over
    networks."""
    import matplotlib.pyplot as plt

    d = summary[summary.statistic == statistic]
    methods = [m for m in METHODS if (d.method == m).any()]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.4), sharey=True,
                             squeeze=False)
    layers = list(dict.fromkeys(d.layer))
    x = np.arange(len(layers))
    kinds = [k for k in SENDERS if (d.kind == k).any()]
    for ax, method in zip(axes[0], methods, strict=True):
        for k, kind in enumerate(kinds):
            r = d[(d.method == method) & (d.kind == kind)].set_index("layer").loc[layers]
            off = (k - (len(kinds) - 1) / 2) * 0.1
            ax.errorbar(x + off, r.value, yerr=[r.value - r.low, r.high - r.value], marker="o",
                        capsize=3, label=kind)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xticks(x, layers)
        ax.set_title(method)
        ax.set_xlabel("layer")
    axes[0, 0].set_ylabel("accuracy penalty" if statistic == "penalty" else
                          "cross-entropy penalty")
    axes[0, -1].legend(title="sender", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    return fig


__all__ = ["CLAIMS", "DEPTH", "DIRECT", "LITTLE_LOSS", "METHODS", "NOISE", "SELF", "SENDERS",
           "TASK", "TRAINED", "UNTRAINED", "fit_and_test", "identification_sentence",
           "identification_table",
           "identification_verdict", "other_layer", "penalty_arrays",
           "penalty_plot", "stitch_table", "summary_table", "verdict_method", "verdicts"]
