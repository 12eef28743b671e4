"""Benchmark: the whole book's runs, serial vs ``--jobs 2`` (Dask), and a second build with
nothing changed (the execution cache plus Sphinx's incremental build).

Each mode starts from an empty output folder and an empty model cache, so both train their
networks; the cached build then reruns the serial output folder. Prints wall times, the ratios
against the serial run, and whether the results JSON of the two modes match number for number.

    python benchmarks/bench_pipeline.py              # default profile (about 25 minutes)
    python benchmarks/bench_pipeline.py --profile smoke

Targets: --jobs 2 faster than serial on 2 cores with the same results; a second `make book`
with nothing changed under 30 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def numbers(value, path=""):
    """Every number of a JSON value, by path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from numbers(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path, float(value)


def compare(a: Path, b: Path) -> tuple[int, int, float]:
    """(numbers compared, numbers exactly equal, largest relative difference) over the
    results and verdicts of every run."""
    total = equal = 0
    worst = 0.0
    for f in sorted((a / "executed").glob("*.json")):
        ra, rb = (json.loads(p.read_text()) for p in (f, b / "executed" / f.name))
        na = dict(numbers({"r": ra["results"], "v": ra["verdicts"]}))
        nb = dict(numbers({"r": rb["results"], "v": rb["verdicts"]}))
        assert na.keys() == nb.keys(), f.name
        for k, x in na.items():
            y = nb[k]
            total += 1
            equal += x == y
            if x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    return total, equal, worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="repsim-bench-"))
    base = dict(os.environ, REPSIM_PROGRESS="0", MPLBACKEND="Agg")
    run = [py, "-m", "repsim_utils", "run", "--profile", args.profile, "--no-progress",
           "--heartbeat", "0"]
    times = {}
    for mode, extra in (("serial", []), ("jobs2", ["--jobs", "2"])):
        env = dict(base, REPSIM_CACHE=str(work / f"models-{mode}"))
        times[mode] = timed(run + ["--out", str(work / mode / "book")] + extra, env)
        print(f"{mode:>8}: {times[mode]:7.1f} s", flush=True)

    # the book around the serial outputs, built once, then `make book` again: run + build
    site = work / "serial"
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, site / name)
    shutil.copytree(ROOT / "book", site / "book", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("executed", "figures"))
    shutil.copytree(ROOT / "notebooks", site / "notebooks")
    jb = [str(Path(py).with_name("jupyter-book")), "build", "-W", "-n", "--keep-going",
          str(site)]
    env = dict(base, REPSIM_CACHE=str(work / "models-serial"))
    times["first build"] = timed(jb, env)
    times["cached run"] = timed(run + ["--out", str(site / "book")], env)
    times["cached build"] = timed(jb, env)
    second = times["cached run"] + times["cached build"]
    print(f"first jupyter-book build: {times['first build']:.1f} s")
    print(f"second make book (nothing changed): {second:.1f} s = run {times['cached run']:.1f}"
          f" s + incremental build {times['cached build']:.1f} s")

    total, equal, worst = compare(work / "serial" / "book", work / "jobs2" / "book")
    print()
    print(f"{'':28}{'seconds':>10}{'vs serial':>12}")
    print(f"{'serial (--jobs 1)':28}{times['serial']:10.1f}{1.0:11.2f}x")
    print(f"{'--jobs 2 (Dask)':28}{times['jobs2']:10.1f}"
          f"{times['serial'] / times['jobs2']:11.2f}x faster")
    print(f"{'second make book':28}{second:10.1f}{times['serial'] / second:11.1f}x faster")
    print(f"results: {equal} of {total} numbers identical between serial and --jobs 2; "
          f"largest relative difference {worst:.1e}"
          + (" (BLAS threads per run differ: 2 serial, 1 per Dask worker)" if worst else ""))
    if not math.isfinite(worst) or worst > 1e-9:
        sys.exit("results differ by more than rounding")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
