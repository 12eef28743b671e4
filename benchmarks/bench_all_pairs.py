"""Benchmark: all pairs of S networks x L layers for every registered measure, with each
network's layer prepared once (:meth:`repsim_utils.science.measures.Measure.layer`, as the
standard-measures chapter does) against the per-pair code (``measure(a, b)`` for every pair,
as the chapter did before), in one run:

1. the chapter's shapes (the digits MLP: 1,000 rows x 3 layers of 64 units; the digits conv
   net: 1,000 rows x 16/32/64 channels) at S = 5, 10, 20: seconds, the ratio per-pair /
   prepared, the largest difference between the two, and the growth exponent of the prepared
   code in S (the number of pairs grows as S^2: an exponent below 2 means the per-network work
   still dominates);
2. linear CKA at n = 50,000 x 512 units for S = 5, 10, 20: cross-products per pair amortised
   (all-pairs time / (pairs x one X^T Y)), the achieved GFLOP/s of the 2 n p q floor beside
   this machine's measured float64 GEMM rate, and the per-pair code at S = 5.

    python benchmarks/bench_all_pairs.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from repsim_utils.science import measures as rm


def networks(s: int, n: int, widths: tuple[int, ...], seed: int = 0
             ) -> list[list[np.ndarray]]:
    """S networks' ReLU layers over the same n inputs, sharing a latent (so measures are not
    all 0), float32 like real activations."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 32))
    nets = []
    for _ in range(s):
        layers = []
        for w in widths:
            h = z @ rng.normal(size=(32, w)) + rng.normal(size=(n, w))
            layers.append(np.maximum(h, 0).astype(np.float32))
        nets.append(layers)
    return nets


def per_pair(measure: rm.Measure, nets: list[list[np.ndarray]]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = [measure(a[k], b[k]) for a, b in itertools.combinations(nets, 2)
           for k in range(len(nets[0]))]
    return np.array(out), time.perf_counter() - t0


def prepared(measure: rm.Measure, nets: list[list[np.ndarray]]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    layers = [[measure.layer(a) for a in net] for net in nets]
    out = [measure.compare(a[k], b[k]) for a, b in itertools.combinations(layers, 2)
           for k in range(len(nets[0]))]
    return np.array(out), time.perf_counter() - t0


def chapter_shapes(sizes: tuple[int, ...]) -> None:
    for label, widths in (("digits MLP, 1,000 x (64, 64, 64)", (64, 64, 64)),
                          ("digits conv, 1,000 x (16, 32, 64)", (16, 32, 64))):
        print(f"\n{label}: seconds for all pairs of S networks, every layer")
        print(f"  {'measure':<16s} {'S':>3s} {'pairs':>6s} {'per-pair':>9s} {'prepared':>9s} "
              f"{'ratio':>7s} {'max |diff|':>10s}")
        nets_of = {s: networks(s, 1000, widths) for s in sizes}
        for name, measure in rm.MEASURES.items():
            times = []
            for s in sizes:
                nets = nets_of[s]
                new, t_new = prepared(measure, nets)
                old, t_old = per_pair(measure, nets)
                times.append(t_new)
                print(f"  {name:<16s} {s:3d} {s * (s - 1) // 2:6d} {t_old:9.3f} {t_new:9.3f} "
                      f"{t_old / t_new:6.1f}x {np.max(np.abs(new - old)):10.1e}", flush=True)
            if len(sizes) > 1:
                slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
                print(f"  {name:<16s} growth exponent of the prepared code in S: {slope:.2f}")


def gemm_rate(n: int, p: int) -> tuple[float, float]:
    """Seconds and GFLOP/s of one float64 X^T Y, X and Y (n, p)."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(n, p)), rng.normal(size=(n, p))
    x.T @ y  # warm up
    t0 = time.perf_counter()
    for _ in range(3):
        x.T @ y
    dt = (time.perf_counter() - t0) / 3
    return dt, 2 * n * p * p / dt / 1e9


def large_cka(sizes: tuple[int, ...], n: int = 50_000, p: int = 512) -> None:
    measure = rm.MEASURES["linear CKA"]
    t_cross, rate = gemm_rate(n, p)
    print(f"\nlinear CKA, {n:,} x {p} units, one layer: this machine's float64 X^T Y takes "
          f"{t_cross:.3f} s ({rate:.1f} GFLOP/s)")
    print(f"  {'S':>3s} {'pairs':>6s} {'prepared s':>10s} {'X^T Y per pair':>14s} "
          f"{'GFLOP/s of 2npq':>15s} {'per-pair s':>10s} {'ratio':>6s}")
    for s in sizes:
        nets = networks(s, n, (p,))
        new, t_new = prepared(measure, nets)
        pairs = s * (s - 1) // 2
        line = (f"  {s:3d} {pairs:6d} {t_new:10.2f} {t_new / (pairs * t_cross):14.2f} "
                f"{pairs * 2 * n * p * p / t_new / 1e9:15.1f}")
        if s == sizes[0]:
            old, t_old = per_pair(measure, nets)
            line += (f" {t_old:10.2f} {t_old / t_new:5.1f}x   max |diff| "
                     f"{np.max(np.abs(new - old)):.1e}")
        print(line, flush=True)
        del nets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="S = 5 and 10 only")
    args = parser.parse_args()
    sizes = (5, 10) if args.quick else (5, 10, 20)
    chapter_shapes(sizes)
    large_cka(sizes)


if __name__ == "__main__":
    main()
