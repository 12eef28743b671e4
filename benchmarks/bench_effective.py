"""Benchmark: batched effective weights vs a per-sample autograd Jacobian loop.

1,000 inputs of 8x8 digits shape, an MLP (64-256-256-256-10) and a conv net (16-32 channels,
batch norm, max pooling), float64. Prints the largest difference and the speed ratio.
Target: >= 20x.

    python benchmarks/bench_effective.py
"""

from __future__ import annotations

import time

import torch

from repsim_utils.nets import models
from repsim_utils.science.effective import effective_weights


def reference(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One autograd Jacobian per sample, in a Python loop (the slow, obvious method)."""
    rows = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: net(v[None])[0], xi)
        rows.append(jac.reshape(jac.shape[0], -1))
    return torch.stack(rows)


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(1000, 1, 8, 8, dtype=torch.float64)
    nets = {
        "MLP 64-256x3-10": models.build(models.MLPSpec(widths=(256, 256, 256)), (1, 8, 8), 10, 0),
        "conv 16-32, BN, max pool": models.build(
            models.ConvSpec(channels=(16, 32), batch_norm=True), (1, 8, 8), 10, 0),
    }
    for name, net in nets.items():
        net = net.double().eval()
        effective_weights(net, x[:64])  # warm-up (first-call allocations)
        times = []
        for _ in range(3):  # best of 3, as timeit does; the reference runs for seconds
            t0 = time.perf_counter()
            w, _ = effective_weights(net, x)
            times.append(time.perf_counter() - t0)
        t_fast = min(times)
        t0 = time.perf_counter()
        ref = reference(net, x)
        t_ref = time.perf_counter() - t0
        diff = float((w - ref).abs().max())
        print(f"{name}: batched {t_fast:.3f} s (best of 3), per-sample autograd {t_ref:.2f} s, "
              f"speed-up {t_ref / t_fast:.0f}x (target >= 20x); max |difference| {diff:.1e}")
        if diff > 1e-10:
            raise SystemExit("effective weights differ from the autograd Jacobian")


if __name__ == "__main__":
    main()
