"""The geometry chapter's pipeline (Brandon, Chadwick & Pellegrino 2025): tanh MLPs trained on
Boolean gates of thresholded continuous coordinates, in four conditions (untrained, lazy, rich,
rich with input noise), and the pullback geometry of their hidden layers on a grid of the input
manifold, as tidy tables built on :mod:`repsim_utils.science.geometry`.

Rich vs lazy: a small initial weight scale gives rich (feature-learning) training; the centred,
output-scaled model f = alpha (h(x; w) - h(x; w0)) trained with loss / alpha^2 and a large
alpha gives lazy training (Chizat, Oyallon & Bach 2019). Whether a network *is* lazy is
measured, not assumed: its relative weight change and the alignment of its tangent kernel with
the kernel at initialisation.

Curvature has units of 1/length^2 and diverges where the metric is nearly degenerate, so the
summaries are scale-free or robust: the total absolute curvature (integral of |K| dA over the
domain, dimensionless), medians, and the share of that integral carried by the top 1% of grid
points. Each trained network's own initialisation is the baseline of what training changed;
the cross-seed comparisons use independent untrained networks at the rich condition's scale
(:func:`baseline_geometry`). The chapter's claims and verdicts are at the end of the module.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from repsim_utils.base.progress import track
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import (
    BOTH_UNTRAINED,
    NULL,
    TRAINED,
    identification_credit,
    identification_matrices,
    layer_arrays,
    pair_list,
    trained_pairs,
)
from repsim_utils.inference.verdicts import (
    Claim,
    Reference,
    Rule,
    Verdict,
    identification_verdict,
    training_verdict,
)
from repsim_utils.nets.data import GATE_THRESHOLDS, gate_labels
from repsim_utils.nets.gates import CONDITIONS, Setup, grid  # noqa: F401 (the notebook's)
from repsim_utils.nets.models import Network
from repsim_utils.nets.recipes import UNTRAINED_OFFSET
from repsim_utils.nets.zoo import untrained
from repsim_utils.science import geometry
from repsim_utils.science.regime import kernel_alignment, metric_change, weight_change


def near_thresholds(theta: np.ndarray | torch.Tensor, band: float,
                    thresholds: tuple[float, float] = GATE_THRESHOLDS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the points theta (points, 2) within ``band`` of the threshold line
    theta_1 = a, and of theta_2 = b."""
    t = np.asarray(theta)
    return np.abs(t[:, 0] - thresholds[0]) < band, np.abs(t[:, 1] - thresholds[1]) < band


def layer_metrics(net: Network, setup: Setup, theta: torch.Tensor, layers: Sequence[str]
                  ) -> dict[str, torch.Tensor]:
    """The pullback metric (points, 2, 2) of each layer at the points theta."""
    maps = geometry.layer_maps(net, setup.embedding(), tuple(layers))
    with torch.no_grad():
        return {name: geometry.pullback_metric(f, theta) for name, f in maps.items()}


