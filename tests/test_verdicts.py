"""Each chapter's verdict rules on planted cases: tables built with a known answer (a real
effect, the opposite effect, or noise around no effect) must give agrees, disagrees and
inconclusive. Pair statistics carry per-network effects, as real ones do."""

import numpy as np
import pandas as pd
import pytest

from repsim_utils.chapters import (
    convergent_learning,
    effective_weights,
    standard_measures,
    subspace_match,
)
from repsim_utils.chapters import geometry as geometry_study
from repsim_utils.inference import pairs

N = 6
LAYERS = ["act1", "act2", "act3"]


def offsets_for(n_networks, noise, rng, shape=(), phase=0):
    """Per-network offsets: random normal ones (``noise`` > 0), or, for ``noise`` < 0,
    alternating +|noise| / -|noise| starting with the sign (-1)^phase (a planted zero effect
    whose interval must straddle 0; quantities that are subtracted get different phases so
    that their offsets do not cancel)."""
    if noise < 0:
        signs = (-1.0) ** (np.arange(n_networks) + phase)
        return np.broadcast_to(-noise * signs, shape + (n_networks,))
    return rng.normal(0, noise, shape + (n_networks,))


def planted(columns, n=N, layers=LAYERS, noise=0.01, seed=0, null=False):
    """A pair table: columns maps a name to f(layer_index, kind) -> mean value; each network
    adds its own offset (see :func:`offsets_for`) to every pair it is in. ``null`` adds the
    null pairs (a shuffled network ``s{i}`` takes the offsets of ``t{i}``)."""
    rng = np.random.default_rng(seed)
    # untrained networks (indices n..2n-1) get the mirrored pattern of a planted zero effect,
    # so that tt - uu does not cancel network by network
    mirror = np.r_[np.ones(n), -np.ones(n)] if noise < 0 else np.ones(2 * n)
    offsets = {name: np.stack([offsets_for(2 * n, noise, rng, phase=c + li) * mirror
                               for li in range(len(layers))])
               for c, name in enumerate(columns)}
    rows = []
    for li, layer in enumerate(layers):
        for a, b, kind in pairs.pair_list(n, null=null):
            ia = int(a[1:]) + (n if a[0] == "u" else 0)
            ib = int(b[1:]) + (n if b[0] == "u" else 0)
            row = {"layer": layer, "net_a": a, "net_b": b, "kind": kind}
            for name, f in columns.items():
                row[name] = f(li, kind) + offsets[name][li, ia] + offsets[name][li, ib]
            rows.append(row)
    return pd.DataFrame(rows)


def tt(value_trained, value_untrained):
    """Trained pairs at one value; untrained pairs (uu) and trained-untrained pairs (tu) at
    the other."""
    return lambda li, kind: value_trained if kind == pairs.TRAINED else value_untrained


def groups(columns, n=N, layers=LAYERS, noise=0.01, seed=0):
    """A per-network table (layer, group, net, columns...): columns maps a name to
    f(layer_index, trained) -> mean value, each network adding its own offset."""
    rng = np.random.default_rng(seed)
    rows = []
    for li, layer in enumerate(layers):
        for g, group in enumerate(("trained", "untrained")):
            offsets = {name: offsets_for(n, noise, rng, phase=c + li + g)
                       for c, name in enumerate(columns)}
            for i in range(n):
                rows.append({"layer": layer, "group": group, "net": i} | {
                    name: f(li, group == "trained") + offsets[name][i]
                    for name, f in columns.items()})
    return pd.DataFrame(rows)


def outcomes(verdicts):
    return {v.claim.id: v.outcome for v in verdicts}


