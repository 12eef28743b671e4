"""Benchmark: batched pullback metric and Gaussian curvature vs a per-point autograd loop.

A 2-64-64-1 tanh MLP, its two hidden layers, on a 101 x 101 grid of the square [-1, 1]^2,
float64. Prints the largest difference and the speed ratio. Target: >= 20x.

    python benchmarks/bench_geometry.py
"""

from __future__ import annotations

import time

import torch

from repsim_utils.nets import models
from repsim_utils.science import geometry


def per_point(f, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Metric and Gaussian curvature one point at a time with torch.autograd.functional:
    the Jacobian and the Hessian of every output unit, then the Gauss equation."""
    metrics, curvatures = [], []
    def point(v: torch.Tensor) -> torch.Tensor:
        return f(v[None])[0]

    for t in theta:
        jac = torch.autograd.functional.jacobian(point, t)  # (n, 2)
        hess = torch.autograd.functional.jacobian(
            lambda v: torch.autograd.functional.jacobian(point, v, create_graph=True), t)
        g = jac.T @ jac
        proj = torch.eye(len(jac)) - jac @ torch.linalg.inv(g) @ jac.T
        h11, h22, h12 = hess[:, 0, 0], hess[:, 1, 1], hess[:, 0, 1]
        k = (h11 @ proj @ h22 - h12 @ proj @ h12) / torch.linalg.det(g)
        metrics.append(g.detach())
        curvatures.append(k.detach())
    return torch.stack(metrics), torch.stack(curvatures)


def main() -> None:
    torch.set_default_dtype(torch.float64)
    net = models.build(models.MLPSpec(widths=(64, 64), activation="tanh"), (2,), 1, 0).double()
    axis = torch.linspace(-1, 1, 101)
    theta = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    for name, f in geometry.layer_maps(net, layers=("act1", "act2")).items():
        t0 = time.perf_counter()
        g = geometry.pullback_metric(f, theta)
        k = geometry.gaussian_curvature(f, theta)
        t_fast = time.perf_counter() - t0
        sub = theta[::100]  # the loop on every 100th point, timed and scaled to the full grid
        t0 = time.perf_counter()
        g_ref, k_ref = per_point(f, sub)
        t_ref = (time.perf_counter() - t0) * len(theta) / len(sub)
        diff_g = float((g[::100].detach() - g_ref).abs().max() / g_ref.abs().max())
        diff_k = float((k[::100].detach() - k_ref).abs().max() / k_ref.abs().max())
        print(f"layer {name}: batched {t_fast:.2f} s for {len(theta)} points, per-point loop "
              f"{t_ref:.1f} s (extrapolated from {len(sub)} points), speed-up "
              f"{t_ref / t_fast:.0f}x (target >= 20x); max relative difference metric "
              f"{diff_g:.1e}, curvature {diff_k:.1e}")
        if diff_g > 1e-10 or diff_k > 1e-8:
            raise SystemExit("batched and per-point results differ")


if __name__ == "__main__":
    main()
