"""Principal-component deletion (Ding et al. 2021): the deleted directions are the top ones and
leave the rest untouched, the linear probe agrees with scikit-learn's least squares and reads
planted classes, and the deletion verdict beats the reference of k only where the measure
knows which networks' deletions cost function."""

import numpy as np
import pandas as pd
import pytest
import torch

from repsim_utils.chapters import grounding
from repsim_utils.inference.pairs import TRAINED, trained_pairs
from repsim_utils.science import deletion as dl
from repsim_utils.science.measures import MEASURES

rng = np.random.default_rng(0)


def test_deleting_the_top_components_of_a_planted_spectrum_removes_those_axes_alone():
    scales = np.array([10.0, 5.0, 2.0, 1.0, 0.5])
    q = np.linalg.qr(rng.normal(size=(5, 5)))[0]  # a rotated basis: PCs are q's columns
    a = (rng.normal(size=(4000, 5)) * scales) @ q.T + 3.0
    mean, v = dl.top_components(a, 2)
    assert np.allclose(np.abs(v.T @ q[:, :2]), np.eye(2), atol=0.02)
    kept = dl.delete_components(a, mean, v)
    assert np.allclose((kept - mean) @ v, 0, atol=1e-9)  # nothing left along the deleted axes
    assert np.allclose(kept.mean(0), a.mean(0))  # the mean stays
    var = np.var((kept - mean) @ q, axis=0)
    assert np.allclose(var[2:] / scales[2:] ** 2, 1, atol=0.1) and var[:2].max() < 0.01
    with pytest.raises(ValueError, match="0 < k"):
        dl.top_components(a, 5)


def test_probe_equals_scikit_learns_least_squares_and_reads_planted_classes():
    from sklearn.linear_model import LinearRegression

    y = rng.integers(0, 3, 600)
    x = rng.normal(size=(600, 4)) + 4 * np.eye(3, 4)[y]
    ours = dl.probe_accuracy(x[:300], y[:300], x[300:], y[300:])
    reg = LinearRegression().fit(x[:300], np.eye(3)[y[:300]])
    theirs = np.mean(reg.predict(x[300:]).argmax(1) == y[300:])
    assert ours == pytest.approx(theirs) and ours > 0.95
    noise = dl.probe_accuracy(rng.normal(size=(300, 4)), y[:300], rng.normal(size=(300, 4)),
                              y[300:])
    assert noise < 0.5
    with pytest.raises(ValueError, match="every row needs a label"):
        dl.probe_accuracy(x[:300], y[:299], x[300:], y[300:])


def _planted(n, tracks: bool):
    """Rows (i < j, k) whose probe loss is k + a per-network cost c_j: a measure that
    follows the probe, or one that follows k alone (with noise unrelated to the networks)."""
    cost = 6 * rng.permutation(n) / n  # spread evenly over the networks
    rows = []
    for i, j in trained_pairs(n):
        for k in grounding.DELETIONS:
            probe = k + cost[j]
            rows.append({"layer": "act3", "net_a": f"t{i}", "net_b": f"t{j}", "k": k,
                         grounding.PROBE: probe,
                         "M": probe + 0.01 * rng.normal() if tracks else k + 0.3 * rng.normal()})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("tracks, outcome", [(True, "agrees"), (False, "not agrees")])
def test_deletion_verdict_beats_k_only_when_the_measure_knows_the_networks(tracks, outcome,
                                                                            monkeypatch):
    monkeypatch.setitem(MEASURES, "M", MEASURES["linear CKA"])
    n = 10  # the book's seeds
    summary = grounding.deletion_table(_planted(n, tracks), n, ["M"])
    (verdict,) = grounding.deletion_verdicts(summary, ["M"])
    assert verdict.outcome == outcome if tracks else verdict.outcome != "agrees"
    row = summary.iloc[0]
    assert row.rho_k == pytest.approx(verdict.baseline.value)
    assert row.beyond_k == pytest.approx(row.rho - row.rho_k)
    if tracks:
        assert row.rho > 0.99


def test_pc_deletion_table_of_real_networks_equals_the_direct_computation():
    from repsim_utils.nets.activations import activations
    from repsim_utils.nets.models import MLPSpec, build

    n, layer = 4, "act1"
    nets = [build(MLPSpec((12,)), (1, 4, 4), 3, s) for s in range(n)]
    x, y = torch.randn(200, 1, 4, 4), torch.randint(0, 3, (200,))
    acts = {f"t{i}": activations(net, x[:120], [layer], dtype=np.float64)
            for i, net in enumerate(nets)}
    cka = MEASURES["linear CKA"]
    measures = pd.DataFrame([{"layer": layer, "net_a": f"t{i}", "net_b": f"t{j}",
                              "kind": TRAINED, "linear CKA": cka(acts[f"t{i}"][layer],
                                                                 acts[f"t{j}"][layer])}
                             for i, j in trained_pairs(n)])
    table = grounding.pc_deletion_table(acts, measures, nets, layer, (x[:120], y[:120]),
                                        (x[120:], y[120:]), ["linear CKA"], ks=(1, 3))
    assert len(table) == 6 * 2
    row = table[(table.net_a == "t0") & (table.net_b == "t2") & (table.k == 3)].iloc[0]
    a, b = acts["t0"][layer], acts["t2"][layer]
    mean, v = dl.top_components(b, 3)
    assert row["linear CKA"] == pytest.approx(cka(a, b) - cka(a, dl.delete_components(b, mean, v)))
    with pytest.raises(ValueError, match="keep k below the width"):
        grounding.pc_deletion_table(acts, measures, nets, layer, (x, y), (x, y), ["linear CKA"],
                                    ks=(12,))
