"""Standard measures: one table of expected invariances drives the property tests (as in
wrongu/repsim); closed forms; streamed = in-memory; cross-checks against independent formulas
(Gram matrices for CKA, scipy for RSA, a direct whitening for CCA)."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group, spearmanr

from repsim_utils.inference import pairs
from repsim_utils.science import measures as rm

rng = np.random.default_rng(0)
N, P = 300, 12

def _toy(a, b):
    """A toy measure for the registry's tests: correlation of the sorted unit means (invariant
    to permuting units and scaling, not to rotating them)."""
    return float(np.corrcoef(np.sort(a.mean(0)), np.sort(b.mean(0)))[0, 1])


#: Registered only inside the tests that name it: the invariance tests pick it up like any
#: measure of the registry.
TOY = rm.Measure("toy sorted means", _toy, "similarity", True,
                 frozenset({"permutation", "scale"}), "none")
NAMES = [*rm.MEASURES, TOY.name]


TRANSFORMS = {
    "orthogonal": lambda z: z @ ortho_group.rvs(z.shape[1], random_state=1),
    "scale": lambda z: 3.7 * z,
    "permutation": lambda z: z[:, np.random.default_rng(2).permutation(z.shape[1])],
    "invertible": lambda z: z @ (np.eye(z.shape[1]) + np.diag(np.linspace(0, 4, z.shape[1]))
                                 + np.random.default_rng(3).normal(0, 0.5, (z.shape[1],) * 2)),
    "translation": lambda z: z + 5 * z.std() * np.linspace(1, 2, z.shape[1]),
}


def pair():
    """Two related representations: b is a noisy nonlinear function of a."""
    a = rng.normal(size=(N, P)) @ np.diag(np.linspace(3, 0.3, P))
    b = np.tanh(a @ rng.normal(size=(P, P)) / 3) + 0.3 * rng.normal(size=(N, P))
    return a, b


@pytest.fixture(params=NAMES)
def registered(request):
    """Each registered measure in turn, and the toy one, registered for the test's duration."""
    if request.param == TOY.name:
        with rm.registered(TOY):
            yield rm.MEASURES[TOY.name]
    else:
        yield rm.MEASURES[request.param]


def test_the_registry_drives_the_invariance_table():
    assert set(rm.TRANSFORMS) == set(TRANSFORMS)
    table = rm.invariance_table()
    assert table in rm.__doc__  # the module's docstring shows the registry's table
    assert all(f"| {m.name} |" in table for m in rm.MEASURES.values())
    with rm.registered(TOY):
        assert ("| toy sorted means | no | yes | yes | no | no | yes | none |"
                in rm.invariance_table())
    assert TOY.name not in rm.MEASURES
    with pytest.raises(ValueError, match="already registered"):
        rm.register(rm.MEASURES["linear CKA"])
    with pytest.raises(ValueError, match="unknown invariances"):
        rm.Measure("bad", _toy, "similarity", True, frozenset({"affine"}), "none")


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_invariances_follow_the_registry(registered, transform):
    a, b = pair()
    f = registered
    # transform the first argument: the asymmetric measures (PWCCA, unit matching) weight or
    # match from it
    before, after = f(a, b), f(TRANSFORMS[transform](a), b)
    if transform in f.invariances:
        assert after == pytest.approx(before, abs=1e-8), (f.name, transform)
    else:
        # a witness of the change: the related pair, or else a against its transformed self
        # (MMS of the pair is 0 before and after an offset of one side)
        moved = max(abs(after - before), abs(f(TRANSFORMS[transform](a), a) - f(a, a)))
        assert moved > 1e-4, (f.name, transform, "unexpectedly invariant")


def test_symmetry_follows_the_registry(registered):
    a, b = pair()
    swapped = abs(registered(a, b) - registered(b, a))
    if registered.symmetric:
        assert swapped < 1e-9, registered.name
    else:
        assert swapped > 1e-4, (registered.name, "unexpectedly symmetric")


def test_identical_representations_score_one(registered):
    a, _ = pair()
    assert registered(a, a) == pytest.approx(1.0, abs=1e-9)


