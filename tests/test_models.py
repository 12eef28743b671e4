"""Model construction and activations read back from named layers."""

import numpy as np
import pytest
import torch

from repsim_utils.nets.activations import activations
from repsim_utils.nets.models import ConvSpec, MLPSpec, build


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    a = build(MLPSpec((16, 8)), (1, 8, 8), 10, seed=3)
    assert torch.equal(torch.rand(1), expected)
    b = build(MLPSpec((16, 8)), (1, 8, 8), 10, seed=3)
    c = build(MLPSpec((16, 8)), (1, 8, 8), 10, seed=4)
    for name, pa in a.named_parameters():
        assert torch.equal(pa, b.get_parameter(name))
        if name.endswith("weight"):  # biases start at zero for every seed
            assert not torch.equal(pa, c.get_parameter(name))


def test_layer_names_and_init_scale():
    net = build(MLPSpec((256, 128), init_scale=2.0), (64,), 10, seed=0)
    assert net.hidden == ("act1", "act2")
    # He init: std = init_scale * sqrt(2) / sqrt(fan_in)
    std = float(net.layer("fc1").weight.detach().std())
    assert std == pytest.approx(2.0 * np.sqrt(2 / 64), rel=0.05)
    with pytest.raises(KeyError, match="no layer 'act9'; layers: flatten, fc1, act1"):
        net.layer("act9")
    conv = build(ConvSpec((4, 6), batch_norm=True), (1, 8, 8), 10, seed=0)
    assert conv.hidden == ("act1", "act2")
    assert conv(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_alpha_scaled_model_is_zero_at_init():
    net = build(MLPSpec((8,), activation="tanh", alpha=10.0), (2,), 1, seed=0)
    assert torch.allclose(net(torch.randn(5, 2)), torch.zeros(5, 1))
    assert all(not p.requires_grad for p in net.reference.parameters())


@pytest.mark.parametrize("bad", [dict(activation="sigmoid"), dict(widths=()),
                                 dict(init_scale=0.0)])
def test_bad_specs_are_refused(bad):
    with pytest.raises(ValueError):
        MLPSpec(**bad)


def test_mlp_activations_equal_a_direct_forward_pass():
    net = build(MLPSpec((12, 7)), (1, 8, 8), 10, seed=1)
    x = torch.randn(50, 1, 8, 8)
    acts = activations(net, x, ["act1", "act2"], batch_size=16, dtype=np.float64)
    h1 = torch.relu(net.layer("fc1")(x.flatten(1)))
    h2 = torch.relu(net.layer("fc2")(h1))
    np.testing.assert_allclose(acts["act1"], h1.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(acts["act2"], h2.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert all(not m._forward_hooks for m in net.modules())  # hooks removed


def test_conv_activations_are_channels_by_input_positions():
    net = build(ConvSpec((5,), pool="max"), (1, 8, 8), 10, seed=1)
    x = torch.randn(6, 1, 8, 8)
    a = activations(net, x, ["act1"], batch_size=4)["act1"]
    fmap = torch.relu(net.layer("conv1")(x)).detach()  # (6, 5, 8, 8)
    assert a.shape == (6 * 64, 5)
    # sample index = input * 64 + position (row-major), unit = channel
    np.testing.assert_allclose(a[64 * 2 + 8 * 3 + 4], fmap[2, :, 3, 4].numpy(), atol=1e-6)
    sub = activations(net, x, ["act1"], batch_size=4, positions=10, seed=7)["act1"]
    again = activations(net, x, ["act1"], batch_size=6, positions=10, seed=7)["act1"]
    assert sub.shape == (60, 5)
    np.testing.assert_array_equal(sub, again)  # same positions whatever the batch size
    rows = {tuple(np.round(r, 5)) for r in a}
    assert all(tuple(np.round(r, 5)) in rows for r in sub)
    whole = activations(net, x, ["act1"], batch_size=4, per_input=True)["act1"]
    np.testing.assert_allclose(whole, fmap.reshape(6, -1).numpy(), atol=1e-6)


def test_max_rows_keeps_the_same_uniform_subset_of_conv_rows_batch_by_batch():
    """Selected while streaming (small batches) equals selected from the full array, and the
    rows are shared by two networks of one architecture."""
    from repsim_utils.nets.activations import _row_index

    torch.manual_seed(0)
    x = torch.randn(37, 1, 8, 8)
    a = build(ConvSpec(channels=(4, 8)), (1, 8, 8), 10, 0)
    b = build(ConvSpec(channels=(4, 8)), (1, 8, 8), 10, 1)
    layers = list(a.hidden)
    full = activations(a, x, layers)
    kept = activations(a, x, layers, batch_size=5, max_rows=300, seed=3)
    for layer in layers:
        n = len(full[layer])
        if n > 300:
            rows = _row_index(n, 300, 3)
            assert len(np.unique(rows)) == 300 and rows.max() < n
            np.testing.assert_array_equal(kept[layer], full[layer][rows])
        else:
            np.testing.assert_array_equal(kept[layer], full[layer])
    other = activations(b, x, layers, batch_size=7, max_rows=300, seed=3)
    assert {k: v.shape for k, v in other.items()} == {k: v.shape for k, v in kept.items()}
