"""Benchmark: SubspaceMatcher vs the direct least-squares method of Wang et al. (2018).

Workload (one layer pair, 10,000 samples, 2 x 256 units): the paper's eps grid, the smallest
full-match eps, and minimal matches of a few units. Prints identical-result checks and the
speed ratio. Target: >= 20x for the workload, no slower for one maximum_match call.

    python benchmarks/bench_subspace.py
"""

from __future__ import annotations

import time

import numpy as np

from repsim_utils.science.subspace import SubspaceMatcher

EPS_GRID = (0.15, 0.2, 0.25, 0.3, 0.5)


# -- the reference: a fresh d x |Y'| least-squares problem every round, as in the paper ----------


def direct_distances(v: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Relative distance of each column of v to span(basis), by least squares in R^d."""
    if basis.shape[1] == 0:
        return np.ones(v.shape[1])
    coef = np.linalg.lstsq(basis, v, rcond=None)[0]
    return np.linalg.norm(v - basis @ coef, axis=0) / np.linalg.norm(v, axis=0)


def direct_maximum_match(x: np.ndarray, y: np.ndarray, eps: float,
                         xs: np.ndarray | None = None, ys: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 of Wang et al. (2018), directly in the d-dimensional sample space."""
    if xs is None:
        xs = np.flatnonzero(np.linalg.norm(x, axis=0) > 0)
        ys = np.flatnonzero(np.linalg.norm(y, axis=0) > 0)
    while True:
        xs_new = xs[direct_distances(x[:, xs], y[:, ys]) <= eps]
        if len(xs_new) == 0:
            return xs_new, ys[:0]
        ys_new = ys[direct_distances(y[:, ys], x[:, xs_new]) <= eps]
        if len(ys_new) == 0:
            return xs_new[:0], ys_new
        if len(xs_new) == len(xs) and len(ys_new) == len(ys):
            return xs_new, ys_new
        xs, ys = xs_new, ys_new


def direct_minimal_match(x, y, eps, unit):
    xs, ys = direct_maximum_match(x, y, eps)
    if unit not in xs:
        return None
    for s, w in [("x", int(i)) for i in xs] + [("y", int(j)) for j in ys]:
        if (s, w) == ("x", unit) or w not in (xs if s == "x" else ys):
            continue
        tx = xs[xs != w] if s == "x" else xs
        ty = ys[ys != w] if s == "y" else ys
        nx, ny = direct_maximum_match(x, y, eps, tx, ty)
        if unit in nx:
            xs, ys = nx, ny
    return xs, ys


def planted_layers(d: int, n: int, shared: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two ReLU-like layers sharing a ``shared``-dim subspace, plus private directions."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(d, shared))
    x = np.maximum(common @ rng.normal(size=(shared, n)) + 0.3 * rng.normal(size=(d, n)), 0)
    y = np.maximum(common @ rng.normal(size=(shared, n)) + 0.3 * rng.normal(size=(d, n)), 0)
    return x, y


def main() -> None:
    x, y = planted_layers(d=10_000, n=256, shared=32)
    units = [0, 1, 2]

    t0 = time.perf_counter()
    fast = SubspaceMatcher(x, y)
    fast_grid = [fast.maximum_match(e) for e in EPS_GRID]
    fast_full = fast.smallest_full_eps()
    eps_min = max(EPS_GRID)
    fast_min = [fast.minimal_match(eps_min, u) for u in units]
    t_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref_grid = [direct_maximum_match(x, y, e) for e in EPS_GRID]
    alive_x, alive_y = np.arange(x.shape[1]), np.arange(y.shape[1])
    ref_full = max(direct_distances(x, y).max(), direct_distances(y, x).max())
    ref_min = [direct_minimal_match(x, y, eps_min, u) for u in units]
    t_ref = time.perf_counter() - t0

    same = all(np.array_equal(f.x, r[0]) and np.array_equal(f.y, r[1])
               for f, r in zip(fast_grid, ref_grid, strict=True))
    same_min = all((f is None and r is None) or (np.array_equal(f.x, r[0])
                                                 and np.array_equal(f.y, r[1]))
                   for f, r in zip(fast_min, ref_min, strict=True))
    print(f"layer pair: {x.shape[0]} samples, {x.shape[1]} + {y.shape[1]} units "
          f"({len(alive_x)} + {len(alive_y)} alive)")
    print("MMS on the eps grid:", {e: round(m.similarity, 4) for e, m in zip(EPS_GRID, fast_grid,
                                                                              strict=True)})
    print(f"identical maximum matches: {same}; identical minimal matches: {same_min}; "
          f"smallest full eps {fast_full:.6f} vs {ref_full:.6f}")
    print(f"workload: SubspaceMatcher {t_fast:.2f} s, direct {t_ref:.2f} s, "
          f"speed-up {t_ref / t_fast:.1f}x (target >= 20x)")

    # a single call, factorisation included
    t0 = time.perf_counter()
    SubspaceMatcher(x, y).maximum_match(0.3)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    direct_maximum_match(x, y, 0.3)
    t_one_ref = time.perf_counter() - t0
    print(f"one maximum_match call: {t_one:.3f} s vs direct {t_one_ref:.3f} s, "
          f"ratio {t_one_ref / t_one:.1f}x (target >= 1x)")
    if not (same and same_min):
        raise SystemExit("results differ from the direct method")


if __name__ == "__main__":
    main()
