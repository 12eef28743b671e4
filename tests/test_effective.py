"""Effective weights: f(x) = W_eff(x) x + b_eff(x), W_eff = the Jacobian, linear nets."""

import numpy as np
import pytest
import torch
from torch import nn

from repsim_utils.nets import models
from repsim_utils.science.effective import UnsupportedLayer, effective_weights, reconstruction_error


def mlp(bias, seed=0):
    net = models.build(models.MLPSpec(widths=(20, 15, 10), bias=bias), (1, 8, 8), 10, seed)
    with torch.no_grad():  # non-zero biases, so b_eff is exercised
        for m in net.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.3)
    return net.double().eval()


def conv(bias, batch_norm, pool="max", seed=0):
    spec = models.ConvSpec(channels=(4, 6), bias=bias, batch_norm=batch_norm, pool=pool)
    net = models.build(spec, (1, 8, 8), 10, seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
            elif isinstance(m, nn.Conv2d | nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.3)
    return net.double().eval()


X = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
NETS = {
    "mlp": lambda: mlp(True), "mlp_nobias": lambda: mlp(False),
    "conv": lambda: conv(True, False), "conv_bn": lambda: conv(True, True),
    "conv_nobias": lambda: conv(False, False), "conv_avgpool": lambda: conv(True, True, "avg"),
}


@pytest.mark.parametrize("name", NETS)
def test_effective_map_reproduces_the_network(name):
    net = NETS[name]()
    assert reconstruction_error(net, X) < 1e-10
    w, b = effective_weights(net, X)
    assert w.shape == (32, 10, 64) and b.shape == (32, 10)
    if name.endswith("nobias"):  # bias-free: f(x) = W_eff(x) x, b_eff = 0
        assert b.abs().max() == 0


@pytest.mark.parametrize("name", NETS)
def test_effective_weights_equal_the_autograd_jacobian(name):
    net = NETS[name]()
    w, _ = effective_weights(net, X)
    jac = torch.func.vmap(torch.func.jacrev(lambda x: net(x[None])[0]))(X)
    np.testing.assert_allclose(w.numpy(), jac.detach().reshape(32, 10, 64).numpy(), atol=1e-12)


def test_alpha_scaled_network_is_the_scaled_difference_of_two_maps():
    net = models.build(models.MLPSpec(widths=(12,), alpha=5.0), (1, 8, 8), 10, 0).double()
    with torch.no_grad():
        net.layers.fc1.weight.add_(0.1)  # trained away from its reference
    assert reconstruction_error(net, X) < 1e-10
    w, _ = effective_weights(net, X)
    w_now, _ = effective_weights(nn.Sequential(*net.layers), X)
    w_ref, _ = effective_weights(net.reference, X)
    torch.testing.assert_close(w, 5.0 * (w_now - w_ref))


def test_linear_network_has_one_map_the_product_of_its_weights():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Linear(16, 5)).double()
    w, b = effective_weights(net, X)
    product = net[2].weight @ net[1].weight
    torch.testing.assert_close(w, product.expand(32, 5, 64))
    torch.testing.assert_close(b[0], net[2].weight @ net[1].bias + net[2].bias)


def test_unsupported_layers_are_named():
    with pytest.raises(UnsupportedLayer, match=r"'1' \(Tanh\)"):
        effective_weights(nn.Sequential(nn.Flatten(), nn.Tanh()).double(), X)
    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten()).double().train()
    with pytest.raises(UnsupportedLayer, match="eval mode"):
        effective_weights(bn, X)
    with pytest.raises(UnsupportedLayer, match="Network or an nn.Sequential"):
        effective_weights(nn.Linear(64, 3), X)


# -- class-structure measures ---------------------------------------------------------------

from repsim_utils.science import class_structure as cs  # noqa: E402


def slow_class_cosines(z, labels):
    intra, inter = [], []
    for i in range(len(z)):
        for j in range(len(z)):
            if i == j:
                continue
            c = z[i] @ z[j] / np.linalg.norm(z[i]) / np.linalg.norm(z[j])
            (intra if labels[i] == labels[j] else inter).append(c)
    return np.mean(intra), np.mean(inter)


def test_class_measures_on_orthogonal_prototypes():
    labels = np.repeat(np.arange(3), 10)
    z = np.eye(3)[labels] * np.arange(1, 31)[:, None]  # one direction per class, any length
    assert cs.class_cosines(z, labels) == (1.0, 0.0)
    assert cs.silhouette(z, labels) == pytest.approx(1.0)
    assert cs.knn_accuracy(z, labels) == 1.0
    two = np.repeat([0, 1], 5)
    centred = cs.class_cosines(np.eye(2)[two], two, center=True)  # +-(e1 - e2) / 2
    assert centred == pytest.approx((1.0, -1.0))
    assert cs.class_mean_cosine(z, labels) == pytest.approx(0.0)  # orthogonal class means
    same = np.ones((30, 3)) * np.arange(1, 31)[:, None]  # every class points the same way
    assert cs.class_mean_cosine(same, labels) == pytest.approx(1.0)
    # 45 degrees between the two class directions: cos = 1 / sqrt(2)
    tilt = np.where(two[:, None] == 0, [1.0, 0.0], [1.0, 1.0])
    assert cs.class_mean_cosine(tilt, two) == pytest.approx(2 ** -0.5)
    row = cs.measures(z, labels, k=3)
    assert row["cos_intra"] == 1.0 and row["class_mean_cos"] == pytest.approx(0.0)


