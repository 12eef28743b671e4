"""Benchmark: linear and debiased CKA of one pair, against the peers people use.

Peers, installed for the benchmark only (``make bench`` puts them in ``.bench-peers/``):

- ckatorch 1.0.3, ``cka_base(x, y)``: linear CKA from the two n x n Gram matrices
  (``unbiased=True``: the debiased CKA);
- cka-pytorch 1.1.3, ``hsic.hsic1``: the unbiased HSIC of n x n Gram matrices, as its
  ``CKACalculator`` uses it (debiased CKA = HSIC_1(K, L) / sqrt(HSIC_1(K, K) HSIC_1(L, L)));
- a direct Gram-matrix formula in NumPy (Kornblith et al. 2019: <HKH, HLH>_F / norms).

The study's: ``measures.linear_cka`` / ``debiased_cka`` (streamed sums) and the prepared path
the chapters use (``Measure.layer`` of each side, then ``compare``; its whole cost counted).
For n = 1,000, 5,000 and 10,000 rows x 256 units (float64), each method runs in a fresh
process: its value and difference from the study's, its time and its peak memory above the
resident set once the data are made (the high-water mark, reset before the call). Then the n
at which each Gram-matrix method's n x n matrices no longer fit this machine's memory (from
the measured bytes per n^2).

    python benchmarks/bench_cka_peers.py [--sizes 1000 5000 10000] [--units 256]
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

LINEAR = ("study: prepared", "study: streamed", "direct Gram (NumPy)", "ckatorch")
DEBIASED = ("study: prepared", "study: streamed", "ckatorch (unbiased)", "cka-pytorch hsic1")
GRAM = ("direct Gram (NumPy)", "ckatorch", "ckatorch (unbiased)", "cka-pytorch hsic1")


def _peer(module: str, file: str | None = None):
    """Import a peer, or one file of it without its package's __init__ (cka-pytorch's pulls
    in lightning, which the benchmark does not need)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise SystemExit(f"{module} is not installed: run `make bench` (it installs the peers "
                         f"into .bench-peers/ with --no-deps)")
    if file is None:
        return importlib.import_module(module)
    path = Path(next(iter(spec.submodule_search_locations))) / f"{file}.py"
    loaded = importlib.util.spec_from_file_location(f"{module}_{file}", path)
    mod = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(mod)
    return mod


def _direct_linear(x: np.ndarray, y: np.ndarray) -> float:
    k, m = x @ x.T, y @ y.T
    k = k - k.mean(0) - k.mean(1)[:, None] + k.mean()
    m = m - m.mean(0) - m.mean(1)[:, None] + m.mean()
    return float(np.sum(k * m) / (np.linalg.norm(k) * np.linalg.norm(m)))


def _method(kind: str, name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    from repsim_utils.science import measures as rm

    measure = rm.MEASURES["linear CKA" if kind == "linear" else "debiased CKA"]
    if name == "study: prepared":
        return lambda x, y: measure.compare(measure.layer(x), measure.layer(y))
    if name == "study: streamed":
        return rm.linear_cka if kind == "linear" else rm.debiased_cka
    if name == "direct Gram (NumPy)":
        return _direct_linear
    import torch

    if name.startswith("ckatorch"):
        core = _peer("ckatorch").core
        unbiased = kind == "debiased"
        return lambda x, y: float(core.cka_base(torch.from_numpy(x), torch.from_numpy(y),
                                                unbiased=unbiased))
    hsic1 = _peer("cka_pytorch", "hsic").hsic1

    def cka_pytorch(x: np.ndarray, y: np.ndarray) -> float:
        k = torch.from_numpy(x @ x.T)[None]
        m = torch.from_numpy(y @ y.T)[None]
        return float(hsic1(k, m) / torch.sqrt(hsic1(k, k) * hsic1(m, m)))
    return cka_pytorch


def _data(n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, 16))
    x = np.maximum(z @ rng.standard_normal((16, p)) + rng.standard_normal((n, p)), 0)
    y = np.maximum(z @ rng.standard_normal((16, p)) + rng.standard_normal((n, p)), 0)
    return x, y


def _reset_peak() -> None:
    """Start the resident set's high-water mark afresh (Linux: clear_refs 5); elsewhere it
    keeps the data's creation, and the peaks read low."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_kib() -> int:
    try:
        status = Path("/proc/self/status").read_text().split("\n")
        return int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_kib() -> int:
    try:
        status = Path("/proc/self/status").read_text().split("\n")
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])
    except (OSError, StopIteration):
        return _peak_kib()


def _child(kind: str, name: str, n: int, p: int) -> tuple[float, float, float]:
    """(value, seconds, peak MiB above the baseline) in this fresh process."""
    f = _method(kind, name)
    f(*_data(50, 8))  # imports and first-call set-up are not timed
    x, y = _data(n, p)
    _reset_peak()
    base = _rss_kib()
    t0 = time.perf_counter()
    value = f(x, y)
    seconds = time.perf_counter() - t0
    return value, seconds, max(0, _peak_kib() - base) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10_000])
    ap.add_argument("--units", type=int, default=256)
    args = ap.parse_args()
    _peer("ckatorch"), _peer("cka_pytorch", "hsic")  # refuse before any work
    import psutil

    total = psutil.virtual_memory().total
    ctx = mp.get_context("spawn")
    per_n2: dict[str, float] = {}
    for kind, names in (("linear", LINEAR), ("debiased", DEBIASED)):
        print(f"\n{kind} CKA, {args.units} units per side, float64; ratio: the method's time "
              f"over the study's prepared path", flush=True)
        print(f"{'n':>7}  {'method':<22} {'value':>18} {'|diff|':>9} {'seconds':>9} "
              f"{'ratio':>8} {'peak MiB':>9}", flush=True)
        for n in args.sizes:
            ours = None
            for name in names:
                with ctx.Pool(1, maxtasksperchild=1) as pool:
                    value, seconds, peak = pool.apply(_child, (kind, name, n, args.units))
                if ours is None:
                    ours = (value, seconds)
                if name in GRAM and peak > 0:
                    per_n2[name] = peak * 2**20 / n**2
                print(f"{n:>7}  {name:<22} {value:>18.15f} {abs(value - ours[0]):>9.1e} "
                      f"{seconds:>9.4f} {seconds / ours[1]:>7.1f}x {peak:>9.1f}", flush=True)
    print(f"\nwhere the Gram-matrix methods stop on this machine ({total / 2**30:.0f} GiB): "
          f"from the bytes per n^2 measured at the largest n", flush=True)
    for name, b in per_n2.items():
        print(f"  {name:<22} {b / 8:5.1f} n x n float64 matrices at the peak: n <= "
              f"{int(np.sqrt(total / b)):,}")
    print("  the study's paths hold no n x n matrix: their peak grows as n x units")


if __name__ == "__main__":
    sys.exit(main())
