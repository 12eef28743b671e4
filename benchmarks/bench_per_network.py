"""Benchmark: per-network work done once, for the convergent-learning tables and for direct
matching, against the per-pair reference computation, in one run.

1. ``convergent_learning.match_table`` and ``reliable_table`` (each network's layer standardised
   once, every correlation one product) against the same tables from
   ``matching.correlation`` streamed for every pair, S = 10 networks of 3 layers of 128 units
   over 5,000 samples (the MNIST-1D run's shapes), trained and untrained: seconds, the ratio
   and the largest difference.
2. Direct-matching stitches of every ordered pair of S = 10 layers (5,000 x 128): one
   ``AffineFit`` per sender serving every receiver against ``scipy.linalg.lstsq`` per pair.

    python benchmarks/bench_per_network.py
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from repsim_utils.chapters import convergent_learning as cl
from repsim_utils.inference import pairs, stats
from repsim_utils.science import matching
from repsim_utils.science.regression import AffineFit

S, N, WIDTH, LAYERS = 10, 5000, 128, ("act1", "act2", "act3")


def acts(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """S trained-like and S untrained-like networks: ReLU layers sharing a latent."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, 32))
    return {f"{k}{i}": {la: np.maximum(z @ rng.normal(size=(32, WIDTH))
                                       + rng.normal(size=(N, WIDTH)), 0).astype(np.float32)
                        for la in LAYERS}
            for k in "tu" for i in range(S)}


def reference_match(a: dict, layers, plist) -> list[float]:
    out = []
    for la in layers:
        for x, y, _ in plist:
            corr = matching.correlation(a[x][la], a[y][la])
            out.append(matching.semi_match(corr).mean)
    return out


def reference_reliable(a: dict, layers, n: int, seed: int = 0) -> list[float]:
    out = []
    for la in layers:
        for g in "tu":
            x = [a[f"{g}{i}"][la] for i in range(n)]
            for i in range(n):
                others = [j for j in range(n) if j != i]
                best = np.stack([matching.semi_match(matching.correlation(x[i], x[j])).value
                                 for j in others])
                q95 = np.array([np.nanquantile(matching.semi_match(matching.correlation(
                    x[i], stats.shuffled(x[j], seed + j))).value, 0.95) for j in others])
                out.append(matching.reliable_units(best, q95)[0])
    return out


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    a = acts()
    plist = pairs.pair_list(S)
    print(f"1. convergent-learning tables, {S} + {S} networks x {len(LAYERS)} layers of "
          f"{N} x {WIDTH}", flush=True)
    new, t_new = timed(cl.match_table, a, LAYERS, plist)
    ref, t_ref = timed(reference_match, a, LAYERS, plist)
    print(f"   match_table: {t_new:.2f} s, per-pair streamed {t_ref:.2f} s, ratio "
          f"{t_ref / t_new:.1f}x, max |diff| {np.max(np.abs(new.semi.to_numpy() - ref)):.1e}",
          flush=True)
    new, t_new = timed(cl.reliable_table, a, LAYERS, S)
    ref, t_ref = timed(reference_reliable, a, LAYERS, S)
    print(f"   reliable_table: {t_new:.2f} s, per-pair streamed {t_ref:.2f} s, ratio "
          f"{t_ref / t_new:.1f}x, max |diff| "
          f"{np.max(np.abs(new.reliable.to_numpy() - ref)):.1e}", flush=True)

    print(f"2. direct matching of every ordered pair of {S} layers of {N} x {WIDTH}", flush=True)
    layers = [a[f"t{i}"]["act1"].astype(np.float64) for i in range(S)]

    def shared():
        fits = [AffineFit(x) for x in layers]
        return [fits[i].solve(layers[j])[0] for i in range(S) for j in range(S) if i != j]

    def per_pair():
        return [scipy.linalg.lstsq(layers[i] - layers[i].mean(0), layers[j] - layers[j].mean(0),
                                   lapack_driver="gelsd")[0]
                for i in range(S) for j in range(S) if i != j]

    new, t_new = timed(shared)
    ref, t_ref = timed(per_pair)
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(new, ref, strict=True))
    print(f"   one factorisation per sender: {t_new:.2f} s, lstsq per pair {t_ref:.2f} s, ratio "
          f"{t_ref / t_new:.1f}x, max |diff| {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