def test_map_similarity_needs_the_same_input_and_ignores_scale():
    from repsim_utils.chapters import effective_weights

    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 12))
    assert effective_weights.map_similarity(a, 3.0 * a) == pytest.approx(1.0)
    assert effective_weights.map_similarity(a, -a) == pytest.approx(-1.0)
    assert abs(effective_weights.map_similarity(a, rng.normal(size=(50, 12)))) < 0.1
    with pytest.raises(ValueError, match="one shape"):
        effective_weights.map_similarity(a, a[:, :6])


def test_class_measures_agree_with_slow_formulas_and_see_no_structure_in_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 40)
    z = rng.normal(size=(40, 6)) + 0.5
    np.testing.assert_allclose(cs.class_cosines(z, labels), slow_class_cosines(z, labels))
    np.testing.assert_allclose(cs.class_cosines(z, labels, center=True),
                               slow_class_cosines(z - z.mean(0), labels))
    noise = rng.normal(size=(400, 20))
    intra, inter = cs.class_cosines(noise, rng.integers(0, 4, 400))
    assert abs(intra - inter) < 0.02
    assert cs.distance_ratio(noise, rng.integers(0, 4, 400)) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="zero vector"):
        cs.class_cosines(np.vstack([z, np.zeros(6)]), np.append(labels, 0))
    with pytest.raises(ValueError, match="two classes"):
        cs.silhouette(z, np.zeros(40))


def test_label_null_sees_no_class_structure_where_the_classes_are_clear():
    from repsim_utils.chapters import effective_weights

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    clear = np.eye(4)[labels] * 5 + rng.normal(size=(120, 4))  # four tight classes
    flat = {("net", 0): rng.normal(size=(120, 4)), ("net", 9): clear}
    null = effective_weights.label_null_table(flat, ["net"], torch.tensor(clear), labels)
    assert list(null.state) == ["raw", "init", "final"]
    assert cs.silhouette(clear, labels) > 0.5  # the real labels see the classes
    assert (null.silhouette.abs() < 0.15).all(), null  # random groups: near 0, often below
    np.testing.assert_allclose(null.distance_ratio, 1.0, atol=0.05)
    with pytest.raises(ValueError, match="no effective weights"):
        effective_weights.label_null_table(flat, ["other"], torch.tensor(clear), labels)


def test_probe_set_is_class_balanced_and_templates_pick_each_class_row():
    from repsim_utils.chapters import effective_weights
    from repsim_utils.nets import data

    digits = data.load("digits")
    x, y = effective_weights.probe_set(digits, per_class=7, seed=3)
    assert np.array_equal(np.bincount(y.numpy()), np.full(10, 7))
    x2, _ = effective_weights.probe_set(digits, per_class=7, seed=3)
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="fewer than"):
        effective_weights.probe_set(digits, per_class=10_000)
    labels = np.array([0, 0, 1])
    w = np.arange(3 * 2 * 4, dtype=float).reshape(3, 2 * 4)  # (samples, outputs * inputs)
    t = effective_weights.class_templates(w, labels, n_out=2)
    np.testing.assert_array_equal(t[0], (w[0, :4] + w[1, :4]) / 2)
    np.testing.assert_array_equal(t[1], w[2, 4:])


def test_transposed_convolution_path_equals_the_dense_path(monkeypatch):
    from repsim_utils.science import effective

    net = conv(True, True)
    dense_w, dense_b = effective_weights(net, X)
    monkeypatch.setattr(effective, "DENSE_CONV_LIMIT", 0)  # large layers take this path
    w, b = effective_weights(net, X, batch_size=7)
    torch.testing.assert_close(w, dense_w, rtol=0, atol=1e-12)
    torch.testing.assert_close(b, dense_b, rtol=0, atol=1e-12)


def test_figures_with_bootstrap_bands_are_the_same_on_a_rerun():
    """seaborn draws its 95% bands by bootstrap; the chapter seeds it, so a rerun of the same
    numbers draws the same figure, byte for byte."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from repsim_utils.chapters import effective_weights_figures as ew_figures

    g = np.random.default_rng(0)
    weff = pd.DataFrame([{"bias": "bias-free", "epoch": e, "seed": s, "test_acc": g.random(),
                          **{k: g.random() for k in ("cos_intra_centred", "class_mean_cos",
                                                     "distance_ratio", "silhouette", "knn")}}
                         for e in (0, 1, 2) for s in range(5)])

    def png():
        buf = io.BytesIO()
        fig = ew_figures.metrics(weff, {"knn": 0.5})
        fig.savefig(buf, format="png")
        matplotlib.pyplot.close(fig)
        return buf.getvalue()

    assert png() == png()