def convergent_case(sign, noise, layers=LAYERS, null=False):
    s = sign
    kw = {"noise": noise, "layers": layers, "null": null}
    matches = planted({
        "semi": lambda li, k: 0.6 + s * (0.3 - 0.1 * li) if k == pairs.TRAINED else 0.6,
        "semi_q10": tt(0.2, 0.2), "semi_q90": tt(0.7, 0.7)}, **kw)
    # semi minus bipartite: 0.05 where planted, exactly 0 otherwise (it cannot be negative)
    matches["bipartite"] = matches["semi"] - max(s, 0) * 0.05
    sparse = planted({"few_gap": tt(0.1 - s * 0.08, 0.1), "dense_error": tt(1 - s * 0.5, 1)},
                     **kw).assign(excluded=0, excluded_inputs=0)
    clusters = planted({"shared": tt(0.5 + s * 0.2, 0.5), "shared_null": tt(0.05, 0.05)}, **kw)
    mi = planted({"mi_top_overlap": tt(0.75 + s * 0.2, 0.5),
                  "mi_top_overlap_null": tt(0.1, 0.1)}, **kw)
    reliable = groups({"reliable": lambda li, trained: 0.5 + trained * s * 0.2,
                       "unmatched": lambda li, trained: 0.1,
                       "reliable_null": lambda li, trained: 0.0}, noise=noise, layers=layers)
    return convergent_learning.verdicts(matches, sparse, clusters, mi, reliable, layers, N)


def test_convergent_verdicts_on_planted_cases():
    agree = outcomes(convergent_case(+1, 0.005))
    assert set(agree) == set(convergent_learning.CLAIMS)
    assert set(agree.values()) == {"agrees"}, agree
    disagree = outcomes(convergent_case(-1, 0.005))
    assert set(disagree.values()) == {"disagrees"}, disagree
    # no effect, networks spread around it, one layer (the minimum over layers of noise is
    # biased low: with several layers "in every layer" would rightly be refused)
    noisy = outcomes(convergent_case(0, -0.3, layers=["act1"]))
    for claim in ("reliable_units", "trained_match_more", "many_to_many", "few_to_one",
                  "few_to_one_reference", "mi_agrees_with_correlation"):
        assert noisy[claim] == "inconclusive", (claim, noisy)


def subspace_case(sign, noise, layers=LAYERS, null=False):
    s = sign
    rows = []
    grid = {0.15: 0.1, 0.5: 0.1 + s * 0.6, subspace_match.SIMPLE_EPS: 0.8}
    for eps, level in grid.items():
        t = planted({"mms": tt(level, level - s * 0.1),
                     "eps50": lambda li, k: 0.5 + s * (0.1 + 0.1 * (li == 1))
                     if k == pairs.TRAINED else 0.5 + s * 0.3}, noise=noise, seed=1,
                    layers=layers, null=null)
        rows.append(t.assign(eps=eps, variant=subspace_match.RAW))
    curves = pd.concat(rows, ignore_index=True)
    simple = planted({"fraction": tt(0.1 - s * 0.08, 0.1)}, noise=noise, seed=2, layers=layers)
    return subspace_match.verdicts(curves, simple, layers, N)


def test_subspace_verdicts_on_planted_cases():
    agree = outcomes(subspace_case(+1, 0.005))
    assert set(agree) == set(subspace_match.CLAIMS)
    assert set(agree.values()) == {"agrees"}, agree
    disagree = outcomes(subspace_case(-1, 0.005))
    assert set(disagree.values()) == {"disagrees"}, disagree
    assert outcomes(subspace_case(0, -0.3))["ends_match_more"] == "inconclusive"
    one = outcomes(subspace_case(0, -0.3, layers=["act1"]))
    assert "ends_match_more" not in one  # needs a middle layer
    assert {one[c] for c in ("small_match_at_moderate_eps", "trained_match_more",
                             "simple_matches_small")} == {"inconclusive"}


@pytest.mark.parametrize("case", [convergent_case, subspace_case])
def test_every_cross_seed_verdict_carries_untrained_pairs_and_a_null(case):
    # with null pairs in the tables, no verdict of trained pairs is left without its null
    for v in case(+1, 0.005, null=True):
        record = v.as_dict()
        assert record["uu"] is not None and record["null"] is not None, record


def test_subspace_verdicts_need_the_claims_eps_values():
    t = planted({"mms": tt(0.1, 0.1), "eps50": tt(0.4, 0.5)}).assign(
        eps=0.3, variant=subspace_match.RAW)
    simple = planted({"fraction": tt(0.1, 0.1)})
    with pytest.raises(ValueError, match="eps = 0.5"):
        subspace_match.verdicts(t, simple, LAYERS, N)


