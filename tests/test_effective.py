"""Effective weights: f(x) = W_eff(x) x + b_eff(x), W_eff = the Jacobian, linear nets."""

import numpy as np
import pytest
import torch
from torch import nn

from repsim_utils import models
from repsim_utils.effective import UnsupportedLayer, effective_weights, reconstruction_error


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
