"""Which runs to execute (the execution cache) and how: one after another, or as tasks on a
local Dask cluster or an existing scheduler.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repsim_utils.base import paths
from repsim_utils.chapters.runtable import (
    ConfigError,
    RunPlan,
    default_table,
    load_table,
    plan_runs,
)
from repsim_utils.driver import exec_cache
from repsim_utils.driver.errors import RunBusy, RunFailed
from repsim_utils.driver.execute import execute
from repsim_utils.driver.kernel import (
    one_line,
)
from repsim_utils.driver.options import Options, check_checkout, check_options, check_out_dir
from repsim_utils.driver.outputs import recover, run_lock, targets
from repsim_utils.driver.params import validate


def cache_key(plan: RunPlan, table: dict[str, Any], out_dir: Path, profile: str,
              environment: str) -> str:
    """The execution-cache key of a validated run (:mod:`repsim_utils.driver.exec_cache`); a chapter
    that reads every other run (``last: true``) also depends on their published results."""
    upstream: list[Path] = []
    if table["chapters"][plan.chapter].get("last"):
        upstream = [p for p in (out_dir / "executed").glob("*.json")
                    if not p.name.startswith(f"{plan.chapter}__")]
    return exec_cache.run_key(plan.notebook, plan.resolved, profile, environment, upstream)


def is_current(plan: RunPlan, out_dir: Path, key: str) -> bool:
    """Is the published run's key ``key``, with notebook, JSON and figures in place, matching
    their digests, and the code it ran unchanged? A page that does not match its digests is
    named on the console (it is then executed again)."""
    notebook, record, figures = targets(plan, out_dir)
    if not record.exists():
        return False
    state, why = exec_cache.published_state(record, notebook, figures, key)
    if state == "untrusted":
        print(f"  {plan.name}: {why}; it is executed again", file=sys.stderr, flush=True)
    return state == "current"


def execute_locked(plan: RunPlan, out_dir: Path, profile: str, opts: Options,
                    threads: int | None, key: str) -> dict[str, Any]:
    """One run under its lock; what a Dask worker executes (a module-level function, so it
    pickles)."""
    import threadpoolctl

    with run_lock(plan, out_dir), threadpoolctl.threadpool_limits(threads):
        return execute(plan, out_dir, profile, progress=opts.progress, heartbeat=opts.heartbeat,
                       timeout=opts.timeout, threads=threads, cache_key=key)


def run(
    profile: str = "default",
    chapters: Sequence[str] = (),
    runs: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    table: Path | None = None,
    keep_going: bool = False,
    progress: bool = True,
    options: Options | None = None,
) -> list[dict[str, Any]]:
    """Validate every requested run, then execute those whose inputs changed (the execution
    cache), serially or on Dask (``options.jobs``, ``options.scheduler``). Raises on the first
    failure (or, with ``keep_going``, after trying all of them). Returns the records of the runs
    executed."""
    opts = options or Options(progress=progress, keep_going=keep_going)
    opts.keep_going = opts.keep_going or keep_going
    check_options(opts)
    table = table or default_table()
    out_dir = check_out_dir(out_dir or paths.book_dir())
    check_checkout()
    spec = load_table(table)
    plans = plan_runs(spec, table.parent, profile, chapters, runs, overrides)
    for plan in plans:  # all checks before any work
        validate(plan)
    for name in recover(out_dir):
        print(f"  restored the previous page of {name} (a publish was cut off)", flush=True)
    environment = exec_cache.environment_digest()
    first = [p for p in plans if not spec["chapters"][p.chapter].get("last")]
    last = [p for p in plans if p not in first]
    engines = _Engines(opts)
    state = _Progress(len(plans), profile)
    try:
        for batch in (first, last):  # the synthesis reads what the first batch published
            todo = []
            for plan in batch:
                key = cache_key(plan, spec, out_dir, profile, environment)
                if not opts.force and is_current(plan, out_dir, key):
                    state.skipped(plan)
                else:
                    todo.append((plan, key))
            if todo:
                engines.get(len(todo)).run(todo, out_dir, profile, opts, state)
    finally:
        engines.close()
    if state.failures:
        raise RunFailed(f"{len(state.failures)} run(s) failed:\n" + "\n".join(state.failures))
    return state.records


class _Engines:
    """Starts an engine when there is work, sized to it: serial, a local Dask cluster of
    min(--jobs, runs to execute, cores) workers, or the external scheduler."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.engine: _Serial | _Dask | None = None

    def get(self, n_runs: int) -> _Serial | _Dask:
        if self.engine is not None and not isinstance(self.engine, _Serial):
            return self.engine
        if self.opts.scheduler:
            self.engine = _Dask(self.opts)
            return self.engine
        cores = os.cpu_count() or 1
        jobs = min(self.opts.jobs, n_runs, cores)
        if jobs < self.opts.jobs and self.engine is None:
            print(f"--jobs {self.opts.jobs}: {jobs} worker(s) ({n_runs} run(s) to execute, "
                  f"{cores} core(s))", flush=True)
        if jobs == 1:
            self.engine = self.engine or _Serial()
        else:
            self.engine = _Dask(self.opts, jobs)
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