def test_a_registered_measure_joins_the_chapter_tables_and_claims():
    from repsim_utils.chapters import standard_measures as ms

    g = np.random.default_rng(5)
    acts = {net: {"l1": g.normal(size=(60, 4)), "l2": g.normal(size=(60, 4))}
            for net in ("t0", "t1", "u0", "u1")}
    jobs = [("t0", "t1", "trained vs trained"), ("t0", "u0", "trained vs untrained"),
            ("t1", "u1", "trained vs untrained")]
    with rm.registered(TOY):
        table = ms.measure_table(acts, ["l1", "l2"], jobs)
        ident = ms.identification_table(acts, ["l1", "l2"], 2)
        assert "toy_sorted_means_trained_more_alike" in ms.claims()
    assert TOY.name in table.columns and TOY.name in set(ident.measure)
    # every row is the measure of its own pair and layer (measure by measure, prepared layers)
    for _, row in table.iterrows():
        a, b = acts[row.net_a][row.layer], acts[row.net_b][row.layer]
        assert row[TOY.name] == pytest.approx(_toy(a, b))
        assert row["PWCCA"] == pytest.approx(rm.pwcca(a, b), abs=1e-12)
    shuffled = pairs.shuffled_acts(acts, 2)
    for _, row in ident[ident.measure == "PWCCA"].iterrows():
        x, y = shuffled[row.net_a], shuffled[row.net_b]
        forth = np.array([[rm.pwcca(x[p], y[q]) for q in ("l1", "l2")] for p in ("l1", "l2")])
        back = np.array([[rm.pwcca(y[p], x[q]) for q in ("l1", "l2")] for p in ("l1", "l2")])
        assert row.accuracy == pairs.identification_credit(forth, back)


@pytest.mark.parametrize("exponent", (2, 4, 6, 8))
def test_an_offset_far_above_the_spread_changes_no_translation_invariant_measure(exponent):
    # activations whose mean is 10^k times their spread: raw streamed sums (CKA) and
    # rsatoolbox's |x|^2 + |y|^2 - 2 x.y distances (RSA) used to cancel catastrophically here
    # (debiased CKA refused from 1e4, RSA was off by 0.6 at 1e8). The reference is the same
    # rounded numbers without the offset ((a + c) - c is exact for c this large, Sterbenz), so
    # only the method's own cancellation is measured, not the input's rounding (measured:
    # at most 2.6e-14, PWCCA at 1e8; the bound was 1e-9)
    a, b = pair()
    offset = 10.0 ** exponent * max(a.std(), b.std()) * np.linspace(1, 2, P)
    a_off, b_off = a + offset, b - offset
    a_ref, b_ref = a_off - offset, b_off + offset
    for m in rm.MEASURES.values():
        if "translation" in m.invariances:
            assert m(a_off, b_off) == pytest.approx(m(a_ref, b_ref), abs=1e-12), (m.name,
                                                                                 exponent)
            # and the prepared path the chapters use (centred in two passes)
            assert m.compare(m.layer(a_off), m.layer(b_off)) == pytest.approx(
                m(a_ref, b_ref), abs=1e-12), (m.name, exponent, "prepared")
    # float32 activations are accumulated in float64: CKA of the float32 copy equals the
    # float64 computation on the same (rounded) numbers
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    assert rm.linear_cka(a32, b32, batch_size=64) == pytest.approx(
        rm.linear_cka(a32.astype(np.float64), b32.astype(np.float64)), abs=1e-12)


def test_cca_refuses_samples_that_leave_the_spans_no_room():
    # 60 samples of two independent 40-unit layers: the centred spans (rank 40 each in 59
    # dimensions) must share 21 directions, so CCA would report rho = 1 for them on pure noise
    a, b = rng.normal(size=(60, 40)), rng.normal(size=(60, 40))
    for f in (rm.cca, rm.pwcca, rm.canonical_correlations):
        with pytest.raises(ValueError, match=r"60 samples .* ranks 40 \+ 40, so 21"):
            f(a, b)
    # SVCCA is judged on the components it keeps; with enough samples every member runs and
    # independent layers score far from 1
    a, b = rng.normal(size=(400, 40)), rng.normal(size=(400, 40))
    assert rm.cca(a, b) < 0.5 and rm.pwcca(a, b) < 0.5 and rm.svcca(a, b) < 0.5
    # the chapter checks the widths before any pair is computed
    from repsim_utils.chapters import standard_measures as ms

    # the widest layer meets the same layer of another network: 64 + 64 > 99
    acts = {"t0": {"l1": rng.normal(size=(100, 64)), "l2": rng.normal(size=(100, 32))}}
    with pytest.raises(ValueError, match="network t0's layers .* ranks 64 \\+ 64"):
        ms.subsample(acts, 100)
    kept = ms.subsample({"t0": {"l1": rng.normal(size=(200, 64))}}, 150)  # 64 + 64 < 149
    assert kept["t0"]["l1"].shape == (150, 64)


