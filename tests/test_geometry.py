"""Geometry: known surfaces (sphere, plane, cylinder, torus), linear maps, ReLU nets."""

import copy
import math

import numpy as np
import pytest
import torch

from repsim_utils.nets import models
from repsim_utils.science import geometry


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in double precision; restored for the other test modules."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


GRID = torch.stack(torch.meshgrid(torch.linspace(0.3, 2.8, 7), torch.linspace(-3, 3, 7),
                                  indexing="ij"), -1).reshape(-1, 2).to(torch.float64)


def sphere(r):
    def f(t):
        u, v = t[:, 0], t[:, 1]  # polar angle u in (0, pi), azimuth v
        return r * torch.stack([torch.sin(u) * torch.cos(v), torch.sin(u) * torch.sin(v),
                                torch.cos(u)], -1)
    return f


def torus(big, small):
    def f(t):
        u, v = t[:, 0], t[:, 1]  # u around the tube
        ring = big + small * torch.cos(u)
        return torch.stack([ring * torch.cos(v), ring * torch.sin(v), small * torch.sin(u)], -1)
    return f


def test_sphere_has_curvature_one_over_r_squared():
    for r in (0.5, 2.0):
        k = geometry.gaussian_curvature(sphere(r), GRID)
        torch.testing.assert_close(k, torch.full_like(k, 1 / r**2))
        s = geometry.scalar_curvature(sphere(r), GRID)  # the intrinsic route: R = 2K
        torch.testing.assert_close(s, torch.full_like(s, 2 / r**2))


def test_three_sphere_scalar_curvature_is_six_over_r_squared():
    r = 1.5

    def s3(t):  # hyperspherical coordinates of the 3-sphere in R^4
        a, b, c = t[:, 0], t[:, 1], t[:, 2]
        return r * torch.stack([torch.cos(a), torch.sin(a) * torch.cos(b),
                                torch.sin(a) * torch.sin(b) * torch.cos(c),
                                torch.sin(a) * torch.sin(b) * torch.sin(c)], -1)

    theta = torch.tensor([[0.7, 1.1, 0.3], [1.9, 0.6, -2.0], [1.2, 2.0, 1.0]])
    torch.testing.assert_close(geometry.scalar_curvature(s3, theta),
                               torch.full((3,), 6 / r**2))


def test_plane_and_cylinder_are_flat_and_the_torus_matches_the_textbook():
    a = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0], [0.0, 1.0]])
    plane = lambda t: t @ a.T  # noqa: E731
    torch.testing.assert_close(geometry.gaussian_curvature(plane, GRID), torch.zeros(49))
    torch.testing.assert_close(geometry.pullback_metric(plane, GRID),
                               (a.T @ a).expand(49, 2, 2))
    cyl = lambda t: torch.stack([torch.cos(t[:, 0]), torch.sin(t[:, 0]), t[:, 1]], -1)  # noqa
    torch.testing.assert_close(geometry.gaussian_curvature(cyl, GRID), torch.zeros(49))
    torch.testing.assert_close(geometry.scalar_curvature(cyl, GRID), torch.zeros(49))
    big, small = 3.0, 1.0
    u = GRID[:, 0]
    expected = torch.cos(u) / (small * (big + small * torch.cos(u)))
    torch.testing.assert_close(geometry.gaussian_curvature(torus(big, small), GRID), expected)
    torch.testing.assert_close(geometry.scalar_curvature(torus(big, small), GRID), 2 * expected)


def test_metric_helpers_on_known_metrics():
    g = torch.diag_embed(torch.tensor([[4.0, 9.0], [1.0, 0.25]]))
    torch.testing.assert_close(geometry.volume_element(g), torch.tensor([6.0, 0.5]))
    vals, vecs = geometry.metric_eigen(g)
    torch.testing.assert_close(vals, torch.tensor([[4.0, 9.0], [0.25, 1.0]]))
    assert abs(vecs[0, :, 1] @ torch.tensor([0.0, 1.0])) == pytest.approx(1.0)
    prev = torch.diag_embed(torch.tensor([[2.0, 3.0], [1.0, 1.0]]))
    torch.testing.assert_close(geometry.relative_stretch(g, prev),
                               torch.tensor([[2.0, 3.0], [0.25, 1.0]]))