class _Progress:
    """Console lines as runs start, finish, fail or are skipped."""

    def __init__(self, total: int, profile: str):
        self.total, self.profile, self.count = total, profile, 0
        self.records: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.t0 = time.time()

    def _tag(self, plan: RunPlan) -> str:
        self.count += 1
        return f"[{self.count}/{self.total}] {plan.name} ({self.profile})"

    def skipped(self, plan: RunPlan) -> None:
        print(f"{self._tag(plan)}: unchanged since it was published, skipped "
              f"(--force reruns it)", flush=True)

    def started(self, plan: RunPlan) -> None:
        print(f"{self._tag(plan)}: {plan.title}", flush=True)

    def done(self, plan: RunPlan, record: dict[str, Any], tag: bool = False) -> None:
        self.records.append(record)
        head = f"{self._tag(plan)}: {plan.title}\n" if tag else ""
        print(f"{head}  done in {record['wall_time_s']:.0f}s (total {time.time() - self.t0:.0f}s)",
              flush=True)

    def failed(self, plan: RunPlan, err: BaseException, keep_going: bool,
               tag: bool = False) -> None:
        if tag:
            print(f"{self._tag(plan)}: {plan.title}", flush=True)
        if not keep_going:  # the caller reports it: one line
            raise RunFailed(str(err)) from None
        print(f"  FAILED after {time.time() - self.t0:.0f}s: {err}", file=sys.stderr, flush=True)
        self.failures.append(str(err))


class _Serial:
    """One run after another in this process (``--jobs 1``, the default)."""

    def run(self, todo: list[tuple[RunPlan, str]], out_dir: Path, profile: str, opts: Options,
            state: _Progress) -> None:
        for plan, key in todo:
            state.started(plan)
            try:
                rec = execute_locked(plan, out_dir, profile, opts, None, key)
            except (RunFailed, RunBusy) as err:
                state.failed(plan, err, opts.keep_going)
                continue
            state.done(plan, rec)

    def close(self) -> None:
        pass


class _Dask:
    """Runs as tasks on a Dask cluster: a ``LocalCluster`` of ``jobs`` single-threaded worker
    processes, or the scheduler at ``scheduler``. Each run is one task (its kernel is a child
    of the worker); a run on a CUDA device asks for the worker resource ``GPU``."""

    def __init__(self, opts: Options, jobs: int | None = None):
        import logging

        from dask.distributed import Client, LocalCluster

        jobs = jobs or opts.jobs

        self.cluster = None
        if opts.scheduler:
            try:
                if Path(opts.scheduler).is_file():  # a scheduler file (SLURM, dask-jobqueue)
                    self.client = Client(scheduler_file=opts.scheduler, timeout="20s")
                else:
                    self.client = Client(opts.scheduler, timeout="20s")
            except (OSError, ValueError) as err:
                raise ConfigError(f"cannot reach the Dask scheduler at {opts.scheduler}: "
                                  f"{one_line(err)}") from None
            self.threads = None  # the workers' own environment decides
        else:
            cores = os.cpu_count() or 1
            self.threads = max(1, cores // jobs)
            gpu = {"GPU": 1} if _cuda_available() else None
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR, resources=gpu)
            self.client = Client(self.cluster)
        info = self.client.scheduler_info()["workers"]
        workers = len(info)
        self.gpu_workers = any("GPU" in (w.get("resources") or {}) for w in info.values())
        where = opts.scheduler or f"a local cluster, {self.threads} BLAS thread(s) per worker"
        print(f"Dask: {workers} worker(s) on {where}", flush=True)

    def run(self, todo: list[tuple[RunPlan, str]], out_dir: Path, profile: str, opts: Options,
            state: _Progress) -> None:
        from dask.distributed import as_completed

        futures = {}
        for plan, key in todo:
            device = str(plan.resolved.get("device", "cpu"))
            # "auto" trains on a GPU where there is one: on a cluster with GPU workers, ask one
            gpu = device.startswith("cuda") or (device == "auto" and self.gpu_workers)
            future = self.client.submit(execute_locked, plan, out_dir, profile, opts,
                                        self.threads, key, pure=False,
                                        key=f"repsim-{plan.name}-{key[:12]}",
                                        resources={"GPU": 1} if gpu else None)
            futures[future] = plan
        for future in as_completed(futures):
            plan = futures[future]
            try:
                rec = future.result()
            except Exception as err:  # noqa: BLE001 (a lost worker is a failed run too)
                if not isinstance(err, RunFailed | RunBusy):
                    err = RunFailed(f"{plan.name} failed on its Dask worker: "
                                    f"{type(err).__name__}: {one_line(err)}; the previous page "
                                    f"is unchanged")
                try:
                    state.failed(plan, err, opts.keep_going, tag=True)
                except RunFailed:
                    for other in futures:
                        other.cancel()
                    raise
                continue
            state.done(plan, rec, tag=True)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