def effective_case(sign, noise, seed=0):
    rng = np.random.default_rng(seed)
    s = sign
    rows = []
    for i in range(N):
        for epoch, end in ((0, False), (30, True)):
            jitter = offsets_for(N, noise, rng, (3,), phase=end)[:, i]
            rows.append({"representation": effective_weights.W_EFF, "seed": i, "epoch": epoch,
                         "cos_intra_centred": 0.2 + end * s * 0.2 + jitter[0],
                         "distance_ratio": 0.8 - end * s * 0.2 + jitter[1],
                         "silhouette": 0.1 + end * s * 0.2 + jitter[2]})
    raw = {"distance_ratio": 0.9, "silhouette": 0.15 - (s < 0) * 0.05 + (s > 0) * 0.0}
    cross = planted({"similarity": tt(0.5 + s * 0.2, 0.5), "similarity_null_class": tt(0.5, 0.5),
                     "similarity_null": tt(0.1, 0.1)}, layers=["output"], noise=noise)
    label_null = pd.DataFrame(
        [{"net": -1, "state": "raw", "cos_intra_centred": 0.0, "distance_ratio": 1.0,
          "silhouette": 0.0}]
        + [{"net": i, "state": state, "cos_intra_centred": 0.0, "distance_ratio": 1.0,
            "silhouette": 0.0} for i in range(N) for state in ("init", "final")])
    return effective_weights.verdicts(pd.DataFrame(rows), raw, cross, N, label_null)


def test_effective_verdicts_on_planted_cases():
    agree = outcomes(effective_case(+1, 0.005))
    assert set(agree) == set(effective_weights.CLAIMS)
    assert set(agree.values()) == {"agrees"}, agree
    disagree = outcomes(effective_case(-1, 0.005))
    assert set(disagree.values()) == {"disagrees"}, disagree
    noisy = outcomes(effective_case(0, -0.3))
    assert {noisy[c] for c in ("same_class_converge", "classes_diverge")} == {"inconclusive"}
    # every claim carries a null: labels shuffled for the per-network ones
    assert all(v.null is not None for v in effective_case(+1, 0.005))


def geometry_case(sign, noise, seed=0):
    rng = np.random.default_rng(seed)
    s = sign
    regime, sums = [], []
    for i in range(N):
        def j(phase=0, i=i):
            return float(np.exp(offsets_for(N, noise, rng, phase=phase)[i]))
        for c, cond in enumerate(geometry_study.CONDITIONS):
            regime.append({"condition": cond, "seed": i,
                           "weight_change": {"lazy": 0.05 - s * 0.04, "rich": 3.0}.get(cond, 0.5)
                           * j(),
                           "kernel_alignment": 0.9,
                           "near_threshold": {"rich": 0.9 + s * 0.05, "lazy": 0.9}.get(cond, 0.6)
                           + 0.1 * offsets_for(N, noise, rng, phase=c)[i]})
            for layer in LAYERS:
                for t, state in enumerate(("init", "trained")):
                    trained_ = state == "trained" and cond != "untrained"
                    vol = 1.0
                    stretch = 1.0
                    tac = 1.0
                    if trained_ and cond.startswith("rich"):
                        vol = 4.0 if cond == "rich" else 4.0 * np.exp(-s * 1.0)
                        stretch = np.exp(s * 1.0) if layer == LAYERS[0] else 2.0
                        tac = 3.0 if cond == "rich" else 3.0 * np.exp(-s * 1.0)
                        if s == 0:
                            vol, tac = 1.0, 1.0
                    share = 0.3 * j(c + t) + (0.3 if trained_ and cond.startswith("rich")
                                              and s != 0 else 0.0)
                    sums.append({"condition": cond, "seed": i, "layer": layer, "state": state,
                                 "volume_near_far": vol * j(c + t),
                                 "stretch_near_far": stretch * j(c + t),
                                 "total_abs_k": tac * j(c + t), "k_near_share": share,
                                 "align_a": 0.9, "align_b": 0.9})
    cross = planted({"log_volume_corr": tt(0.5 + s * 0.3, 0.5)}, noise=noise)
    ident = planted({"accuracy": lambda li, k: 1 / 3 + s / 3 if k == pairs.TRAINED else 1 / 3},
                    layers=["all"], noise=noise)
    ident = ident[ident.kind != pairs.UNTRAINED]
    null = ident[ident.kind == pairs.TRAINED].assign(kind=pairs.NULL, accuracy=1 / 3)
    ident = pd.concat([ident, null], ignore_index=True)
    return geometry_study.verdicts(pd.DataFrame(regime), pd.DataFrame(sums), cross, LAYERS, N,
                                   ident)


