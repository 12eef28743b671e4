"""The invariance ladder (repsim_utils.science.ladder): every rung on planted cases whose answer
is known. A permuted copy is identical from the permutation rung up, a rotated copy only from the
orthogonal rung up, an invertible linear map only from the linear rung up."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group

from repsim_utils.science import ladder, measures, regression

rng = np.random.default_rng(0)
NAMES = [r.name for r in ladder.RUNGS]


def _rungs(a, b):
    return {r.name: r.function(a, b) for r in ladder.RUNGS}


def _layer(n=600, p=12):
    # correlated units with a mean: rotations and linear maps then mix them visibly
    return rng.normal(size=(n, p)) @ rng.normal(size=(p, p)) + 3.0


@pytest.mark.parametrize("case, first", [("copy", "identity"), ("permuted", "permutation"),
                                         ("rotated", "orthogonal"), ("linear", "linear")])
def test_each_planted_transform_is_identical_exactly_from_its_rung_up(case, first):
    a = _layer()
    p = a.shape[1]
    b = {"copy": a, "permuted": a[:, rng.permutation(p)],
         "rotated": a @ ortho_group.rvs(p, random_state=1),
         # no offset: the subspace rung reads raw activations, whose span an offset moves
         "linear": a @ (rng.normal(size=(p, p)) + 2 * np.eye(p))}[case]
    got = _rungs(a, b)
    k = NAMES.index(first)
    for name in NAMES[k:]:
        assert got[name] == pytest.approx(1.0, abs=1e-8), (case, name, got)
    for name in NAMES[:k]:
        assert got[name] < 0.99, (case, name, got)


def test_independent_layers_score_low_on_every_rung_but_the_loosest():
    a, b = _layer(2000), _layer(2000)
    got = _rungs(a, b)
    for name in ("identity", "permutation", "linear"):
        assert got[name] < 0.2, got
    assert got["orthogonal"] < 0.6  # Procrustes of independent data has a positive floor


def test_r2_against_the_closed_form_of_a_noisy_linear_map():
    # y = x w + noise with var(x w) = var(noise): the population R^2 is 1/2
    x = rng.normal(size=(40_000, 1))
    y = x + rng.normal(size=(40_000, 1))
    assert regression.r2(x, y) == pytest.approx(0.5, abs=0.01)
    assert regression.r2(x, 2.0 * x - 1.0) == pytest.approx(1.0, abs=1e-12)
    # unrelated layers: the in-sample bias p / n that the untrained pairs carry
    a, b = rng.normal(size=(2000, 20)), rng.normal(size=(2000, 20))
    assert regression.r2(a, b) == pytest.approx(20 / 2000, abs=0.005)
    # against scikit-learn's R^2 of an ordinary least-squares fit, pooled over units by variance
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    b = a @ rng.normal(size=(20, 5)) + rng.normal(size=(2000, 5))
    pred = LinearRegression().fit(a, b).predict(a)
    assert regression.r2(a, b) == pytest.approx(r2_score(b, pred, multioutput="variance_weighted"),
                                                abs=1e-12)
    # the registered measure, from per-network bases, equals the direct fits both ways
    direct = 0.5 * (regression.r2(a, b) + regression.r2(b, a))
    assert measures.linear_regression(a, b) == pytest.approx(direct, abs=1e-12)
    dead = np.hstack([a[:, :5], np.zeros((2000, 3))])  # dead units: rank below width
    assert measures.linear_regression(dead, b) == pytest.approx(
        0.5 * (regression.r2(dead, b) + regression.r2(b, dead)), abs=1e-10)


def test_share_of_the_way_and_its_limits():
    assert ladder.share(0.75, 0.5) == 0.5 and ladder.share(0.5, 0.5) == 0.0
    assert np.allclose(ladder.share(np.array([1.0, 0.2]), np.array([0.2, 0.2])), [1.0, 0.0])
    with pytest.raises(ValueError, match="undefined"):
        ladder.share(1.0, 1.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="widths must be equal"):
        ladder.identity_correlation(np.ones((10, 3)), np.ones((10, 4)))
    with pytest.raises(ValueError, match="no variance"):
        regression.r2(rng.normal(size=(20, 2)), np.zeros((20, 2)))
    with pytest.raises(ValueError, match="samples"):
        regression.r2(rng.normal(size=(20, 12)), rng.normal(size=(20, 12)))


def _networks(transform: str, n: int = 4, rows: int = 800, p: int = 10):
    """Trained networks t_i: one base layer transformed by ``transform`` (plus a little noise),
    untrained u_i independent layers; the lowest rung the ladder should name is known."""
    base = _layer(rows, p)
    acts = {}
    for i in range(n):
        r = np.random.default_rng(10 + i)
        t = {"permutation": base[:, r.permutation(p)],
             "orthogonal": base @ ortho_group.rvs(p, random_state=10 + i),
             "identity": base}[transform]
        acts[f"t{i}"] = {"h": t + 0.05 * r.normal(size=t.shape)}
        acts[f"u{i}"] = {"h": _layer(rows, p)}
    return acts


@pytest.mark.parametrize("transform", ["identity", "permutation", "orthogonal"])
def test_the_ladder_names_the_planted_rung(transform):
    from repsim_utils.chapters import ladder as chapter
    from repsim_utils.inference import pairs

    n = 4
    acts = _networks(transform, n)
    table = chapter.ladder_table(acts, ["h"], pairs.pair_list(n))
    summary = chapter.ladder_summary(table, ["h"], n)
    lowest = chapter.lowest_rungs(summary)
    assert lowest.rung.tolist() == [transform]
    assert "the same up to" in chapter.statements(lowest)[0]


def test_untrained_like_trained_reaches_no_rung_and_known_columns_are_reused():
    from repsim_utils.chapters import ladder as chapter
    from repsim_utils.inference import pairs

    n = 4
    acts = {f"{k}{i}": {"h": _layer(400, 8)} for k in "tu" for i in range(n)}
    table = chapter.ladder_table(acts, ["h"], pairs.pair_list(n))
    lowest = chapter.lowest_rungs(chapter.ladder_summary(table, ["h"], n))
    assert lowest.rung.tolist() == [None]
    assert "no rung" in chapter.statements(lowest)[0]
    # a measure table's Procrustes and MMS columns stand in for computing them again
    known = table.rename(columns={"orthogonal": "Procrustes", "subspace": "MMS (eps 0.5)"})
    known["Procrustes"] = 0.123
    again = chapter.ladder_table(acts, ["h"], pairs.pair_list(n), known=known)
    assert (again.orthogonal == 0.123).all()
    assert np.allclose(again.identity, table.identity)
    with pytest.raises(ValueError, match="lacks some"):
        chapter.ladder_table(acts, ["h"], pairs.pair_list(n), known=known.iloc[1:])


def test_a_rung_where_untrained_pairs_score_1_has_no_share_and_is_never_reached():
    from repsim_utils.chapters import ladder as chapter
    from repsim_utils.inference import pairs

    n = 4
    acts = _networks("permutation", n)
    table = chapter.ladder_table(acts, ["h"], pairs.pair_list(n))
    table.loc[table.kind == pairs.BOTH_UNTRAINED, "subspace"] = 1.0  # the ceiling
    summary = chapter.ladder_summary(table, ["h"], n).set_index("statistic")
    assert np.isnan(summary.loc["subspace", "share"])
    assert summary.loc["permutation", "share"] > 0.5
    assert chapter.lowest_rungs(summary.reset_index()).rung.tolist() == ["permutation"]


def test_the_function_rung_from_stitching_penalties():
    from repsim_utils.chapters import ladder as chapter
    from repsim_utils.inference import pairs

    n, r = 5, np.random.default_rng(3)
    rows = [{"layer": "h", "net_a": f"t{i}", "net_b": f"t{j}", "kind": pairs.TRAINED,
             "stitching penalty": 0.01 + 0.002 * r.normal()}
            for i, j in pairs.trained_pairs(n)]
    rows += [{"layer": "h", "net_a": f"t{i}", "net_b": f"u{i}", "kind": pairs.UNTRAINED,
              "stitching penalty": 0.3 + 0.01 * r.normal()} for i in range(n)]
    row = chapter.function_rung(pd.DataFrame(rows), ["h"], n).iloc[0]
    assert row.statistic == chapter.FUNCTION
    assert row.share == pytest.approx(1 - 0.01 / 0.3, abs=0.02) and row.share_low > 0.5
    assert row.trained == pytest.approx(0.99, abs=0.002) and row.effect_uu_low > 0
    # with the activation rungs of independent layers, only the function rung is reached
    acts = {f"{k}{i}": {"h": _layer(400, 8)} for k in "tu" for i in range(n)}
    summary = chapter.ladder_summary(chapter.ladder_table(acts, ["h"], pairs.pair_list(n)),
                                     ["h"], n, pd.DataFrame(rows))
    lowest = chapter.lowest_rungs(summary)
    assert lowest.rung.tolist() == ["function"]
    assert chapter.FUNCTION_GROUP in chapter.statements(lowest)[0]
    with pytest.raises(ValueError, match="missing"):
        chapter.function_rung(pd.DataFrame(rows[1:]), ["h"], n)
