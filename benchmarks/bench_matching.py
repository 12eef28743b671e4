"""Benchmark: the convergent-learning per-layer report on 2 x 512 units over 50,000 samples.

Times every step (streamed correlation, semi and bipartite matching, mutual information,
sparse prediction of a sample of units, clustering), compares the correlation step with this
machine's own matrix product on the same shapes (the floor for an exact float64 computation),
and prints peak memory (numpy allocations traced by tracemalloc, and the process maximum).

    python benchmarks/bench_matching.py
"""

from __future__ import annotations

import resource
import time
import tracemalloc

import numpy as np

from repsim_utils.science import matching

N, UNITS, SPARSE_UNITS = 50_000, 512, 16


def layers(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two ReLU layers driven by a shared 64-dim latent, float32 like real activations."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, 64)).astype(np.float32)
    a = np.maximum(z @ rng.normal(size=(64, UNITS)).astype(np.float32)
                   + rng.normal(size=(N, UNITS)).astype(np.float32), 0)
    b = np.maximum(z @ rng.normal(size=(64, UNITS)).astype(np.float32)
                   + rng.normal(size=(N, UNITS)).astype(np.float32), 0)
    return a, b


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    print(f"  {label:<44s} {dt:8.2f} s")
    return out, dt


def main() -> None:
    a, b = layers()
    print(f"layer pair: {N} samples x {UNITS} + {UNITS} units")
    tracemalloc.start()
    corr, t_corr = timed("correlation (streamed, float64 co-moments)", matching.correlation,
                         a, b)
    semi, _ = timed("semi-matching", matching.semi_match, corr)
    bip, _ = timed("bipartite matching (linear_sum_assignment)", matching.bipartite_match, corr)
    timed("same-partner fraction", matching.same_partner_fraction, semi, bip)
    mi, _ = timed("mutual information (10 bins, all pairs)", matching.mutual_information, a, b)
    timed("semi-matching on MI", matching.semi_match, mi)
    timed(f"sparse prediction of {SPARSE_UNITS} units, 4 penalties", matching.sparse_prediction,
          a, b[:, :SPARSE_UNITS], [1e-3, 1e-2, 1e-1, 1.0])
    joint = matching.correlation(np.hstack([a, b]))
    timed("spectral clustering of the joint matrix", matching.cluster_units,
          np.nan_to_num(joint), 16)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # the floor: the centred cross-product itself, one float64 matrix product in memory
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    t0 = time.perf_counter()
    _ = (a64 - a64.mean(0)).T @ (b64 - b64.mean(0))
    t_mm = time.perf_counter() - t0
    print(f"correlation vs one in-memory float64 matrix product of the same shapes: "
          f"{t_corr:.2f} s vs {t_mm:.2f} s, ratio {t_corr / t_mm:.2f}")
    print(f"peak traced numpy memory during the report: {peak / 2**20:.0f} MiB "
          f"(the two float32 layers alone: {(a.nbytes + b.nbytes) / 2**20:.0f} MiB); process "
          f"maximum resident set: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f}"
          f" MiB")


if __name__ == "__main__":
    main()