def test_independent_wide_representations_debiased_cka_near_zero_biased_not():
    a = rng.normal(size=(200, 500))
    b = rng.normal(size=(200, 500))
    assert abs(rm.debiased_cka(a, b)) < 0.02
    assert rm.linear_cka(a, b) > 0.5  # the bias of the plug-in estimator at width >> samples


def gram_hsic_unbiased(k, l):
    """Song et al. (2012), eq. 5, written directly on n x n Gram matrices."""
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


def test_cka_equals_the_gram_matrix_formulas_and_streaming_equals_in_memory():
    a, b = pair()
    a += 2.0  # uncentred inputs: the streamed sums must centre correctly
    h = np.eye(N) - 1 / N
    ka, kb = (h @ a) @ (h @ a).T, (h @ b) @ (h @ b).T
    biased = np.sum(ka * kb) / np.sqrt(np.sum(ka * ka) * np.sum(kb * kb))
    assert rm.linear_cka(a, b) == pytest.approx(biased, rel=1e-10)
    k, l = a @ a.T, b @ b.T
    unbiased = gram_hsic_unbiased(k, l) / np.sqrt(gram_hsic_unbiased(k, k)
                                                  * gram_hsic_unbiased(l, l))
    assert rm.debiased_cka(a, b) == pytest.approx(unbiased, rel=1e-8)
    for batch in (7, 64, 10_000):
        assert rm.linear_cka(a, b, batch_size=batch) == pytest.approx(biased, rel=1e-10)
        assert rm.debiased_cka(a, b, batch_size=batch) == pytest.approx(unbiased, rel=1e-8)
    streamed = rm.cka_stream((a[i:i + 50], b[i:i + 50]) for i in range(0, N, 50))
    assert streamed.linear_cka() == pytest.approx(biased, rel=1e-10)


def test_cca_against_a_direct_whitening_and_known_answers():
    a, b = pair()
    ac, bc = a - a.mean(0), b - b.mean(0)
    saa, sbb, sab = ac.T @ ac, bc.T @ bc, ac.T @ bc

    def inv_sqrt(m):
        w, v = np.linalg.eigh(m)
        return v @ np.diag(w ** -0.5) @ v.T

    direct = np.linalg.svd(inv_sqrt(saa) @ sab @ inv_sqrt(sbb), compute_uv=False)
    np.testing.assert_allclose(rm.canonical_correlations(a, b), direct, atol=1e-10)
    # one shared direction among noise: rho_1 = 1 and the rest small
    shared = rng.normal(size=(N, 1))
    x = np.hstack([shared, rng.normal(size=(N, 3))])
    y = np.hstack([rng.normal(size=(N, 3)), 2 * shared])
    rho = rm.canonical_correlations(x, y)
    assert rho[0] == pytest.approx(1.0) and rho[1] < 0.3
    assert rm.cca(x, y, squared=True) < rm.cca(x, y)


def test_pwcca_weights_come_from_the_first_argument_whatever_the_widths():
    a, b = pair()
    wide = np.hstack([b, rng.normal(size=(N, 8))])
    assert rm.pwcca(a, wide) != pytest.approx(rm.pwcca(wide, a))
    assert 0 <= rm.pwcca(a, wide) <= 1 and 0 <= rm.pwcca(wide, a) <= 1


def test_procrustes_of_a_rotated_copy_of_another_width_is_one():
    a, _ = pair()
    q = ortho_group.rvs(P, random_state=5)
    padded = np.hstack([a @ q, np.zeros((N, 3))])  # same shape, one more zero unit
    assert rm.procrustes(a, padded) == pytest.approx(1.0)
    assert rm.procrustes(a, rng.normal(size=(N, P))) < 0.5


