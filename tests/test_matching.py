"""Unit matching: known answers (permuted copies, rotations), brute force, closed forms."""

import itertools

import numpy as np
import pytest
import torch

from repsim_utils.nets.activations import activations
from repsim_utils.nets.models import MLPSpec, build
from repsim_utils.science import matching

rng = np.random.default_rng(0)


def test_streaming_correlation_equals_in_memory():
    a = rng.normal(size=(3001, 7)) * 5 + 100  # offset: naive one-pass formulas lose digits
    b = a[:, :4] @ rng.normal(size=(4, 5)) + rng.normal(size=(3001, 5))
    expected = np.corrcoef(a, b, rowvar=False)[:7, 7:]
    for batch in (1, 17, 1000, 5000):
        np.testing.assert_allclose(matching.correlation(a, b, batch_size=batch), expected,
                                   rtol=0, atol=1e-10)
    np.testing.assert_allclose(matching.correlation(a), np.corrcoef(a, rowvar=False), atol=1e-10)


def test_dead_units_are_nan_and_reported_not_matched():
    a = rng.normal(size=(200, 4))
    a[:, 1] = 0.0  # a ReLU that never fires
    b = a.copy()
    b[:, 1] = rng.normal(size=200)
    corr = matching.correlation(a, b)
    assert np.isnan(corr[1]).all() and not np.isnan(np.delete(corr, 1, 0)).any()
    assert matching.dead_units(a).tolist() == [1]
    for match in (matching.semi_match(corr), matching.bipartite_match(corr)):
        assert match.dead_a.tolist() == [1] and match.partner[1] == -1
        assert np.isnan(match.value[1]) and match.matched.sum() == 3
        assert match.mean_matched == pytest.approx(1.0)
        assert match.mean == pytest.approx(0.75)  # the dead unit counts as unmatched (0)
        assert match.quantile(0.0) == 0.0 and match.quantile(1.0) == pytest.approx(1.0)


def _permuted_copy(net, perm):
    """The same function with hidden layer 1's units reordered by ``perm``."""
    copy = build(MLPSpec((len(perm), 9)), (1, 8, 8), 10, seed=99)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["layers.fc1.weight"] = sd["layers.fc1.weight"][perm]
    sd["layers.fc1.bias"] = sd["layers.fc1.bias"][perm]
    sd["layers.fc2.weight"] = sd["layers.fc2.weight"][:, perm]
    copy.load_state_dict(sd)
    return copy


def test_permuted_copy_of_a_network_matches_perfectly():
    net = build(MLPSpec((24, 9)), (1, 8, 8), 10, seed=0)
    with torch.no_grad():
        net.layer("fc1").bias.normal_(0, 0.3)  # so that few units are dead
    perm = np.random.default_rng(1).permutation(24)
    copy = _permuted_copy(net, perm)
    x = torch.randn(2000, 1, 8, 8)
    assert torch.allclose(net(x), copy(x), atol=1e-5)  # same function
    a = activations(net, x, ["act1"], dtype=np.float64)["act1"]
    b = activations(copy, x, ["act1"], dtype=np.float64)["act1"]
    corr = matching.correlation(a, b)
    inverse = np.argsort(perm)  # unit i of net sits at position inverse[i] of the copy
    alive = np.setdiff1d(np.arange(24), matching.dead_units(a))
    for match in (matching.bipartite_match(corr), matching.semi_match(corr)):
        np.testing.assert_array_equal(match.partner[alive], inverse[alive])
        np.testing.assert_allclose(match.value[alive], 1.0, atol=1e-9)
    permuted = matching.permute_units(corr, matching.bipartite_match(corr))
    np.testing.assert_allclose(np.diag(permuted)[: len(alive)], 1.0, atol=1e-9)


