"""Benchmark: SubspaceMatcher vs the direct least-squares method of Wang et al. (2018).

The workload is the subspace-match chapter's for one layer pair and one coordinate draw
(:mod:`repsim_utils.chapters.subspace_match`): MMS on the curves' eps grid, the smallest
full-match eps, eps50 by bisection, and the simple-match searches of ``--units`` neurons of the
first layer at the chapter's fixed eps. The pair, by default: the middle hidden layer of two
MLPs trained on MNIST-1D from seeds 0 and 1 as in the chapter's mlp_mnist1d run (width 128,
40 epochs; about 10 s to train, cached in the zoo), on the test split's 1,000 inputs;
``--layer`` picks another, ``--untrained`` compares with an untrained network instead.
``--planted --samples N --width P``: two synthetic ReLU layers sharing a 32-dim subspace
(``--samples 10000 --width 256`` for the paper's d). Prints each part's time, both ways, and
whether the results are identical, as it goes. Target: >= 20x for the workload, no slower for
one maximum_match call.

    python benchmarks/bench_subspace.py [--layer act2] [--untrained] [--units K]
    python benchmarks/bench_subspace.py --planted [--samples N] [--width P]
"""

from __future__ import annotations

import argparse
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


def direct_smallest_eps_for_size(x: np.ndarray, y: np.ndarray, size: int, tol: float) -> float:
    """The bisection of `SubspaceMatcher.smallest_eps_for_size`, on the direct method."""
    lo = 0.0
    hi = min(max(direct_distances(x, y).max(), direct_distances(y, x).max()), 1 - 1e-12)
    if sum(map(len, direct_maximum_match(x, y, lo))) >= size:
        return lo
    while hi - lo > tol:
        mid = (lo + hi) / 2
        big = sum(map(len, direct_maximum_match(x, y, mid))) >= size
        lo, hi = (lo, mid) if big else (mid, hi)
    return hi


def planted_layers(d: int, n: int, shared: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two ReLU-like layers sharing a ``shared``-dim subspace, plus private directions."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(d, shared))
    x = np.maximum(common @ rng.normal(size=(shared, n)) + 0.3 * rng.normal(size=(d, n)), 0)
    y = np.maximum(common @ rng.normal(size=(shared, n)) + 0.3 * rng.normal(size=(d, n)), 0)
    return x, y


def mnist1d_layers(layer: str, untrained: bool) -> tuple[np.ndarray, np.ndarray]:
    """``layer`` of the chapter's MNIST-1D MLPs (seeds 0 and 1, or seed 0 and its untrained
    baseline) on the test split."""
    from repsim_utils.nets import recipes

    params = {"dataset": "mnist1d", "arch": "mlp", "width": 128, "depth": 3, "epochs": 40,
              "lr": 0.05, "batch_size": 64, "n_train": 0, "device": "cpu", "download": False,
              "seeds": [0, 1], "min_accuracy": 0, "split": "test", "n_samples": 0,
              "positions": 0}
    nets = recipes.classifier_networks(params)
    if layer not in nets.layers:
        raise SystemExit(f"--layer must be one of {nets.layers}, got {layer!r}")
    return nets.acts["t0"][layer], nets.acts["u0" if untrained else "t1"][layer]


def _same(fast, ref) -> bool:
    if fast is None or ref is None:
        return fast is None and ref is None
    return np.array_equal(fast.x, ref[0]) and np.array_equal(fast.y, ref[1])


def main() -> None:
    from repsim_utils.chapters import subspace_match as sm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="act2", help="hidden layer of the trained MLPs")
    ap.add_argument("--untrained", action="store_true",
                    help="compare seed 0's layer with an untrained network's")
    ap.add_argument("--planted", action="store_true", help="synthetic layers instead")
    ap.add_argument("--samples", type=int, default=5000, help="rows of the planted layers")
    ap.add_argument("--width", type=int, default=128, help="units of the planted layers")
    ap.add_argument("--units", type=int, default=4,
                    help="simple-match searches (neurons of the first layer)")
    args = ap.parse_args()
    x, y = (planted_layers(d=args.samples, n=args.width, shared=32) if args.planted
            else mnist1d_layers(args.layer, args.untrained))
    print(f"layer pair: {x.shape[0]} samples, {x.shape[1]} + {y.shape[1]} units", flush=True)
    clock = time.perf_counter

    def best_of_3(f) -> float:  # one call takes milliseconds: the best of three
        times = []
        for _ in range(3):
            t0 = clock()
            f()
            times.append(clock() - t0)
        return min(times)

    t_one = best_of_3(lambda: SubspaceMatcher(x, y).maximum_match(0.3))
    t_one_ref = best_of_3(lambda: direct_maximum_match(x, y, 0.3))
    print(f"one maximum_match call, factorisation included (best of 3): {t_one:.3f} s vs "
          f"direct {t_one_ref:.3f} s, ratio {t_one_ref / t_one:.1f}x (target >= 1x)",
          flush=True)

    grid = sm.curve_grid(18, EPS_GRID)  # the MNIST-1D run's curve points
    size = int(np.ceil(0.5 * (x.shape[1] + y.shape[1])))
    t0 = clock()
    fast = SubspaceMatcher(x, y)
    t_init = clock() - t0
    parts: list[tuple[str, float, float, bool]] = []

    def part(name, run_fast, run_ref, same) -> None:
        t0 = clock()
        f = run_fast()
        t_f = clock() - t0 + (t_init if not parts else 0.0)
        t0 = clock()
        r = run_ref()
        t_r = clock() - t0
        parts.append((name, t_f, t_r, same(f, r)))
        print(f"  {name:<42} {t_f:8.3f} s vs direct {t_r:8.2f} s: {t_r / t_f:6.1f}x, "
              f"identical: {parts[-1][3]}", flush=True)

    print("the chapter's workload for one layer pair (the first part includes the "
          "factorisation):", flush=True)
    part(f"MMS on {len(grid)} eps", lambda: [fast.maximum_match(e) for e in grid],
         lambda: [direct_maximum_match(x, y, e) for e in grid],
         lambda f, r: all(map(_same, f, r)))
    # distances from the Gram coordinates are exact to about 1e-7 relative (_coordinates), so
    # the bisections start from slightly different upper ends: equal to the tolerance
    part("smallest full-match eps (to 1e-6)", fast.smallest_full_eps,
         lambda: max(direct_distances(x, y).max(), direct_distances(y, x).max()),
         lambda f, r: abs(f - r) <= 1e-6)
    part("eps50 (bisection, tol 1e-3)", lambda: fast.smallest_eps_for_size(size, 1e-3),
         lambda: direct_smallest_eps_for_size(x, y, size, 1e-3),
         lambda f, r: abs(f - r) <= 1e-3)
    mm = fast.maximum_match(sm.SIMPLE_EPS)
    units = [int(u) for u in mm.x[: args.units]]
    part(f"{len(units)} simple-match searches at eps {sm.SIMPLE_EPS}",
         lambda: [fast.minimal_match(sm.SIMPLE_EPS, u) for u in units],
         lambda: [direct_minimal_match(x, y, sm.SIMPLE_EPS, u) for u in units],
         lambda f, r: all(map(_same, f, r)))
    t_f, t_r = sum(p[1] for p in parts), sum(p[2] for p in parts)
    print(f"workload: SubspaceMatcher {t_f:.2f} s, direct {t_r:.2f} s, speed-up "
          f"{t_r / t_f:.1f}x (target >= 20x)")
    if not all(p[3] for p in parts):
        raise SystemExit("results differ from the direct method")


if __name__ == "__main__":
    main()
