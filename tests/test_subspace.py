"""Subspace matching: planted structure, equality with the direct method, minimality."""

import sys
from pathlib import Path

import numpy as np
import pytest

from repsim_utils.science import subspace
from repsim_utils.science.subspace import SubspaceMatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_subspace import direct_maximum_match, direct_minimal_match  # noqa: E402

rng = np.random.default_rng(0)


def planted(d=500, k=3, shared_units=5, private=4):
    """x and y: `shared_units` units each spanning the same k-dim subspace, plus private units
    in independent random directions."""
    basis = rng.normal(size=(d, k))
    xs = basis @ rng.normal(size=(k, shared_units))
    ys = basis @ rng.normal(size=(k, shared_units))
    x = np.hstack([xs, rng.normal(size=(d, private))])
    y = np.hstack([rng.normal(size=(d, private)), ys])
    return x, y


def test_planted_shared_subspace_is_exactly_the_maximum_match_at_eps_zero():
    x, y = planted()
    m = subspace.maximum_match(x, y, eps=1e-9)
    np.testing.assert_array_equal(m.x, np.arange(5))
    np.testing.assert_array_equal(m.y, np.arange(4, 9))
    assert m.similarity == pytest.approx(10 / 18)


def test_permuted_copy_matches_fully_and_independent_layers_do_not():
    x = np.maximum(rng.normal(size=(2000, 20)), 0)
    m = subspace.maximum_match(x, x[:, rng.permutation(20)], eps=1e-9)
    assert m.similarity == 1.0
    y = np.maximum(rng.normal(size=(2000, 20)), 0)
    assert subspace.maximum_match(x - x.mean(0), y - y.mean(0), eps=0.3).size == 0
    # raw ReLU vectors share their mean direction: the centred variant removes it
    assert subspace.max_match_similarity(x, y, 0.3) >= 0


@pytest.mark.parametrize("method", ["gram", "qr"])
@pytest.mark.parametrize("case", ["random", "planted", "rank_deficient", "dead"])
def test_fast_method_equals_direct_least_squares(case, method):
    d = 400
    if case == "random":
        x, y = rng.normal(size=(d, 12)), rng.normal(size=(d, 10))
        x = x + 2 * y[:, :1]  # some shared structure
        y = y + x[:, :3] @ rng.normal(size=(3, 10))
    elif case == "planted":
        x, y = planted(d)
        x, y = x + 0.05 * rng.normal(size=x.shape), y + 0.05 * rng.normal(size=y.shape)
    elif case == "rank_deficient":
        base = rng.normal(size=(d, 4))
        x = base @ rng.normal(size=(4, 9))  # 9 units in a 4-dim span
        y = np.hstack([base[:, :2] @ rng.normal(size=(2, 6)), rng.normal(size=(d, 3))])
    else:
        x, y = planted(d)
        x[:, 2] = 0.0
        y[:, 0] = 0.0
    fast = SubspaceMatcher(x, y, method=method)
    for eps in (0.0001, 0.1, 0.3, 0.6, 0.9):
        m = fast.maximum_match(eps)
        rx, ry = direct_maximum_match(x, y, eps)
        np.testing.assert_array_equal(m.x, rx)
        np.testing.assert_array_equal(m.y, ry)
    full = fast.smallest_full_eps()
    n_alive = len(fast.alive_x) + len(fast.alive_y)
    if full + 1e-9 < 1:
        assert fast.maximum_match(full + 1e-9).size == n_alive
    if full > 1e-6:
        assert fast.maximum_match(min(full - 1e-6, 0.999)).size < n_alive
    if case == "dead":
        assert 2 not in fast.alive_x and fast.maximum_match(0.999).similarity < 1


