"""Uncertainty over networks: interval coverage on data with a known mean, p-values under a
true null, the pair bootstrap's bookkeeping, and the verdict rules."""

import numpy as np
import pandas as pd
import pytest

from repsim_utils.inference import pairs, stats
from repsim_utils.inference.verdicts import Claim, Reference, Rule


def test_interval_of_a_mean_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    draws, hits = 300, 0
    for k in range(draws):
        x = rng.normal(2.0, 1.0, size=40)
        est = stats.mean_over_networks(x, n_resamples=1999, seed=k)
        hits += est.low <= 2.0 <= est.high
    assert 0.90 <= hits / draws <= 0.98


def test_pair_interval_resamples_networks_and_covers_the_true_mean():
    # pair statistic with a network effect: s_ij = mu + a_i + a_j + noise. Pairs sharing a
    # network are correlated; resampling networks keeps the interval honest.
    rng = np.random.default_rng(2)
    n, mu, draws, hits, widths_pairs, widths_nets = 24, 0.5, 150, 0, [], []
    for k in range(draws):
        a = rng.normal(0, 0.1, n)
        tt = mu + a[:, None] + a[None, :] + rng.normal(0, 0.02, (n, n))
        tt = (tt + tt.T) / 2
        est = stats.over_networks(tt, n, pairs=True, n_resamples=999, seed=k)
        hits += est.low <= mu <= est.high
        widths_nets.append(est.high - est.low)
        # the naive interval that treats pairs as independent is far too narrow
        vals = tt[np.triu_indices(n, 1)]
        naive = stats.mean_over_networks(vals, n_resamples=999, seed=k)
        widths_pairs.append(naive.high - naive.low)
    assert 0.88 <= hits / draws <= 0.99
    assert np.mean(widths_pairs) < 0.5 * np.mean(widths_nets)


def test_pair_mean_never_compares_a_network_with_itself():
    tt = np.array([[100.0, 1, 2], [1, 100, 3], [2, 3, 100]])
    assert stats.pair_mean(tt, np.arange(3)) == pytest.approx(2.0)
    assert stats.pair_mean(tt, np.array([0, 0, 1])) == pytest.approx(1.0)  # pairs (0,1) x 4
    assert np.isnan(stats.pair_mean(tt, np.array([2, 2, 2])))
    batch = stats.pair_mean(tt, np.array([[0, 1, 2], [1, 1, 2]]))
    assert batch == pytest.approx([2.0, 3.0])


def test_sign_flip_p_values_are_uniform_under_a_true_null():
    rng = np.random.default_rng(3)
    p = np.array([stats.sign_flip_test(rng.normal(0, 1, 10), seed=k) for k in range(400)])
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09
    assert 0.15 <= np.mean(p <= 0.25) <= 0.35
    assert 0.4 <= np.mean(p <= 0.5) <= 0.6


def test_sign_flip_detects_a_real_shift():
    rng = np.random.default_rng(4)
    assert stats.sign_flip_test(rng.normal(1.0, 0.3, 10)) < 0.01


def test_compare_finds_the_planted_effect_and_its_absence():
    rng = np.random.default_rng(5)
    n = 6
    tt = 0.8 + rng.normal(0, 0.01, (n, n))
    tt = (tt + tt.T) / 2
    with_effect = stats.compare(tt, 0.5 + rng.normal(0, 0.01, n), n_resamples=999)
    assert with_effect.effect.low > 0.25 and with_effect.effect.high < 0.35
    assert with_effect.trained.low < 0.8 < with_effect.trained.high
    assert with_effect.p_value <= 2 / 2**n + 1e-12  # the smallest exact two-sided p-value
    without = stats.compare(tt, 0.8 + rng.normal(0, 0.01, n), n_resamples=999)
    assert without.effect.low < 0 < without.effect.high
    assert without.p_value > 0.05


def test_compare_refuses_missing_or_asymmetric_pairs():
    tt = np.array([[np.nan, 1.0], [1.0, np.nan]])
    with pytest.raises(ValueError, match="finite"):
        stats.compare(tt, np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="symmetric"):
        stats.compare(np.array([[0, 1.0], [2.0, 0]]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="at least 2"):
        stats.compare(np.zeros((1, 1)), np.zeros(1))


def test_constant_statistic_has_a_point_interval():
    est = stats.mean_over_networks(np.full(5, 0.25))
    assert (est.value, est.low, est.high) == (0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="finite"):
        stats.Estimate(float("nan"), 0, 1)


def test_shuffled_null_keeps_marginals_and_breaks_correspondence():
    rng = np.random.default_rng(6)
    b = rng.normal(size=(500, 3))
    s = stats.shuffled(b, seed=0)
    assert np.allclose(np.sort(s, 0), np.sort(b, 0))
    assert abs(np.corrcoef(b[:, 0], s[:, 0])[0, 1]) < 0.15


def test_pair_arrays_round_trip_and_missing_pairs():
    rows = [(a, b, k, 10 * int(a[1:]) + int(b[1:]) if k == pairs.TRAINED else -int(a[1:]))
            for a, b, k in pairs.pair_list(3)]
    table = pd.DataFrame(rows, columns=["net_a", "net_b", "kind", "value"])
    tt, tu = pairs.pair_arrays(table, "value", 3)
    assert tt[0, 1] == tt[1, 0] == 1 and tt[1, 2] == 12 and np.isnan(tt[0, 0])
    assert list(tu) == [0, -1, -2]
    with pytest.raises(ValueError, match="missing"):
        pairs.pair_arrays(table.iloc[1:], "value", 3)


@pytest.mark.parametrize("rule, interval, outcome", [
    (Rule("above", 0), (0.1, 0.3), "agrees"),
    (Rule("above", 0), (-0.3, -0.1), "disagrees"),
    (Rule("above", 0), (0.0, 0.0), "disagrees"),  # nothing above 0
    (Rule("above", 0), (-0.1, 0.2), "inconclusive"),
    (Rule("below", 0.5), (0.1, 0.4), "agrees"),
    (Rule("below", 0.5), (0.6, 0.9), "disagrees"),
    (Rule("below", 0.5), (0.4, 0.6), "inconclusive"),
    (Rule("differs", 0, 0.05), (0.1, 0.2), "agrees"),
    (Rule("differs", 0, 0.05), (-0.2, -0.1), "agrees"),
    (Rule("differs", 0, 0.05), (-0.02, 0.03), "disagrees"),
    (Rule("differs", 0, 0.05), (-0.02, 0.3), "inconclusive"),
])
def test_rules_decide_from_the_interval(rule, interval, outcome):
    assert rule.outcome(*interval) == outcome


def test_verdict_record_has_the_fields_of_the_study_and_is_refused_when_not_finite():
    claim = Claim("x", "paper2020", "the claim", "the statistic", Rule("above", 0))
    v = claim.judge(stats.Estimate(0.2, 0.1, 0.3), Reference.of("baseline", 0.05),
                    Reference.of("null", stats.Estimate(0.0, -0.01, 0.01)))
    d = v.as_dict()
    assert set(d) >= {"id", "paper", "claim", "statistic", "value", "ci", "baseline", "null",
                      "outcome", "rule"}
    assert d["outcome"] == "agrees" and d["ci"] == [0.1, 0.3] and d["null"]["ci"] == [-0.01, 0.01]
    assert "agrees" in v.sentence() and "0.2" in v.sentence()
    with pytest.raises(ValueError, match="not finite"):
        claim.judge(stats.Estimate(0.2, 0.1, 0.3), Reference("baseline", float("nan")))
    with pytest.raises(ValueError, match="margin"):
        Rule("above", 0, margin=0.1)
