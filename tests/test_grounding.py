"""Grounding in function: disagreement and accuracy gap on known logits, Spearman's rho over
pairs against SciPy on the pair list, its jackknife interval over networks, and the grounding
table and verdicts on planted pairs whose order is known."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from repsim_utils.chapters import grounding
from repsim_utils.inference import stats
from repsim_utils.inference.pairs import BOTH_UNTRAINED, TRAINED, trained_pairs
from repsim_utils.science import function as fn

rng = np.random.default_rng(0)


def test_disagreement_and_accuracy_on_known_logits():
    a = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    b = np.array([[1, 0], [1, 0], [1, 0], [1, 0]], dtype=float)
    assert fn.disagreement(a, b) == 0.5 and fn.disagreement(a, a) == 0.0
    assert fn.accuracy(a, np.array([0, 1, 1, 1])) == 0.75
    assert fn.accuracy_gap(0.9, 0.75) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="different inputs"):
        fn.disagreement(a, b[:3])


def test_rank_correlation_over_pairs_equals_scipy_on_the_pair_list():
    n = 6
    x, y = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    x, y = x + x.T, y + y.T
    i, j = np.triu_indices(n, 1)
    assert fn.rank_correlation(x, y) == pytest.approx(spearmanr(x[i, j], y[i, j]).statistic)
    keep = np.array([0, 2, 3, 5])
    sub = np.ix_(keep, keep)
    k, m = np.triu_indices(4, 1)
    assert fn.rank_correlation(x, y, keep) == pytest.approx(
        spearmanr(x[sub][k, m], y[sub][k, m]).statistic)
    assert np.isnan(fn.rank_correlation(x, np.ones((n, n))))  # no order to compare


def _pairs(n, value):
    m = np.zeros((n, n))
    for i, j in trained_pairs(n):
        m[i, j] = m[j, i] = value(i, j)
    return m


def test_a_monotone_relation_has_rho_minus_one_and_an_unrelated_one_straddles_zero():
    n = 8
    truth = _pairs(n, lambda i, j: abs(i - j) + 0.01 * rng.normal())
    e = stats.rank_correlation_over_networks(-truth, truth)
    assert e.value == pytest.approx(-1.0) and e.high < -0.9
    unrelated = stats.rank_correlation_over_networks(_pairs(n, lambda i, j: rng.normal()), truth)
    assert unrelated.low < 0 < unrelated.high
    assert stats.rank_correlation_over_networks(truth, np.ones((n, n))) is None


def _tables(n, grounded: bool):
    """A measure table, a function table and a stitching table of n trained and n untrained
    networks, where the pairs' disagreement is |i - j| and the measure tracks it (grounded) or
    not."""
    measure, function, stitch = [], [], []
    for prefix, kind in (("t", TRAINED), ("u", BOTH_UNTRAINED)):
        for i, j in trained_pairs(n):
            gap = abs(i - j) / n
            sim = 1 - gap if grounded else rng.uniform()
            for layer in ("act1", "act2"):
                measure.append({"layer": layer, "net_a": f"{prefix}{i}", "net_b": f"{prefix}{j}",
                                "kind": kind, "CKA": sim + 0.001 * rng.normal()})
                if kind == TRAINED:
                    stitch.append({"layer": layer, "net_a": f"t{i}", "net_b": f"t{j}",
                                   "kind": kind, grounding.STITCH: gap + 0.001 * rng.normal()})
            function.append({"net_a": f"{prefix}{i}", "net_b": f"{prefix}{j}", "kind": kind,
                             grounding.DISAGREEMENT: gap + 0.001 * rng.normal(),
                             grounding.GAP: rng.uniform()})
    return pd.DataFrame(measure), pd.DataFrame(function), pd.DataFrame(stitch)


@pytest.mark.parametrize("grounded, outcome", [(True, "agrees"), (False, "inconclusive")])
def test_grounding_verdicts_on_planted_pairs(grounded, outcome, monkeypatch):
    from repsim_utils.science import measures

    monkeypatch.setitem(measures.MEASURES, "CKA", measures.MEASURES["linear CKA"])
    n = 8
    table = grounding.grounding_table(*_tables(n, grounded), ["act1", "act2"], n, ["CKA"])
    assert set(table.quantity) == set(grounding.FUNCTIONAL)
    (verdict,) = grounding.verdicts(table, ["act1", "act2"], ["CKA"])
    assert verdict.outcome == outcome
    if grounded:
        row = table[(table.layer == "act2") & (table.quantity == grounding.STITCH)].iloc[0]
        assert row.rho < -0.9
        assert verdict.uu is not None and verdict.uu.value < -0.9  # untrained pairs too


def test_function_table_of_real_networks():
    import torch

    from repsim_utils.nets.models import MLPSpec, build

    nets = [build(MLPSpec((8,)), (1, 8, 8), 10, s) for s in range(3)]
    x, y = torch.randn(50, 1, 8, 8), torch.randint(0, 10, (50,))
    table = grounding.function_table(nets, nets, x, y)
    assert len(table) == 6 and set(table.kind) == {TRAINED, BOTH_UNTRAINED}
    assert table[grounding.DISAGREEMENT].between(0, 1).all()
    same = grounding.function_table([nets[0]] * 3, nets, x, y)
    assert (same[same.kind == TRAINED][grounding.DISAGREEMENT] == 0).all()