def test_geometry_verdicts_on_planted_cases():
    agree = outcomes(geometry_case(+1, 0.01))
    assert set(agree) == set(geometry_study.CLAIMS)
    assert set(agree.values()) == {"agrees"}, agree
    disagree = outcomes(geometry_case(-1, 0.01))
    expected = dict.fromkeys(geometry_study.CLAIMS, "disagrees")
    # a lazy net whose weights barely move also makes rich vs lazy "differ" claims agree
    # when the rich nets change: planted -1 turns the rich changes around, still a contrast
    for claim in ("rich_lazy_curvature", "rich_lazy_metric", "regime_generalisation"):
        expected[claim] = "agrees"
    assert disagree == expected, disagree
    none = outcomes(geometry_case(0, 0.01))
    for claim in ("rich_lazy_curvature", "regime_generalisation"):
        assert none[claim] == "disagrees", (claim, none)  # a planted null contrast
    noisy = outcomes(geometry_case(0, -1.0))
    for claim in ("rich_lazy_curvature", "noise_reduces_curvature", "noise_flattens_metric",
                  "metric_identifies_layers"):
        assert noisy[claim] == "inconclusive", (claim, noisy)


def identification_case(trained, untrained, null, measures=("linear CKA", "PWCCA"), n=N):
    rows = [{"net_a": f"{p}{i}", "net_b": f"{q}{j}", "kind": kind, "measure": m,
             "accuracy": value + 0.02 * ((i + j) % 3 - 1) * (0 < value < 1)}
            for m in measures for i, j in pairs.trained_pairs(n)
            for p, q, kind, value in (("t", "t", pairs.TRAINED, trained),
                                      ("u", "u", pairs.BOTH_UNTRAINED, untrained),
                                      ("t", "s", pairs.NULL, null))]
    table = planted({m: tt(0.5, 0.4) for m in measures}, n=n)
    return {v.claim.id: v for v in standard_measures.verdicts(
        table, pd.DataFrame(rows), LAYERS, n, list(measures))
        if v.claim.id.endswith("identifies_layers")}


def test_layer_identification_is_judged_against_the_null_and_untrained_pairs():
    found = identification_case(0.9, 0.35, 0.3)
    assert found["linear_cka_identifies_layers"].outcome == "agrees"  # as Kornblith et al.
    assert found["pwcca_identifies_layers"].outcome == "disagrees"  # they found PWCCA fails
    assert {v.claim.kind for v in found.values()} == {"paper"}
    alike = identification_case(0.36, 0.35, 0.3)
    assert alike["pwcca_identifies_layers"].outcome == "agrees"
    # untrained networks identify every layer: the test cannot fail, so it is no paper claim
    # the larger reference decides: untrained pairs above the null make CKA's claim fail
    prior = identification_case(0.6, 0.7, 0.3)
    assert prior["linear_cka_identifies_layers"].outcome == "disagrees"
    shapes = identification_case(1.0, 1.0, 0.0)
    assert {v.claim.kind for v in shapes.values()} == {"sanity"}
    assert all(v.estimate.value == 0 for v in shapes.values())
    # no zero-width "agrees": the outcome says the claim cannot be decided here
    assert {v.outcome for v in shapes.values()} == {"not testable"}
    assert all(v.as_dict()["untestable"] and v.sensitivity() is None for v in shapes.values())
    # a null at the ceiling (CCA scores 1 on shuffled samples when samples <= units) too
    blind = identification_case(1.0, 0.6, 1.0)
    assert {v.outcome for v in blind.values()} == {"not testable"}
    assert "the null" in blind["pwcca_identifies_layers"].untestable
    # a measure that ties every layer scores 1/3 for trained and untrained pairs alike
    tied = identification_case(1 / 3, 1 / 3, 1 / 3)
    assert {v.outcome for v in tied.values()} == {"not testable"}