def test_rotated_layer_does_not_match_unit_to_unit_but_is_linearly_predictable():
    a = rng.normal(size=(4000, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    b = a @ q  # same information, rotated basis
    corr = matching.correlation(a, b)
    assert matching.bipartite_match(corr).mean < 0.6
    assert matching.semi_match(corr).mean < 0.7
    pred = matching.sparse_prediction(a, b, alphas=[1e-6, 1e-1], seed=0)
    assert pred.error[0] < 1e-6  # a (nearly) unpenalised linear map predicts it perfectly
    assert pred.nonzero[0] > 10  # ... with many weights per unit: a many-to-one code
    assert pred.error[1] > pred.error[0]
    assert pred.sparsest_within(1e-9) == 0 and pred.sparsest_within(10.0) == 1


def test_few_to_one_code_is_found_with_few_weights():
    a = rng.normal(size=(4000, 20))
    b = np.stack([a[:, 0] + a[:, 1], a[:, 2] - 0.5 * a[:, 3]], axis=1)  # two units each
    pred = matching.sparse_prediction(a, b, alphas=[1e-4, 1e-2, 1e-1], seed=0)
    k = pred.sparsest_within(0.05)
    assert pred.error[k] < 0.05
    assert pred.nonzero[k] <= 2.5  # the handful of units that carry each target
    np.testing.assert_array_equal(np.flatnonzero(pred.weights[k][0]), [0, 1])
    assert pred.dense_error < 1e-6
    assert pred.error_with_at_most(2.5) < 0.05 and pred.error_with_at_most(0.0) == 1.0


def test_a_nearly_silent_predictor_cannot_wreck_the_dense_reference():
    # a unit of a active on 2 fitting rows is standardised by a tiny spread; larger on the
    # held-out rows, it takes huge values there and the dense map's error leaps (0.07 -> 0.48)
    a = np.maximum(rng.normal(size=(1000, 10)), 0)
    b = a[:, :3] @ rng.normal(size=(3, 4)) + 0.3 * rng.normal(size=(1000, 4))
    fit, test = matching._halves(len(a), 0)
    rare = np.zeros((1000, 1))
    rare[fit[:2]], rare[test[:2]] = 0.01, 1.0
    a = np.hstack([a, rare])
    kept = matching.sparse_prediction(a, b, [0.01], min_active=0.0)
    left_out = matching.sparse_prediction(a, b, [0.01])
    clean = matching.sparse_prediction(a[:, :10], b, [0.01])
    assert kept.dense_error > 3 * clean.dense_error  # the failure, reproduced
    assert left_out.excluded_inputs == 1 and kept.excluded_inputs == 0
    assert left_out.dense_error == pytest.approx(clean.dense_error)
    assert left_out.weights[0].shape == (4, 11) and not left_out.weights[0][:, 10].any()


def test_stored_sparse_weights_equal_a_fresh_fit_at_each_penalty():
    """The warm-started model reuses its coefficient array: each penalty must keep a copy."""
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import StandardScaler

    a = rng.normal(size=(600, 12)) * rng.uniform(0.1, 10, 12)  # very different unit scales
    b = np.stack([a[:, 0] * 3 + a[:, 4], a[:, 2] - a[:, 7] * 0.1 + rng.normal(size=600)], 1)
    alphas = [1e-3, 1e-2, 1e-1, 0.5]
    pred = matching.sparse_prediction(a, b, alphas, seed=3)
    fit, _ = matching._halves(len(a), 3)
    x = StandardScaler().fit_transform(a[fit])
    y = StandardScaler().fit_transform(b[fit])
    for k, alpha in enumerate(alphas):
        fresh = Lasso(alpha=alpha, max_iter=100_000, tol=1e-10).fit(x, y)
        np.testing.assert_allclose(pred.weights[k], fresh.coef_, atol=2e-3)
    assert not np.allclose(pred.weights[0], pred.weights[-1])
    assert pred.nonzero[-1] < pred.nonzero[0]


@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (6, 4)])
def test_bipartite_optimum_equals_brute_force(shape):
    for _ in range(10):
        sim = rng.uniform(-1, 1, size=shape)
        match = matching.bipartite_match(sim)
        r, c = shape
        if r <= c:
            best = max(sum(sim[i, p[i]] for i in range(r))
                       for p in itertools.permutations(range(c), r))
        else:
            best = max(sum(sim[p[j], j] for j in range(c))
                       for p in itertools.permutations(range(r), c))
        assert np.nansum(match.value) == pytest.approx(best)
        assert len(set(match.partner[match.matched])) == match.matched.sum()  # one-to-one


def test_semi_mean_is_at_least_bipartite_mean_and_same_partner_fraction():
    for _ in range(20):
        sim = rng.uniform(-1, 1, size=(12, 12))
        semi, bip = matching.semi_match(sim), matching.bipartite_match(sim)
        assert semi.mean >= bip.mean - 1e-12
        frac = matching.same_partner_fraction(semi, bip)
        assert frac == np.mean(semi.partner == bip.partner)
    eye = np.eye(6)
    assert matching.same_partner_fraction(matching.semi_match(eye),
                                          matching.bipartite_match(eye)) == 1.0


def test_mutual_information_known_answers():
    n = 20000
    x = np.maximum(rng.normal(size=(n, 1)), 0)  # half exact zeros, like a ReLU
    y = np.maximum(rng.normal(size=(n, 1)), 0)
    mi_indep = matching.mutual_information(x, y)
    assert abs(mi_indep[0, 0]) < 2e-3
    # a unit with itself: MI = its (Miller-Madow) entropy; bins: zero bin p0, 9 equal bins
    p0 = np.mean(x == 0)
    h = -p0 * np.log(p0) - (1 - p0) * np.log((1 - p0) / 9)
    mi_self = matching.mutual_information(x, x)
    assert mi_self[0, 0] == pytest.approx(h + 9 / (2 * n), abs=1e-3)
    assert mi_self[0, 0] > 10 * abs(mi_indep[0, 0])
    # zero bin + percentile bins: equal mass among non-zero values
    bins = matching.bin_units(x)[:, 0]
    counts = np.bincount(bins, minlength=10)
    assert counts[0] == np.sum(x == 0)
    assert counts[1:].max() - counts[1:].min() <= 2