def layer_geometry(net: Network, setup: Setup, theta: torch.Tensor,
                   metrics: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Per grid point and hidden layer of ``metrics`` (from :func:`layer_metrics`): volume
    element sqrt(det g), Gaussian curvature K, the top eigenvalue of g and its unit
    eigenvector (sign chosen with top_x >= 0), and the largest squared stretch the layer adds
    to the previous one (generalised eigenvalue of (g_l, g_{l-1}); the first layer relative to
    the input's own metric)."""
    maps = geometry.layer_maps(net, setup.embedding(), tuple(metrics))
    frames = []
    with torch.no_grad():  # the input's own metric: the layer before the first
        g_prev = geometry.pullback_metric(setup.embedding(), theta)
    for name, f in maps.items():
        g = metrics[name]
        with torch.no_grad():
            k = geometry.gaussian_curvature(f, theta)
        vals, vecs = geometry.metric_eigen(g)
        stretch = geometry.relative_stretch(g, g_prev)[:, -1]
        g_prev = g
        frames.append(pd.DataFrame({
            "relative_stretch": stretch.numpy(),
            "layer": name, "theta1": theta[:, 0].numpy(), "theta2": theta[:, 1].numpy(),
            "volume": geometry.volume_element(g).numpy(), "curvature": k.numpy(),
            "top_eigenvalue": vals[:, -1].numpy(), "top_x": vecs[:, 0, -1].abs().numpy(),
            # an eigenvector is defined up to sign: the one with a non-negative x component
            "top_y": (vecs[:, 1, -1] * torch.where(vecs[:, 0, -1] < 0, -1.0, 1.0)).numpy()}))
    return pd.concat(frames, ignore_index=True)


def summary_numbers(geom: pd.DataFrame, band: float) -> pd.DataFrame:
    """Per layer: mean volume element near / far from the thresholds, the same for the stretch
    the layer adds to the previous one; the total absolute curvature, integral of |K| dA with
    dA = sqrt(det g) dtheta^2 over the grid (dimensionless, so comparable across conditions),
    the share of it carried by the top 1% of grid points and by the points near the thresholds
    (``k_near_share``: where curvature concentrates), the median |K| near / far; and the
    alignment of the top eigenvector with the relevant axis near each threshold (|v . e1| near
    theta_1 = a only, |v . e2| near theta_2 = b only; 1 = aligned). The grid must be regular."""
    rows = []
    for layer, d in geom.groupby("layer", sort=False):
        t = d[["theta1", "theta2"]].to_numpy()
        near_a, near_b = near_thresholds(t, band)
        near = near_a | near_b
        step = np.diff(np.unique(t[:, 0]))
        cell = float(step.mean()) * float(np.diff(np.unique(t[:, 1])).mean())
        absk = d["curvature"].abs().to_numpy()
        vol = d["volume"].to_numpy()
        mass = absk * vol * cell
        top = np.sort(mass)[::-1][: max(1, len(mass) // 100)]
        rows.append({
            "layer": layer,
            "volume_near_far": vol[near].mean() / vol[~near].mean(),
            "stretch_near_far": (d["relative_stretch"].to_numpy()[near].mean()
                                 / d["relative_stretch"].to_numpy()[~near].mean()),
            "total_abs_k": float(mass.sum()),
            "top1_share": float(top.sum() / mass.sum()) if mass.sum() > 0 else 0.0,
            "k_near_share": float(mass[near].sum() / mass.sum()) if mass.sum() > 0 else 0.0,
            "median_abs_k_near_far": np.median(absk[near]) / np.median(absk[~near]),
            "align_a": d["top_x"].to_numpy()[near_a & ~near_b].mean(),
            "align_b": np.abs(d["top_y"].to_numpy()[near_b & ~near_a]).mean()})
    return pd.DataFrame(rows)


def accuracy_on(net: Network, setup: Setup, theta: torch.Tensor) -> float:
    """Accuracy of the sign of the output against the gate labels at coordinates theta."""
    gate = setup.task.split("_")[0]
    labels = torch.from_numpy(gate_labels(gate, theta.numpy()))
    with torch.no_grad():
        out = net(setup.embedding()(theta)).squeeze(-1)
    return float(((out > 0).long() == labels).double().mean())


def generalisation(net: Network, setup: Setup, n: int, band: float, seed: int = 0
                   ) -> dict[str, float]:
    """Accuracy on held-out inputs defined explicitly: ``n`` fresh uniform points of the
    training domain [-1, 1]^2 (``uniform``), ``n`` of them within ``band`` of a threshold (the
    hard part of interpolation), and, on the square only, ``n`` points of the extrapolation ring
    1 < max|theta_i| <= 1.5 (NaN on the torus, whose angles wrap)."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(20 * n, 2, generator=g, dtype=torch.float64) * 2 - 1
    near_a, near_b = near_thresholds(pts, band)
    near = pts[torch.from_numpy(near_a | near_b)][:n]
    out = {"uniform": accuracy_on(net, setup, pts[:n]),
           "near_threshold": accuracy_on(net, setup, near)}
    if setup.manifold == "square":
        ring = torch.rand(20 * n, 2, generator=g, dtype=torch.float64) * 3 - 1.5
        ring = ring[ring.abs().max(1).values > 1][:n]
        out["extrapolation"] = accuracy_on(net, setup, ring)
    else:
        out["extrapolation"] = float("nan")
    return out


def study(setup: Setup, seeds: Sequence[int], theta: torch.Tensor, band: float,
          n_heldout: int = 2000, n_kernel: int = 200
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """For every condition and seed: (regime and accuracy table, geometry per grid point,
    summary numbers per layer). Summaries are computed for each trained network
    (``state`` "trained") and for its own initialisation (``state`` "init"); the untrained
    condition has only "init". The regime table holds the relative weight change, the
    tangent-kernel alignment with initialisation on ``n_kernel`` grid points, the metric
    change of every layer and the held-out accuracies."""
    layers = tuple(f"act{i}" for i in range(1, setup.depth + 1))
    regime, geoms, sums = [], [], []
    jobs = [(c, s) for c in CONDITIONS for s in seeds]
    kernel_points = theta[np.linspace(0, len(theta) - 1, min(n_kernel, len(theta))).astype(int)]
    for condition, seed in track(jobs, "conditions"):
        net, init = setup.network(condition, seed)
        row = {"condition": condition, "seed": seed, "weight_change": weight_change(net, init),
               "kernel_alignment": kernel_alignment(net, init,
                                                    setup.embedding()(kernel_points))}
        metrics = layer_metrics(net, setup, theta, layers)
        init_metrics = metrics if init is net else layer_metrics(init, setup, theta, layers)
        row |= {f"metric_change_{la}": metric_change(metrics[la], init_metrics[la])
                for la in layers}
        row |= generalisation(net, setup, n_heldout, band, seed=seed)
        regime.append(row)
        geom = layer_geometry(net, setup, theta, metrics)
        state = "init" if init is net else "trained"
        sums.append(summary_numbers(geom, band).assign(condition=condition, seed=seed,
                                                       state=state))
        geoms.append(geom.assign(condition=condition, seed=seed))
        if init is not net:
            g0 = layer_geometry(init, setup, theta, init_metrics)
            sums.append(summary_numbers(g0, band).assign(condition=condition, seed=seed,
                                                         state="init"))
    return pd.DataFrame(regime), pd.concat(geoms, ignore_index=True), pd.concat(
        sums, ignore_index=True)


#: The condition label of the independent untrained networks at the rich scale.
BASELINE = "untrained (rich scale)"


def baseline_geometry(setup: Setup, seeds: Sequence[int], theta: torch.Tensor) -> pd.DataFrame:
    """Geometry per grid point of independent untrained networks at the rich condition's
    initial scale (seed + :data:`UNTRAINED_OFFSET`, never a trained network's own
    initialisation), condition :data:`BASELINE`: the cross-seed references uu and tu."""
    layers = tuple(f"act{i}" for i in range(1, setup.depth + 1))
    recipe = setup.recipe("rich")
    geoms = []
    for seed in track(list(seeds), "untrained baselines"):
        net = copy.deepcopy(untrained(recipe, seed + UNTRAINED_OFFSET)).double().eval()
        geoms.append(layer_geometry(net, setup, theta, layer_metrics(net, setup, theta, layers))
                     .assign(condition=BASELINE, seed=seed))
    return pd.concat(geoms, ignore_index=True)


def cross_seed_table(geom: pd.DataFrame, condition: str, seeds: Sequence[int],
                     base: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (layer, pair of networks): how alike two networks' metric fields are on the same
    grid: the correlation of their log volume-element maps and the mean |cos| between their
    most stretched directions. Pairs (:func:`~repsim_utils.inference.pairs.pair_list` with the
    null): every two seeds of ``condition`` (``t{i}``), every two untrained networks of
    ``base`` (``u{i}``, :func:`baseline_geometry`), each trained one with untrained network i,
    and trained network i with trained network i + 1 whose grid points are shuffled (``s``)."""
    both = pd.concat([geom[geom.condition == condition], base], ignore_index=True)
    n = len(seeds)
    rows = []
    for layer in geom["layer"].unique():
        fields = {}
        for i, si in enumerate(seeds):
            for prefix, cond in (("t", condition), ("u", BASELINE)):
                d = both[(both.condition == cond) & (both.seed == si) & (both.layer == layer)]
                fields[f"{prefix}{i}"] = (np.log(d["volume"].to_numpy()),
                                          d[["top_x", "top_y"]].to_numpy())
        for i in range(n):
            v, d = fields[f"t{i}"]
            perm = np.random.default_rng(seed + i).permutation(len(v))
            fields[f"s{i}"] = (v[perm], d[perm])
        for a, b, kind in pair_list(n, null=True):
            (va, da), (vb, db) = fields[a], fields[b]
            rows.append({"layer": layer, "net_a": a, "net_b": b, "kind": kind,
                         "log_volume_corr": float(np.corrcoef(va, vb)[0, 1]),
                         "direction_agreement": float(np.abs((da * db).sum(1)).mean())})
    return pd.DataFrame(rows)


def layer_identification(geom: pd.DataFrame, condition: str, seeds: Sequence[int],
                         base: pd.DataFrame | None = None, seed: int = 0) -> pd.DataFrame:
    """Layer identification (Kornblith et al. 2019) by the metric fields: for every pair of
    networks of ``condition`` and every layer of one, is the layer of the other whose log
    volume-element map correlates best the corresponding one? Per pair:
    :func:`~repsim_utils.inference.pairs.identification_credit` (both directions, ties split).
    Also for every pair of untrained networks of ``base`` and for every trained pair with the
    second network's grid points shuffled (the same order in every layer: the null of the
    argmax)."""
    layers = list(geom["layer"].unique())
    both = geom if base is None else pd.concat([geom, base], ignore_index=True)

    def logvol(cond: str, s: int, layer: str) -> np.ndarray:
        d = both[(both.condition == cond) & (both.seed == s) & (both.layer == layer)]
        return np.log(d["volume"].to_numpy())

    def credit(va: list[np.ndarray], vb: list[np.ndarray]) -> float:
        corr = np.array([[np.corrcoef(x, y)[0, 1] for y in vb] for x in va])
        return identification_credit(corr, corr.T)

    rows = []
    for i, j in trained_pairs(len(seeds)):
        ta = [logvol(condition, seeds[i], la) for la in layers]
        tb = [logvol(condition, seeds[j], la) for la in layers]
        perm = np.random.default_rng(seed + j).permutation(len(tb[0]))
        rows.append({"net_a": f"t{i}", "net_b": f"t{j}", "kind": TRAINED,
                     "accuracy": credit(ta, tb)})
        rows.append({"net_a": f"t{i}", "net_b": f"t{j}", "kind": NULL,
                     "accuracy": credit(ta, [v[perm] for v in tb])})
        if base is not None:
            rows.append({"net_a": f"u{i}", "net_b": f"u{j}", "kind": BOTH_UNTRAINED,
                         "accuracy": credit([logvol(BASELINE, seeds[i], la) for la in layers],
                                            [logvol(BASELINE, seeds[j], la) for la in layers])})
    return pd.DataFrame(rows)


def identification_sentence(ident: pd.DataFrame, n: int, n_layers: int, **kwargs) -> str:
    """The layer-identification accuracies of rich pairs, untrained pairs and the shuffled null,
    each with its 95% interval over networks, as one sentence."""
    kinds = ((TRAINED, "rich pairs"), (BOTH_UNTRAINED, "untrained pairs"),
             (NULL, "grid points of one network shuffled"))
    acc = identification_matrices(ident, n)
    parts = [f"{name} {stats.over_networks(acc[k], n, True, **kwargs):.3f}"
             for k, name in kinds if k in acc]
    return (f"Layer identification by the log volume-element maps (accuracy over pairs, 95% "
            f"intervals over networks): {'; '.join(parts)}; one over the number of layers "
            f"{1 / n_layers:.3f}.")


# ---------------------------------------------------------------------------------------------
# claims and verdicts

PAPER = "brandon2025emergent"
#: A ratio (near / far) that differs by less than 25% between two conditions is "no contrast".
CURVATURE_MARGIN = float(np.log(1.25))
#: A share of curvature near the thresholds that differs by less than 0.05 is "no contrast".
SHARE_MARGIN = 0.05

CLAIMS = {c.id: c for c in [
    Claim("lazy_is_lazy", "chizat2019lazy",
          "The lazy condition trains lazily (the precondition of every rich-vs-lazy claim)",
          "relative weight change |w - w0| / |w0| of the lazy networks", Rule("below", 0.05),
          kind="precondition", own_threshold=True),
    Claim("first_layer_discretises", PAPER,
          "The first layer discretises each input feature: its stretch concentrates on the "
          "thresholds",
          "log of the stretch added near / far from the thresholds by the first layer, rich "
          "networks, minus the same at their own initialisation", Rule("above", 0.0)),
    Claim("rich_lazy_curvature", PAPER,
          "Rich and lazy learning give contrasting curvature",
          "share of the total absolute curvature carried by the points near the thresholds "
          "(last hidden layer, trained networks), rich minus lazy: where curvature "
          "concentrates, not how much it changed", Rule("differs", 0.0, SHARE_MARGIN),
          own_threshold=True),
    Claim("rich_lazy_metric", PAPER,
          "Rich and lazy learning give contrasting metric structure",
          "log volume near / far from the thresholds (last hidden layer, trained networks), "
          "rich minus lazy: where the metric concentrates, not how much it changed",
          Rule("differs", 0.0, CURVATURE_MARGIN), own_threshold=True),
    Claim("regime_generalisation", PAPER,
          "The learning regime affects generalisation to unseen inputs",
          "held-out accuracy near the thresholds, rich minus lazy",
          Rule("differs", 0.0, 0.01), own_threshold=True),
    Claim("noise_flattens_metric", PAPER, "Input noise during training flattens the metric",
          "log volume near / far from the thresholds (last hidden layer), rich + noise minus "
          "rich", Rule("below", 0.0)),
    Claim("noise_reduces_curvature", PAPER, "Input noise during training reduces curvature",
          "log total absolute curvature (last hidden layer), rich + noise minus rich",
          Rule("below", 0.0)),
    Claim("metric_identifies_layers", "study",
          "The metric fields identify the corresponding layer of another network (3 or more "
          "layers)",
          "layer-identification accuracy by log volume-element maps, rich networks, minus the "
          "larger of the same pairs with one network's grid points shuffled and a pair of "
          "untrained networks", Rule("above", 0.0)),
    Claim("seeds_agree", "study",
          "Networks trained from different seeds learn more similar metric fields than two "
          "untrained networks have",
          "correlation of log volume-element maps, rich networks minus independent untrained "
          "networks at the rich scale, weakest layer", Rule("above", 0.0)),
]}


def verdicts(regime: pd.DataFrame, sums: pd.DataFrame, cross: pd.DataFrame,
             layers: Sequence[str], n: int, ident: pd.DataFrame | None = None,
             **kwargs) -> list[Verdict]:
    """The chapter's verdicts (see :data:`CLAIMS`) from the regime table, the per-layer
    summaries (trained and init states), the cross-seed table of the rich condition and its
    layer identification (``ident``, used with 3 or more layers: with 2, a network's two
    layers are told apart by chance half the time). Conditions are paired by seed; intervals
    are over seeds."""
    layers = list(layers)
    first, last = layers[0], layers[-1]

    def per_seed(frame: pd.DataFrame, condition: str, column: str, **where) -> np.ndarray:
        d = frame[frame.condition == condition]
        for key, value in where.items():
            d = d[d[key] == value]
        values = d.sort_values("seed")[column].to_numpy(dtype=np.float64)
        if len(values) != n:
            raise ValueError(f"need {n} values of {column} for {condition} {where}, got "
                             f"{len(values)}")
        return values

    def s(condition: str, column: str, layer: str, state: str = "trained") -> np.ndarray:
        return per_seed(sums, condition, column, layer=layer, state=state)

    def mean(values: np.ndarray) -> stats.Estimate:
        return stats.mean_over_networks(values, **kwargs)

    def change(condition: str, column: str, layer: str) -> np.ndarray:
        return np.log(s(condition, column, layer)) - np.log(s(condition, column, layer, "init"))

    out = [CLAIMS["lazy_is_lazy"].judge(
        mean(per_seed(regime, "lazy", "weight_change")),
        Reference.of("rich networks", mean(per_seed(regime, "rich", "weight_change"))),
        note=f"Tangent-kernel alignment with initialisation: lazy "
             f"{per_seed(regime, 'lazy', 'kernel_alignment').mean():.3f}, rich "
             f"{per_seed(regime, 'rich', 'kernel_alignment').mean():.3f} (1: unmoved).")]
    align = (s("rich", "align_a", first) + s("rich", "align_b", first)) / 2
    out.append(CLAIMS["first_layer_discretises"].judge(
        mean(change("rich", "stretch_near_far", first)),
        Reference.of("log stretch near / far at initialisation",
                     mean(np.log(s("rich", "stretch_near_far", first, "init")))),
        note=f"Alignment of the first layer's most stretched direction with the relevant axis "
             f"near the thresholds (rich): {align.mean():.2f} (1: aligned). The logic step of "
             f"a later layer has no single-number test here."))
    out.append(CLAIMS["rich_lazy_curvature"].judge(
        mean(s("rich", "k_near_share", last) - s("lazy", "k_near_share", last)),
        Reference.of("the same at initialisation",
                     mean(s("rich", "k_near_share", last, "init")
                          - s("lazy", "k_near_share", last, "init")))))
    out.append(CLAIMS["rich_lazy_metric"].judge(
        mean(np.log(s("rich", "volume_near_far", last))
             - np.log(s("lazy", "volume_near_far", last))),
        Reference.of("the same at initialisation",
                     mean(np.log(s("rich", "volume_near_far", last, "init"))
                          - np.log(s("lazy", "volume_near_far", last, "init"))))))
    acc = mean(per_seed(regime, "rich", "near_threshold") - per_seed(regime, "lazy",
                                                                     "near_threshold"))
    out.append(CLAIMS["regime_generalisation"].judge(
        acc, Reference.of("untrained accuracy near the thresholds",
                          mean(per_seed(regime, "untrained", "near_threshold"))),
        note="Held-out set: fresh points within `band` of a threshold line. "
             + ("Rich networks are more accurate there." if acc.low > 0 else
                "Lazy networks are more accurate there." if acc.high < 0 else "")))
    out.append(CLAIMS["noise_flattens_metric"].judge(
        mean(np.log(s("rich + noise", "volume_near_far", last))
             - np.log(s("rich", "volume_near_far", last))),
        Reference.of("rich: log volume near / far",
                     mean(np.log(s("rich", "volume_near_far", last))))))
    out.append(CLAIMS["noise_reduces_curvature"].judge(
        mean(np.log(s("rich + noise", "total_abs_k", last))
             - np.log(s("rich", "total_abs_k", last))),
        Reference.of("rich: log total |K| dA", mean(np.log(s("rich", "total_abs_k", last))))))
    if len(layers) >= 3 and ident is not None:
        out.append(identification_verdict(
            CLAIMS["metric_identifies_layers"], identification_matrices(ident, n), n,
            len(layers), what="grid points of one network shuffled", **kwargs))
    out.append(training_verdict(CLAIMS["seeds_agree"],
                                layer_arrays(cross, "log_volume_corr", layers, n), n, **kwargs))
    return out
