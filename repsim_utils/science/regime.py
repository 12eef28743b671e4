"""Rich vs lazy training (Chizat, Oyallon & Bach 2019): how far training moved a network from
its initialisation, in its weights, its tangent kernel and a layer's pullback metric. Lazy
training (large output scale alpha) keeps all three near their start; rich training moves them.
"""

from __future__ import annotations

import torch

from repsim_utils.nets.models import Network


def weight_change(net: Network, init: Network) -> float:
    """|w - w0| / |w0| over all trained parameters: small for lazy training."""
    w = torch.cat([p.detach().flatten() for p in net.layers.parameters()])
    w0 = torch.cat([p.detach().flatten() for p in init.layers.parameters()])
    return float((w - w0).norm() / w0.norm())


def tangent_kernel(net: Network, x: torch.Tensor) -> torch.Tensor:
    """Empirical tangent kernel K = J J^T (points, points) of the network's layer stack
    h(x; w) at inputs x (J: d outputs / d parameters, exact by reverse-mode autograd, batched
    over points). For the output-scaled model alpha (h(w) - h(w0)) the kernel is alpha^2 K,
    which the alignment below does not see."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in net.layers.named_parameters()}

    def f(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(net.layers, p, (xi[None],))[0]

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)
    j = torch.cat([v.flatten(2) for v in jac.values()], dim=2).flatten(0, 1)
    return j @ j.T


def kernel_alignment(net: Network, init: Network, x: torch.Tensor) -> float:
    """<K, K0>_F / (||K||_F ||K0||_F) of the tangent kernels after and before training: 1 when
    the kernel has not moved (lazy training), lower as features are learnt."""
    k, k0 = tangent_kernel(net, x), tangent_kernel(init, x)
    return float((k * k0).sum() / (torch.linalg.norm(k) * torch.linalg.norm(k0)))


def metric_change(g: torch.Tensor, g0: torch.Tensor) -> float:
    """mean ||g - g0||_F / mean ||g0||_F over the points: how far a layer's metric moved from
    its initialisation ``g0``."""
    diff = torch.linalg.matrix_norm(g - g0).mean()
    return float(diff / torch.linalg.matrix_norm(g0).mean())


__all__ = ["kernel_alignment", "metric_change", "tangent_kernel", "weight_change"]