def test_minimal_match_is_a_match_and_removing_any_unit_breaks_it():
    x, y = planted(d=400, k=2, shared_units=4, private=3)
    x, y = x + 0.02 * rng.normal(size=x.shape), y + 0.02 * rng.normal(size=y.shape)
    eps = 0.2
    fast = SubspaceMatcher(x, y)
    m = fast.minimal_match(eps, unit=0, side="x")
    assert m is not None and 0 in m.x

    def is_match(xs, ys):
        dx = fast._relative_distance("x", xs, ys) if len(xs) else np.zeros(0)
        dy = fast._relative_distance("y", ys, xs) if len(ys) else np.zeros(0)
        return len(xs) > 0 and len(ys) > 0 and np.all(dx <= eps) and np.all(dy <= eps)

    assert is_match(m.x, m.y)
    for w in m.x:
        if w != 0:
            assert 0 not in fast._maximum(m.x[m.x != w], m.y, eps)[0]
    for w in m.y:
        assert 0 not in fast._maximum(m.x, m.y[m.y != w], eps)[0]
    rx, ry = direct_minimal_match(x, y, eps, 0)
    np.testing.assert_array_equal(m.x, rx)
    np.testing.assert_array_equal(m.y, ry)
    for unit in range(4):  # the downdate shortcut agrees with the direct search everywhere
        for side in ("x", "y"):
            fm = fast.minimal_match(eps, unit if side == "x" else unit + 3, side)
            if side == "x":
                dm = direct_minimal_match(x, y, eps, unit)
                assert (fm is None) == (dm is None)
                if fm is not None:
                    np.testing.assert_array_equal(fm.x, dm[0])
                    np.testing.assert_array_equal(fm.y, dm[1])
            else:
                assert fm is None or unit + 3 in fm.y
    assert m.size < fast.maximum_match(eps).size  # k = 2: smaller than the whole match
    sizes = fast.simple_match_sizes(eps, n_orders=2)
    assert len(sizes) == 2 * fast.maximum_match(eps).size and sizes.min() >= 2


def test_mms_is_monotone_and_bisection_finds_the_threshold():
    x, y = planted(d=300)
    x, y = x + 0.1 * rng.normal(size=x.shape), y + 0.1 * rng.normal(size=y.shape)
    fast = SubspaceMatcher(x, y)
    grid = np.linspace(0, 0.99, 25)
    mms = fast.similarity(grid)
    assert np.all(np.diff(mms) >= 0)
    eps = fast.smallest_eps_for_size(10, tol=1e-6)
    assert fast.maximum_match(eps).size >= 10
    assert fast.maximum_match(max(eps - 1e-5, 0)).size < 10


def test_bad_input_is_refused_before_work():
    x = rng.normal(size=(100, 4))
    with pytest.raises(ValueError, match="same samples"):
        SubspaceMatcher(x, x[:50])
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\)"):
        subspace.maximum_match(x, x, eps=1.0)
    with pytest.warns(RuntimeWarning, match="trivially"):
        SubspaceMatcher(x[:6], x[:6])


def test_coordinate_draws_are_seeded():
    a = subspace.coordinate_draws(1000, 100, 3, seed=1)
    b = subspace.coordinate_draws(1000, 100, 3, seed=1)
    assert len(a) == 3 and all(np.array_equal(i, j) for i, j in zip(a, b, strict=True))
    assert len(subspace.coordinate_draws(50, 100, 3)) == 1


def test_minimal_match_with_redundant_units_equals_the_direct_search():
    # duplicated and summed units make each side rank-deficient: deleting a redundant unit
    # leaves the span unchanged, which the downdate must recognise
    x, y = planted(d=400, k=2, shared_units=4, private=2)
    x = np.hstack([x, x[:, :1], x[:, 1:2] + x[:, 2:3]])
    y = np.hstack([y, 2 * y[:, -1:]])
    fast = SubspaceMatcher(x, y)
    for eps in (1e-6, 0.2):
        for unit in (0, 1, 6):
            fm = fast.minimal_match(eps, unit, "x")
            dm = direct_minimal_match(x, y, eps, unit)
            assert (fm is None) == (dm is None)
            if fm is not None:
                np.testing.assert_array_equal(fm.x, dm[0])
                np.testing.assert_array_equal(fm.y, dm[1])


