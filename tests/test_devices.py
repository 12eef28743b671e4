"""The torch path of the comparisons: every measure with a device path, the subspace matcher's
product over samples and the effective weights give the NumPy path's results to 1e-10 in
float64. Run here with CPU torch (the same code as on a GPU: only the device differs), and on
CUDA where torch sees one."""

import numpy as np
import pytest
import torch

from repsim_utils.chapters import effective_weights as ew
from repsim_utils.chapters import standard_measures as stdm
from repsim_utils.chapters import subspace_match as sm
from repsim_utils.nets.models import MLPSpec, build
from repsim_utils.science import measures as rm
from repsim_utils.science import prepared as pp
from repsim_utils.science.subspace import SubspaceMatcher

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
rng = np.random.default_rng(0)


def _layers(n=400, seed=0):
    r = np.random.default_rng(seed)
    a = np.maximum(r.normal(size=(n, 12)) @ r.normal(size=(12, 30)), 0) + 5.0
    b = np.maximum(a @ r.normal(size=(30, 24)) + r.normal(size=(n, 24)), 0)
    return a, b


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", [m.name for m in rm.MEASURES.values() if m.on_devices])
def test_every_measure_with_a_device_path_gives_the_numpy_value(name, device):
    m = rm.MEASURES[name]
    a, b = _layers()
    numpy_value = m.compare(m.layer(a), m.layer(b))
    x, y = m.layer(a, device), m.layer(b, device)
    assert any(isinstance(v, torch.Tensor) for v in vars(x).values()) or isinstance(
        x, torch.Tensor)  # it did run in torch
    assert m.compare(x, y) == pytest.approx(numpy_value, abs=1e-10)
    if not m.symmetric:
        assert m.compare(y, x) == pytest.approx(m.compare(m.layer(b), m.layer(a)), abs=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_the_measure_table_on_a_device_equals_the_numpy_table(device):
    a, b = _layers(300, 1)
    acts = {"t0": {"h": a}, "t1": {"h": b}, "u0": {"h": np.maximum(rng.normal(size=(300, 24)), 0)}}
    pairs = [("t0", "t1", "trained"), ("t0", "u0", "untrained")]
    on_cpu = stdm.measure_table(acts, ["h"], pairs)
    there = stdm.measure_table(acts, ["h"], pairs, device=device)
    cols = list(rm.MEASURES)
    np.testing.assert_allclose(there[cols].to_numpy(), on_cpu[cols].to_numpy(), atol=1e-10,
                               rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_the_subspace_matcher_factorised_on_a_device_finds_the_same_matches(device):
    a, b = _layers(500, 2)
    here, there = SubspaceMatcher(a, b), SubspaceMatcher(a, b, device=device)
    np.testing.assert_allclose(there.distances("x"), here.distances("x"), atol=1e-10)
    for eps in (0.1, 0.3, 0.6, 0.9):
        m, n = here.maximum_match(eps), there.maximum_match(eps)
        np.testing.assert_array_equal(m.x, n.x)
        np.testing.assert_array_equal(m.y, n.y)
    acts = {"t0": {"h": a}, "t1": {"h": b}}
    table = sm.mms_table(acts, ["h"], [("t0", "t1", "trained")], [0.3, 0.6], n_coords=400,
                         n_draws=1, device=device)
    ref = sm.mms_table(acts, ["h"], [("t0", "t1", "trained")], [0.3, 0.6], n_coords=400,
                       n_draws=1)
    np.testing.assert_allclose(table["mms"], ref["mms"], atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_effective_weights_on_a_device_equal_those_on_the_cpu(device):
    net = build(MLPSpec(widths=(16, 16)), (8,), 3, seed=0)
    x = torch.from_numpy(rng.normal(size=(20, 8)))
    w, b, f, err = ew.weights_at(net, 0, x)
    w2, b2, f2, err2 = ew.weights_at(net, 0, x, device)
    np.testing.assert_allclose(w2, w, atol=1e-10, rtol=0)
    np.testing.assert_allclose(b2, b, atol=1e-10, rtol=0)
    np.testing.assert_allclose(f2, f, atol=1e-10, rtol=0)
    assert err < 1e-12 and err2 < 1e-12


def test_devices_are_checked_before_any_work():
    with pytest.raises(RuntimeError):
        pp.check_device("no-such-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            pp.check_device("cuda")
        with pytest.raises(ValueError, match="no CUDA device"):
            stdm.measure_table({}, [], [], device="cuda")
        assert pp.run_device("auto") is None
    assert pp.run_device("cpu") is None
    pp.check_device(None)
    pp.check_device("cpu")