def test_rsa_equals_spearman_of_scipy_distances():
    a, b = pair()
    direct = spearmanr(pdist(a), pdist(b))[0]
    assert rm.rsa(a, b) == pytest.approx(direct, abs=1e-10)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same samples"):
        rm.linear_cka(np.ones((10, 2)), np.ones((9, 2)))
    with pytest.raises(ValueError, match="constant"):
        rm.linear_cka(np.ones((10, 2)), rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="at least 4"):
        rm.cca(rng.normal(size=(3, 2)), rng.normal(size=(3, 2)))


def test_layer_identification_finds_planted_layers_and_counts_ties_fairly():
    from repsim_utils.chapters import standard_measures as ms

    g = np.random.default_rng(7)
    layers = ["l1", "l2", "l3"]
    base = {la: g.normal(size=(200, 8)) for la in layers}
    acts = {f"t{i}": {la: base[la] @ ortho_group.rvs(8, random_state=i) + 0.1 * g.normal(
        size=(200, 8)) for la in layers} for i in range(3)}
    acts |= {f"u{i}": {la: g.normal(size=(200, 8)) for la in layers} for i in range(3)}
    ident = ms.identification_table(acts, layers, 3, ["linear CKA", "PWCCA"])
    trained = ident[ident.kind == pairs.TRAINED]
    assert set(trained.accuracy) == {1.0}  # every layer finds its rotated copy
    # with samples shuffled no layer corresponds: the null of the argmax is far below 1
    assert ident[ident.kind == pairs.NULL].accuracy.mean() < 0.7
    const = {f"{p}{i}": {la: np.ones((200, 8)) for la in layers} for i in range(2)
             for p in "tu"}
    constant = rm.Measure("constant", lambda a, b: 0.5, "similarity", True,
                          frozenset(rm.TRANSFORMS), "none")
    with rm.registered(constant):  # every layer ties with every other
        tie = ms.identification_table(const, layers, 2, ["constant"])
    assert list(tie.accuracy) == pytest.approx([1 / 3] * 3)  # chance, not 1


def test_prepared_layers_give_each_measure_of_every_pair(registered):
    """Per-network work once (:mod:`repsim_utils.science.prepared`): each layer prepared once
    and reused for every pair it is in gives the measure of each pair to rounding. Where the
    measure's own function is another computation (CKA streamed from sums, RSA by rsatoolbox's
    compare, unit matching from the streamed correlation) this is also a cross-check."""
    a, b = pair()
    g = np.random.default_rng(11)
    c = np.tanh(a[:, :7] @ g.normal(size=(7, 7))) + 0.1 * g.normal(size=(N, 7))  # narrower
    d = b.copy()
    d[:, 2] = 4.0  # a dead unit
    f = registered
    layers = {"a": a, "b": b, "d": d} | ({} if f is TOY else {"c": c})  # the toy: equal widths
    prepared = {k: f.layer(v) for k, v in layers.items()}
    for x in layers:
        for y in layers:
            assert f.compare(prepared[x], prepared[y]) == pytest.approx(
                f(layers[x], layers[y]), abs=1e-12), (f.name, x, y)


def test_prepared_layers_refuse_what_the_measures_refuse():
    a, _ = pair()
    for name in ("CCA (mean rho)", "SVCCA", "PWCCA"):
        m = rm.MEASURES[name]
        with pytest.raises(ValueError, match="needs more samples"):
            m.compare(m.layer(a[:20]), m.layer(rng.normal(size=(20, 15))))
    for name in ("linear CKA", "Procrustes", "debiased CKA"):
        m = rm.MEASURES[name]
        with pytest.raises(ValueError, match="different samples|constant|no variance"):
            m.compare(m.layer(a), m.layer(a[:100]))
        with pytest.raises(ValueError, match="constant|no variance"):
            m.compare(m.layer(np.ones((50, 3))), m.layer(a[:50]))
    with pytest.raises(ValueError, match="both prepare and between"):
        rm.Measure("half", _toy, "similarity", True, frozenset(), "none", prepare=np.asarray)