def test_chapter_tables_see_a_permuted_copy_as_one_and_random_layers_as_less():
    from repsim_utils.chapters import subspace_match

    a = np.maximum(rng.normal(size=(600, 8)) @ rng.normal(size=(8, 10)), 0)
    acts = {"t0": {"h": a}, "t1": {"h": a[:, rng.permutation(10)]},
            "u0": {"h": np.maximum(rng.normal(size=(600, 10)), 0)}}
    pairs = [("t0", "t1", "trained"), ("t0", "u0", "untrained")]
    table = subspace_match.mms_table(acts, ["h"], pairs, eps=[1e-9, 0.3], n_coords=400,
                                     n_draws=3)
    got = table.set_index(["kind", "variant", "eps"])["mms"]
    assert got["trained", subspace_match.RAW, 1e-9] == 1.0
    assert got["trained", subspace_match.CENTRED, 0.3] == 1.0
    assert got["untrained", subspace_match.CENTRED, 0.3] < 0.5
    assert set(table["draws"]) == {3} and set(table["samples"]) == {400}
    simple = subspace_match.simple_match_table(acts, ["h"], pairs[:1], eps=0.01, n_units=3,
                                               n_orders=2)
    # a permuted copy: every unit's simple match is itself and its copy
    assert len(simple) == 12 and set(simple["size"]) == {2}
    assert np.allclose(simple["fraction"], 2 / 20)
    # eps50 of a permuted copy is 0 (everything matches exactly); at each pair's own eps50
    # a maximum match always exists, so simple matches are found for the random pair too
    assert table[table.kind == "trained"]["eps50"].max() < 1e-9
    own = subspace_match.simple_match_table(acts, ["h"], pairs, eps=None, n_units=2, n_orders=1)
    assert set(own["kind"]) == {"trained", "untrained"}
    # independent layers at a tiny eps: the maximum match is empty (kept read-only), so no
    # neuron is drawn and the table is empty, not an error
    empty = subspace_match.simple_match_table(acts, ["h"], pairs[1:], eps=1e-6, n_units=2,
                                              n_orders=1)
    assert len(empty) == 0 and list(empty.columns)[:2] == ["layer", "net_a"]
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        subspace_match.mms_table(acts, ["h"], pairs, eps=[0.2, 1.5])


def test_minimal_match_when_a_side_has_more_members_than_its_rank():
    # 6 units in a 2-dim span: the redundancy check must see the whole null space (4-dim),
    # which a thin SVD of the 2 x 6 coordinate block does not return
    base = rng.normal(size=(300, 2))
    x = base @ rng.normal(size=(2, 6))
    y = np.hstack([base @ rng.normal(size=(2, 3)), rng.normal(size=(300, 2))])
    fast = SubspaceMatcher(x, y)
    for eps in (1e-6, 0.3):
        for unit in range(6):
            fm = fast.minimal_match(eps, unit, "x")
            dm = direct_minimal_match(x, y, eps, unit)
            assert (fm is None) == (dm is None)
            if fm is not None:
                np.testing.assert_array_equal(fm.x, dm[0])
                np.testing.assert_array_equal(fm.y, dm[1])


def test_eps_half_is_the_threshold_where_half_the_neurons_match():
    from repsim_utils.chapters import subspace_match

    x = rng.normal(size=(500, 6))
    y = np.hstack([x[:, :3] @ rng.normal(size=(3, 3)), rng.normal(size=(500, 3))])
    m = SubspaceMatcher(x, y)
    e = subspace_match.eps_half(m)
    assert m.similarity(e) >= 0.5 > m.similarity(max(e - 2e-3, 0))
    dead = SubspaceMatcher(np.hstack([x[:, :2], np.zeros((500, 4))]), np.zeros((500, 6)))
    assert subspace_match.eps_half(dead) == 1.0  # 2 of 12 alive: a half match is impossible


def test_mean_share_closed_forms():
    from repsim_utils.chapters import subspace_match

    assert subspace_match.mean_share(np.ones((50, 3))) == pytest.approx(1.0)
    z = np.tile([[1.0], [-1.0]], (25, 2))  # zero mean
    assert subspace_match.mean_share(z) == pytest.approx(0.0)
    z = np.tile([[3.0], [1.0]], (25, 1))  # mean 2, squares 9 and 1: 50 * 4 / 250
    assert subspace_match.mean_share(z) == pytest.approx(0.8)