def test_mi_semi_matching_recovers_a_nonlinear_partner():
    a = rng.normal(size=(5000, 5))
    b = np.maximum(a[:, [3, 0, 4, 1, 2]], 0) ** 2  # monotone on the positive part, not linear
    mi = matching.mutual_information(np.maximum(a, 0), b)
    assert matching.semi_match(mi).partner.tolist() == [1, 3, 4, 0, 2]
    assert matching.top_pairs(mi, 2)[0][1] == matching.semi_match(mi).partner[
        matching.top_pairs(mi, 2)[0][0]]


def test_clustering_finds_shared_and_private_groups():
    n = 3000
    shared = rng.normal(size=(n, 3))
    private_a, private_b = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))
    noise = lambda k: 0.3 * rng.normal(size=(n, k))  # noqa: E731
    # each net: 2 noisy copies of each shared source, plus 2 copies of a private source
    a = np.hstack([np.repeat(shared, 2, axis=1), np.repeat(private_a, 2, axis=1)]) + noise(8)
    b = np.hstack([np.repeat(shared, 2, axis=1), np.repeat(private_b, 2, axis=1)]) + noise(8)
    corr = matching.correlation(np.hstack([a, b]))
    for method in ("spectral", "agglomerative"):
        labels = matching.cluster_units(corr, n_clusters=5, method=method)
        assert matching.shared_cluster_fraction(labels, n_a=8) == pytest.approx(3 / 5)


@pytest.mark.parametrize("name", ["correlation", "mutual_information", "sparse_prediction",
                                  "linear_cka", "SubspaceMatcher"])
def test_every_pairwise_formula_refuses_arrays_over_different_samples(name):
    """One input check (science.arrays) for every formula on two activation arrays."""
    from repsim_utils.science import measures
    from repsim_utils.science.subspace import SubspaceMatcher

    f = {"correlation": matching.correlation, "mutual_information": matching.mutual_information,
         "sparse_prediction": lambda a, b: matching.sparse_prediction(a, b, [0.1]),
         "linear_cka": measures.linear_cka, "SubspaceMatcher": SubspaceMatcher}[name]
    a, b = np.ones((10, 3)), np.ones((9, 3))
    with pytest.raises(ValueError, match=r"same samples, got \(10, 3\) and \(9, 3\)"):
        f(a, b)
    with pytest.raises(ValueError, match="same samples"):
        f(np.ones(10), np.ones((10, 3)))


def test_chapter_tables_from_standardised_layers_equal_the_streamed_correlation():
    """match_table and reliable_table standardise each network's layer once; their values
    equal those from matching.correlation of every pair (an independent, streamed formula)."""
    from repsim_utils.chapters import convergent_learning as cl
    from repsim_utils.inference import pairs, stats

    r = np.random.default_rng(5)
    n = 3
    base = r.normal(size=(400, 6))
    acts = {}
    for k in "tu":
        for i in range(n):
            a = np.maximum(base @ r.normal(size=(6, 9)) + 0.3 * r.normal(size=(400, 9)), 0)
            a[:, 0] = 0.0  # a dead unit
            acts[f"{k}{i}"] = {"h": a + 1e3}  # a large mean: standardising must centre it
    table = cl.match_table(acts, ["h"], pairs.pair_list(n))
    for row in table.itertuples():
        corr = matching.correlation(acts[row.net_a]["h"], acts[row.net_b]["h"])
        assert row.semi == pytest.approx(matching.semi_match(corr).mean, abs=1e-10)
        assert row.bipartite == pytest.approx(matching.bipartite_match(corr).mean, abs=1e-10)
        assert row.dead_a == 1 and row.dead_b == 1
    reliable = cl.reliable_table(acts, ["h"], n).set_index(["group", "net"])
    for group, name in (("t", "trained"), ("u", "untrained")):
        x = [acts[f"{group}{i}"]["h"] for i in range(n)]
        for i in range(n):  # the reference: every correlation streamed from the raw layers
            others = [j for j in range(n) if j != i]
            best = np.stack([matching.semi_match(matching.correlation(x[i], x[j])).value
                             for j in others])
            q95 = np.array([np.nanquantile(matching.semi_match(matching.correlation(
                x[i], stats.shuffled(x[j], j))).value, 0.95) for j in others])
            want = matching.reliable_units(best, q95)
            got = reliable.loc[(name, i)]
            assert (got.reliable, got.unmatched) == pytest.approx(want, abs=1e-12)