def test_batched_metric_of_a_network_equals_a_per_point_autograd_loop():
    net = models.build(models.MLPSpec(widths=(16, 16), activation="tanh"), (2,), 1, 0).double()
    maps = geometry.layer_maps(net)
    assert list(maps) == ["act1", "act2", "out"]
    theta = torch.rand(20, 2) * 2 - 1
    for f in maps.values():
        got = geometry.pullback_metric(f, theta)
        for i in range(len(theta)):
            jac = torch.autograd.functional.jacobian(lambda t, f=f: f(t[None])[0], theta[i])
            torch.testing.assert_close(got[i], jac.T @ jac)


def test_relu_network_has_zero_curvature_away_from_boundaries():
    net = models.build(models.MLPSpec(widths=(32, 32), activation="relu"), (2,), 1, 0).double()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.bias.normal_(0, 0.5)
    f = geometry.layer_maps(net)["act2"]
    theta = torch.rand(50, 2) * 2 - 1
    k = geometry.gaussian_curvature(f, theta)
    assert torch.all(k.abs() < 1e-10)
    # and a tanh net of the same weights is curved
    smooth = models.build(models.MLPSpec(widths=(32, 32), activation="tanh"), (2,), 1, 0)
    ks = geometry.gaussian_curvature(geometry.layer_maps(smooth.double())["act2"], theta)
    assert ks.abs().max() > 1e-3


def test_gaussian_curvature_refuses_other_dimensions_and_layer_maps_unknown_layers():
    with pytest.raises(ValueError, match="k = 2"):
        geometry.gaussian_curvature(lambda t: t, torch.zeros(3, 3))
    net = models.build(models.MLPSpec(widths=(4,), activation="tanh"), (2,), 1, 0)
    with pytest.raises(ValueError, match="unknown layers"):
        geometry.layer_maps(net, layers=("act9",))


def test_embedding_composes_with_layer_maps():
    net = models.build(models.MLPSpec(widths=(8,), activation="tanh"), (4,), 1, 0).double()
    emb = lambda t: torch.cat([torch.cos(math.pi * t), torch.sin(math.pi * t)], -1)  # noqa
    f = geometry.layer_maps(net, emb)["act1"]
    theta = torch.rand(5, 2)
    np.testing.assert_allclose(f(theta).detach(), net.layers[:3](emb(theta)).detach())


# -- the chapter's pipeline ------------------------------------------------------------------

import pandas as pd  # noqa: E402

from repsim_utils.chapters import geometry as gs  # noqa: E402
from repsim_utils.nets import data  # noqa: E402
from repsim_utils.science import regime  # noqa: E402