def test_the_shapes_sentence_warns_below_5_rows_per_neuron_and_otherwise_says_so():
    import pandas as pd

    from repsim_utils.chapters import subspace_match as sm

    few = pd.DataFrame({"layer": ["a", "b"], "neurons": [64, 32], "rows per draw": [450, 450]})
    assert sm.shapes_warning(few).startswith("**Warning:**") and "3.52" in sm.shapes_warning(few)
    many = few.assign(**{"rows per draw": [1797, 1797]})
    assert sm.shapes_warning(many) == ("Every layer has at least 5 rows per neuron of the pair "
                                       "(fewest: 14).")


def _noisy_pair(d=600, units=14, seed=3):
    r = np.random.default_rng(seed)
    common = r.normal(size=(d, 4))
    x = np.maximum(common @ r.normal(size=(4, units)) + 0.4 * r.normal(size=(d, units)), 0)
    y = np.maximum(common @ r.normal(size=(4, units)) + 0.4 * r.normal(size=(d, units)), 0)
    return x, y


def test_inverse_gram_deletions_equal_the_factorisation_route(monkeypatch):
    x, y = _noisy_pair()
    fast = SubspaceMatcher(x, y)
    eps = 0.6
    mm = fast.maximum_match(eps)
    assert mm.size > 8
    assert isinstance(subspace._state(fast, mm.x, mm.y), subspace._GramState)
    units = [("x", int(u)) for u in mm.x[:4]] + [("y", int(u)) for u in mm.y[:4]]
    got = [fast.minimal_match(eps, u, s, seed=k) for k, (s, u) in enumerate(units)]
    # the same searches through pivoted QR / SVD only, and with a renewal after every downdate
    monkeypatch.setattr(subspace, "_state", lambda m, xs, ys: subspace._MatchState(m, xs, ys))
    slow = SubspaceMatcher(x, y)
    want = [slow.minimal_match(eps, u, s, seed=k) for k, (s, u) in enumerate(units)]
    monkeypatch.undo()
    monkeypatch.setattr(subspace, "GRAM_REFRESH", 1)
    renewed = [SubspaceMatcher(x, y).minimal_match(eps, u, s, seed=k)
               for k, (s, u) in enumerate(units)]
    for g, w, r in zip(got, want, renewed, strict=True):
        np.testing.assert_array_equal(g.x, w.x)
        np.testing.assert_array_equal(g.y, w.y)
        np.testing.assert_array_equal(r.x, w.x)
        np.testing.assert_array_equal(r.y, w.y)
    rx, ry = direct_minimal_match(x, y, eps, units[0][1])
    np.testing.assert_array_equal(fast.minimal_match(eps, units[0][1]).x, rx)
    np.testing.assert_array_equal(fast.minimal_match(eps, units[0][1]).y, ry)


def test_rank_deficient_sides_take_the_factorisation_route():
    base = rng.normal(size=(300, 2))
    x = base @ rng.normal(size=(2, 5))  # 5 units in a 2-dim span
    y = base @ rng.normal(size=(2, 4))
    fast = SubspaceMatcher(x, y)
    mm = fast.maximum_match(1e-6)
    assert isinstance(subspace._state(fast, mm.x, mm.y), subspace._MatchState)


def test_kept_screens_and_matches_do_not_change_any_match(monkeypatch):
    # a shuffled grid: each search starts from the match at the nearest larger eps found so
    # far, or is read off when the matches below and above have one size
    x, y = _noisy_pair(seed=4)
    grid = np.random.default_rng(1).permutation(np.linspace(0, 0.95, 40))
    shared = SubspaceMatcher(x, y)
    got = [shared.maximum_match(e) for e in grid]
    assert len(shared._screens) < 2 * len(grid)  # rounds repeat across eps
    assert len({g.size for g in got}) > 5 and len(shared._found) < len(grid)
    with pytest.raises(ValueError, match="read-only"):
        got[0].x[:] = 0  # a kept match cannot be changed by its user
    monkeypatch.setattr(subspace, "SCREEN_CACHE", 1)  # emptied at every new screen
    for e, g in zip(grid, got, strict=True):
        m = SubspaceMatcher(x, y).maximum_match(e)
        np.testing.assert_array_equal(g.x, m.x)
        np.testing.assert_array_equal(g.y, m.y)
        rx, ry = direct_maximum_match(x, y, e)
        np.testing.assert_array_equal(g.x, rx)
        np.testing.assert_array_equal(g.y, ry)
