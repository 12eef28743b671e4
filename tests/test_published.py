"""Published numbers beside the study's: the simulated CKA null against the large-sample
formula and against the package's linear CKA draw by draw, and the table's rows read from
planted run records (first/last layer, a verdict, a turned sign)."""

from types import SimpleNamespace

import numpy as np
import pytest

from repsim_utils.chapters import published as pub
from repsim_utils.science.measures import MEASURES


@pytest.mark.parametrize("n", [32, 64, 256])
def test_cka_null_level_is_about_p_over_n_plus_p(n):
    # E ||X^T Y||^2 = (n-1) p q and E ||X^T X||_F^2 ~ (n-1) p (n - 1 + p): p / (n + p) for p = q
    mean, se = pub.cka_null_level(n, 8, reps=4000)
    assert mean == pytest.approx(8 / (n + 8), rel=0.03) and se < 0.01 * mean + 1e-3


def test_cka_null_level_equals_the_packages_linear_cka_draw_by_draw():
    reps, n = 5, 40
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((reps, n, 8)), rng.standard_normal((reps, n, 8))
    direct = np.mean([MEASURES["linear CKA"](x[r], y[r]) for r in range(reps)])
    assert pub.cka_null_level(n, 8, reps=reps, seed=0)[0] == pytest.approx(direct, rel=1e-9)
    with pytest.raises(ValueError, match="n_samples >= 3"):
        pub.cka_null_level(2)


def _record(chapter, run, results, verdicts=()):
    return SimpleNamespace(chapter=chapter, run=run, results=results, verdicts=list(verdicts))


def test_published_table_reads_the_rows_each_entry_names():
    cl = [{"layer": la, "statistic": s, "trained": v, "trained_low": v - 0.1,
           "trained_high": v + 0.1, "uu": 0.2, "untrained": 0.3, "null": 0.05}
          for la, base in (("act1", 0.6), ("act2", 0.4)) for s, v in (("semi", base),
                                                                       ("bipartite", base - 0.05))]
    grounding = [{"layer": la, "measure": m, "quantity": "accuracy gap", "rho": r,
                  "low": r - 0.2, "high": r + 0.1, "uu": None}
                 for la, r in (("act1", 0.9), ("act2", -0.5)) for m in MEASURES]
    verdict = {"id": "seeds_stitch_with_little_loss", "value": 0.01, "ci": [0.005, 0.02],
               "uu": {"name": "untrained sender", "value": 0.5}, "baseline": None, "null": None}
    records = {"a": _record("convergent_learning", "mlp", {"cl_summary": cl}),
               "b": _record("standard_measures", "mlp", {"stdm_grounding": grounding}),
               "c": _record("stitching", "mlp", {}, [verdict])}
    t = pub.published_table(records)
    semi = t[t.quantity.str.startswith("semi")].iloc[0]
    assert semi.layer == "act1" and semi.study == "0.6 [0.5, 0.7]" and semi.published == "0.703"
    assert "untrained pairs 0.2" in semi.references and "null 0.05" in semi.references
    seeds = t[t.quantity.str.contains("across seeds") & t.quantity.str.contains("PWCCA")].iloc[0]
    assert seeds.layer == "act2" and seeds.study == "0.5 [0.4, 0.7]"  # last layer, sign turned
    stitch = t[t.paper == "bansal2021revisiting"].iloc[0]
    assert stitch.study == "0.01 [0.005, 0.02]" and "untrained sender 0.5" in stitch.references
    assert not (t.paper == "kornblith2019similarity").any()  # no identification table given
    assert (t.relation == pub.SAME_SCALE).sum() == len(pub.CKA_NULL)