def test_summary_numbers_on_a_synthetic_geometry_with_known_answers():
    theta = gs.grid(41)
    near_a, near_b = gs.near_thresholds(theta, 0.1)
    near = near_a | near_b
    geom = pd.DataFrame({
        "layer": "h", "theta1": theta[:, 0].numpy(), "theta2": theta[:, 1].numpy(),
        "volume": np.where(near, 3.0, 1.0), "curvature": np.where(near, -2.0, 0.5),
        "top_eigenvalue": 1.0, "relative_stretch": np.where(near, 2.0, 1.0),
        "top_x": np.where(near_a, 1.0, 0.0),
        "top_y": np.where(near_a, 0.0, -1.0)})
    s = gs.summary_numbers(geom, 0.1).iloc[0]
    assert s.volume_near_far == pytest.approx(3.0)
    assert s.median_abs_k_near_far == pytest.approx(4.0)
    assert s.stretch_near_far == pytest.approx(2.0)
    assert s.align_a == 1.0 and s.align_b == 1.0
    cell, n_near = (2 / 40) ** 2, int(near.sum())
    total = cell * (6.0 * n_near + 0.5 * (len(near) - n_near))  # |K| * sqrt(det g) * dtheta^2
    assert s.total_abs_k == pytest.approx(total)
    assert s.top1_share == pytest.approx(len(near) // 100 * 6.0 * cell / total)


def test_total_absolute_curvature_is_scale_free_and_matches_the_sphere():
    """On a sphere patch theta in [-1, 1]^2 -> (polar 1 + 0.5 t1, azimuth t2), the integral of
    K dA is the patch's solid angle, whatever the radius (K = 1/r^2, dA = r^2 sin dphi)."""
    theta = gs.grid(81)
    exact = 2 * (math.cos(0.5) - math.cos(1.5))  # integral of sin(u) du over [0.5, 1.5] x 2
    totals = []
    for r in (1.0, 7.0):
        def f(t, r=r):
            return sphere(r)(torch.stack([1 + 0.5 * t[:, 0], t[:, 1]], -1))
        g = geometry.pullback_metric(f, theta)
        geom = pd.DataFrame({
            "layer": "h", "theta1": theta[:, 0].numpy(), "theta2": theta[:, 1].numpy(),
            "volume": geometry.volume_element(g).numpy(),
            "curvature": geometry.gaussian_curvature(f, theta).numpy(),
            "relative_stretch": 1.0, "top_x": 1.0, "top_y": 0.0})
        totals.append(gs.summary_numbers(geom, 0.1).iloc[0].total_abs_k)
    assert totals[0] == pytest.approx(totals[1], rel=1e-9)
    assert totals[0] == pytest.approx(exact, rel=0.05)  # a Riemann sum on an 81 x 81 grid


def test_setup_conditions_regimes_and_heldout_sets():
    torch.set_default_dtype(torch.float32)  # training runs in the study's float32
    with pytest.raises(ValueError, match="task must be one of"):
        gs.Setup(task="xor_sphere")
    setup = gs.Setup(task="xor_square", width=8, epochs=20)
    assert setup.recipe("lazy").model.alpha == setup.lazy_alpha
    assert setup.recipe("rich").model.init_scale == setup.rich_init_scale
    assert setup.recipe("rich + noise").train.input_noise == setup.noise
    net, init = setup.network("untrained", 0)
    assert regime.weight_change(net, init) == 0.0
    g, g0 = (gs.layer_metrics(m, setup, gs.grid(5), ("act1",))["act1"] for m in (net, init))
    assert regime.metric_change(g, g0) == 0.0
    trained_net, trained_init = setup.network("rich", 0)
    assert regime.weight_change(trained_net, trained_init) > 0
    acc = gs.generalisation(trained_net, setup, 100, 0.1)
    assert set(acc) == {"uniform", "near_threshold", "extrapolation"}
    assert all(0 <= v <= 1 for v in acc.values())
    torus = gs.Setup(task="xor_torus", width=8, epochs=20)
    assert np.isnan(gs.generalisation(torus.network("untrained", 0)[0], torus, 50, 0.1)[
        "extrapolation"])
    # the torus embedding is the circle pair of the data module
    t = gs.grid(3).double()
    np.testing.assert_allclose(torus.embedding()(t).numpy(),
                               data.embed("torus", t.numpy()), atol=1e-6)


def test_tangent_kernel_alignment_is_one_for_an_unmoved_net_and_matches_autograd():
    torch.manual_seed(0)
    setup = gs.Setup(task="xor_square", width=6, epochs=5)
    net, init = setup.network("untrained", 0)
    x = gs.grid(4)
    assert regime.kernel_alignment(net, init, x) == pytest.approx(1.0)
    k = regime.tangent_kernel(net, x)
    # a direct formula: the gradient of the output at each point, one backward pass each
    grads = []
    for xi in x:
        net.zero_grad()
        net.layers(xi[None]).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.layers.parameters()]))
    j = torch.stack(grads)
    torch.testing.assert_close(k, j @ j.T)
    moved = copy.deepcopy(net)
    with torch.no_grad():
        for p in moved.layers.parameters():
            p.add_(torch.randn_like(p))
    assert regime.kernel_alignment(moved, init, x) < 0.99


def test_layer_identification_by_metric_fields():
    theta = gs.grid(9)
    rows = []
    for seed in (0, 1, 2):
        for k, layer in enumerate(("act1", "act2", "act3")):
            # each layer its own volume pattern, the same in every network (up to scale)
            vol = np.exp(np.sin((k + 1) * 2.0 * theta[:, 0].numpy()) + 0.01 * seed)
            rows.append(pd.DataFrame({"condition": "rich", "seed": seed, "layer": layer,
                                      "volume": vol * (seed + 1)}))
    ident = gs.layer_identification(pd.concat(rows), "rich", [0, 1, 2])
    trained = ident[ident.kind == "trained vs trained"]
    assert len(trained) == 3 and set(trained.accuracy) == {1.0}
    # grid points shuffled: no layer's map corresponds any more
    assert ident[ident.kind != "trained vs trained"].accuracy.max() < 1.0
