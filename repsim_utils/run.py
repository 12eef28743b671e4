"""The papermill driver: ``python -m repsim_utils run``.

parameters (run table + command line) -> validated -> papermill -> ``book/executed/`` + JSON.

Everything is checked before the first notebook starts: the profile, the chapter and run names,
every parameter's name and type against the notebook's ``parameters`` cell
(``papermill.inspect_notebook``) and the datasets the runs ask for. papermill alone would only
warn about a misspelled parameter.

Then every value is checked against its chapter's declared constraints
(:mod:`repsim_utils.schema`: ranges, choices, distinct seeds, checkpoints <= epochs, a CUDA device
that exists...), so a bad value stops the command at once with one line and exit status 2.

A run is executed into a staging folder beside the book and published all or nothing: its
notebook, results JSON and figures replace the previous ones together, under a journal, and any
failure (a cell error, a dead kernel, a full or read-only disk, Ctrl-C) leaves the previous good
page exactly as it was; a publish cut off by a crash is rolled back at the next start. A failed
run's notebook is kept under ``.repsim/failed/``. One driver at a time per run (a file lock).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import exec_cache, integrity, page, paths, schema
from . import publish as transaction
from .atomic import atomic_open, write_json
from .heartbeat import EVERY_S, Heartbeat
from .paths import OUT_ENV
from .progress import STATUS_ENV
from .provenance import git_commit, machine, versions
from .report import FIGURES_ENV, RESULTS_ENV
from .runtable import PROFILES, ConfigError, RunPlan, default_table, load_table, plan_runs  # noqa: F401

# ---------------------------------------------------------------------------------------------
# validation


_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (float, int), "str": (str,), "bool": (bool,),
}


def check_type(value: Any, type_name: str) -> bool:
    """Does ``value`` fit the annotation ``type_name`` of a parameters-cell variable?"""
    type_name = type_name.replace(" ", "")
    if type_name in _SCALARS:
        if isinstance(value, bool) and type_name != "bool":
            return False  # True is an int to Python, not to a reader of the parameters
        return isinstance(value, _SCALARS[type_name])
    for container in ("list", "tuple"):
        if type_name.startswith(f"{container}[") and type_name.endswith("]"):
            inner = type_name[len(container) + 1:-1].removesuffix(",...")
            return isinstance(value, list | tuple) and all(check_type(v, inner) for v in value)
    if "|" in type_name:
        return any(check_type(value, t) for t in type_name.split("|"))
    if type_name == "None":
        return value is None
    raise ConfigError(f"parameter annotation {type_name!r} is not supported by the driver")


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    import papermill

    if not notebook.is_file():
        raise ConfigError(f"notebook not found: {notebook}")
    return papermill.inspect_notebook(str(notebook))


def validate(plan: RunPlan) -> None:
    """Refuse unknown parameter names and values of the wrong type, listing what is allowed."""
    declared = notebook_parameters(plan.notebook)
    for name, value in plan.params.items():
        if name not in declared:
            allowed = ", ".join(f"{n}: {d['inferred_type_name']}" for n, d in declared.items())
            raise ConfigError(
                f"{plan.name}: unknown parameter {name!r}. {plan.notebook.name} accepts: {allowed}")
        type_name = declared[name]["inferred_type_name"]
        if type_name == "None":
            raise ConfigError(f"{plan.notebook.name}: parameter {name!r} has no type annotation")
        if not check_type(value, type_name):
            raise ConfigError(
                f"{plan.name}: parameter {name!r} must be {type_name} "
                f"(default {declared[name]['default']}), got {value!r} ({type(value).__name__})")
    resolved = plan.resolved = resolved_parameters(plan, declared)
    try:
        schema.check(plan.chapter, resolved)
    except schema.ParameterError as err:
        raise ConfigError(f"{plan.name}: {err}") from None
    plan.title = schema.title(plan.chapter, resolved, plan.title)
    if "dataset" in plan.params or "dataset" in declared:
        from .data import DatasetError, check_available

        dataset = plan.params.get("dataset", _literal(declared.get("dataset", {}).get("default")))
        download = plan.params.get("download", _literal(declared.get("download", {})
                                                        .get("default", "False")))
        if dataset is not None:
            try:
                check_available(dataset, download=bool(download))
            except DatasetError as err:
                raise ConfigError(f"{plan.name}: {err}") from None


def resolved_parameters(plan: RunPlan, declared: dict[str, dict[str, Any]] | None = None
                        ) -> dict[str, Any]:
    """Every parameter the notebook will run with: its declared defaults, then the plan's."""
    declared = notebook_parameters(plan.notebook) if declared is None else declared
    return {name: _literal(d["default"]) for name, d in declared.items()} | plan.params


def _literal(text: str | None) -> Any:
    import ast

    return None if text is None else ast.literal_eval(text)


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; read it as the float a user means."""
    if isinstance(value, str) and _FLOAT.match(value):
        return float(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; values are read as YAML (``3`` int, ``0.1`` and ``1e-3`` float,
    ``[0, 1]`` list). A malformed value is a :class:`ConfigError` in one line."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"-p expects name=value, got {item!r}")
        try:
            out[name.strip()] = _numbers(yaml.safe_load(text))
        except yaml.YAMLError as err:
            where = getattr(err, "problem", None) or type(err).__name__
            raise ConfigError(f"-p {name.strip()}: cannot read {text!r} as a value ({where}); "
                              f"quote strings, write lists as [0, 1]") from None
    return out


# ---------------------------------------------------------------------------------------------
# execution


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class RunFailed(RuntimeError):
    """A run that did not complete; its previous published page is untouched."""


class RunBusy(RuntimeError):
    """Another driver is executing the same run."""


class Interrupted(RuntimeError):
    """Ctrl-C: the run in progress was stopped and nothing of it published."""


#: Beside the published pages (same file system, so publishing is a set of renames); the book
#: build ignores dot-folders.
WORK = ".repsim-work"


def _lock(name: str, out_dir: Path) -> Any:
    """The file lock of run ``name`` in ``out_dir`` (not acquired)."""
    from filelock import FileLock

    folder = out_dir / WORK / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"))


@contextlib.contextmanager
def run_lock(plan: RunPlan, out_dir: Path) -> Iterator[None]:
    """One driver per run and output folder; a second one stops at once, naming the first."""
    from filelock import Timeout

    lock = _lock(plan.name, out_dir)
    pid_file = Path(lock.lock_file).with_suffix(".pid")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        pid = pid_file.read_text().strip() if pid_file.exists() else "unknown"
        raise RunBusy(f"run {plan.name} is in progress (pid {pid}); wait for it to finish"
                      ) from None
    try:
        pid_file.write_text(str(os.getpid()))
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()


def _targets(plan: RunPlan, out_dir: Path) -> list[Path]:
    """Where a run is published: notebook, results JSON, figure folder."""
    executed = out_dir / "executed"
    return [executed / f"{plan.name}.ipynb", executed / f"{plan.name}.json",
            out_dir / "figures" / plan.chapter / plan.run]


def _journal(plan: RunPlan, out_dir: Path) -> Path:
    return out_dir / WORK / "publishing" / f"{plan.name}.json"


def publish(plan: RunPlan, staged: Sequence[Path], out_dir: Path) -> None:
    """Replace the run's published notebook, JSON and figures by ``staged`` (same order as
    :func:`_targets`), all or nothing, at every instant (:mod:`repsim_utils.publish`)."""
    transaction.publish(_journal(plan, out_dir), staged, _targets(plan, out_dir))


def recover(out_dir: Path) -> list[str]:
    """Finish every publish that a crash cut off; the runs whose previous page was restored.
    A journal whose run is locked belongs to a driver publishing it now: it is left alone."""
    from filelock import Timeout

    names = []
    for journal in sorted((out_dir / WORK / "publishing").glob("*.json")):
        lock = _lock(journal.stem, out_dir)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            if journal.exists() and transaction.roll_back(journal):
                names.append(journal.stem)
        finally:
            lock.release()
    return names


@contextlib.contextmanager
def _kernel_stderr_to(path: Path) -> Iterator[None]:
    """Send what child processes (the kernel) write to stderr into ``path``, while this
    process's own messages and progress bar still reach the console: the kernel's chatter (a
    transport warning on every start, a traceback when it is interrupted) is not the user's
    business unless the run fails, and then its log is kept beside the failed notebook."""
    import io

    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)  # inherited by the kernel when it starts
    console = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0),
                                  write_through=True)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = console
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """papermill and nbclient log failures themselves ('Kernel died while waiting...'); the
    driver reports every failure in one line of its own, so theirs are silenced meanwhile."""
    import logging

    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _thread_limits(threads: int | None) -> dict[str, str]:
    """Environment that caps a kernel's BLAS, OpenMP and torch threads (parallel runs must not
    oversubscribe the cores); empty when ``threads`` is ``None``."""
    if threads is None:
        return {}
    n = str(int(threads))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[Any]:
    """Kill this process's Jupyter kernels after ``seconds``, and any started later (a limit
    shorter than a kernel's start still applies); yields a callable telling whether the limit
    was reached (papermill then reports a dead kernel)."""
    import threading

    fired, done = threading.Event(), threading.Event()
    if not seconds:
        yield fired.is_set
        return

    def watchdog() -> None:
        import psutil

        if done.wait(seconds):
            return
        fired.set()
        while not done.is_set():
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any("ipykernel" in part for part in child.cmdline()):
                        child.kill()
            done.wait(0.2)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    try:
        yield fired.is_set
    finally:
        done.set()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def execute(plan: RunPlan, out_dir: Path, profile: str, progress: bool = True,
            heartbeat: float = EVERY_S, timeout: float | None = None, threads: int | None = None,
            cache_key: str | None = None) -> dict[str, Any]:
    """Execute one run in a staging folder; publish it (all or nothing) only when it
    succeeded. Any failure raises :class:`RunFailed` (Ctrl-C: :class:`Interrupted`) and leaves
    the previous page as it was.

    ``heartbeat``: seconds between console lines naming the running cell (0: none);
    ``timeout``: seconds the whole run may take, after which its kernel is stopped and the run
    fails; ``threads``: BLAS/OpenMP/torch threads of the kernel (``OMP_NUM_THREADS``...);
    ``cache_key``: recorded in the JSON for the execution cache."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    staging = out_dir / WORK / "staging" / plan.name
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    staged_nb = staging / f"{plan.name}.ipynb"
    staged_results = staging / "results.json"
    failed = paths.failed_dir() / f"{plan.name}.ipynb"

    kernel_log = staging / "kernel.log"

    def fail(reason: str) -> RunFailed:
        kept = ""
        failed.parent.mkdir(parents=True, exist_ok=True)
        if kernel_log.exists():
            shutil.move(kernel_log, failed.with_suffix(".kernel.log"))
        if staged_nb.exists():
            shutil.move(staged_nb, failed)
            kept = f"; failed notebook: {failed}"
        shutil.rmtree(staging, ignore_errors=True)
        return RunFailed(f"{plan.name} {reason}; the previous page is unchanged{kept}")

    start = time.time()
    try:
        # The kernel inherits our environment; a headless MPLBACKEND=Agg (as in CI) would make
        # figures render as text, so the kernel always gets the notebook's inline backend.
        with _environ(**{RESULTS_ENV: str(staged_results), FIGURES_ENV: str(staging / "figures"),
                         OUT_ENV: str(out_dir), STATUS_ENV: str(staging / "status.txt"),
                         "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                         "PYTHONPATH": _kernel_path(), **_thread_limits(threads)}), \
                _kernel_stderr_to(kernel_log), _quiet_loggers("papermill", "traitlets"), \
                Heartbeat(staged_nb, staging / "status.txt", heartbeat), \
                _time_limit(timeout) as timed_out:
            papermill.execute_notebook(
                str(plan.notebook), str(staged_nb), parameters=plan.params,
                kernel_name="python3", progress_bar=progress, cwd=str(staging),
                report_mode=False,
            )
    except PapermillExecutionError as err:
        raise fail(f"failed in cell {err.cell_index} (execution count {err.exec_count}): "
                   f"{err.ename}: {_one_line(err.evalue)}") from None
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(f"{plan.name} was stopped; nothing of it is published") from None
    except Exception as err:  # a dead kernel (out of memory), a timeout, a full disk...
        if timed_out():
            what = f"was stopped at its time limit ({timeout:g} s, --timeout)"
        elif type(err).__name__ == "DeadKernelError":
            what = "the kernel died (killed, e.g. out of memory)"
        else:
            what = f"stopped: {type(err).__name__}: {_one_line(err)}"
        raise fail(what) from None
    wall = time.time() - start

    try:
        nb = nbformat.read(staged_nb, as_version=4)
        partial = json.loads(staged_results.read_text()) if staged_results.exists() else {}
        _retitle(nb, plan.title, _banner(plan, profile))
        page.collapse_code(nb)
        page.number_figures(nb, plan.name, partial.get("figures", {}))
        nb.metadata["repsim"] = {"chapter": plan.chapter, "run": plan.run, "profile": profile,
                                 "parameters": plan.params, "commit": git_commit()}
        record = {
            "chapter": plan.chapter, "run": plan.run, "title": plan.title, "profile": profile,
            "parameters": plan.params, "command_line": plan.overrides,
            "wall_time_s": round(wall, 2),
            "commit": git_commit(), "versions": versions(), "machine": machine(),
            # every value the notebook ran with, defaults included (``parameters``: the run
            # table's and the command line's)
            "resolved_parameters": partial.get("parameters", {}),
            "results": partial.get("results", {}), "figures": partial.get("figures", {}),
            "verdicts": partial.get("verdicts", []),
            "null_reasons": partial.get("null_reasons", {}),
            "cache_key": cache_key,
            "code": _code_ran(partial),
            # where the data came from (package, file and digest, counts, split)
            "dataset": _dataset_provenance(plan.resolved),
        }
        for line in _cache_warnings(nb):
            print(f"  warning: {line}", file=sys.stderr, flush=True)
        changed = integrity.stale_modules(record["code"])
        if changed:
            print(f"  warning: {', '.join(changed)} changed while {plan.name} ran; its page "
                  f"records the code it ran, and the next run executes it again",
                  file=sys.stderr, flush=True)
        with atomic_open(staging / "page.ipynb", "w") as f:
            nbformat.write(nb, f)
        record = integrity.seal(record, staging / "page.ipynb", staging / "figures")
        write_json(staging / "record.json", record)
        publish(plan, [staging / "page.ipynb", staging / "record.json", staging / "figures"],
                out_dir)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(f"{plan.name} was stopped while publishing; the previous page is "
                          f"restored") from None
    except Exception as err:
        raise fail(f"could not be published ({type(err).__name__}: {_one_line(err)})") from None
    shutil.rmtree(staging, ignore_errors=True)
    return record


def _dataset_provenance(resolved: dict[str, Any]) -> dict[str, Any] | None:
    name = resolved.get("dataset", resolved.get("task"))
    if not isinstance(name, str):
        return None
    from .data import DatasetError, provenance

    try:
        return provenance(name)
    except DatasetError:
        return None


def _kernel_path() -> str:
    """``PYTHONPATH`` for a kernel: this checkout first, so a kernel imports the package the
    driver runs from (not a copy an environment's editable install points to)."""
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(paths.PACKAGE_DIR.parent), *([rest] if rest else [])])


def _code_ran(partial: dict[str, Any]) -> dict[str, str]:
    """{module: digest} of the code a run ran: what its kernel imported (recorded as it imported
    it) and the driver's page-shaping modules; every module of the tree when the kernel did not
    say (a notebook that never made a Report)."""
    kernel = partial.get("code")
    if not isinstance(kernel, dict) or not kernel:
        kernel = {k: v for k, v in integrity.tree_digests(integrity.all_modules()).items() if v}
    return {**kernel, **integrity.imported_code(integrity.DRIVER_MODULES)}


def _cache_warnings(nb: Any) -> list[str]:
    """The model cache's warnings printed inside the kernel, so the console shows them too."""
    from .zoo import CACHE_WARNING

    return [line.strip() for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("name") == "stderr"
            for line in out.get("text", "").splitlines() if CACHE_WARNING in line]


def _banner(plan: RunPlan, profile: str) -> str:
    """A line for the top of a page that is not the book's default run ('' when it is)."""
    if profile == "default" and not plan.overrides:
        return ""
    parts = [f"profile `{profile}`"] if profile != "default" else []
    if plan.overrides:
        parts.append("parameters set on the command line: " + ", ".join(
            f"`{k}={v!r}`" for k, v in plan.overrides.items()))
    return "**Not the book's default run:** " + "; ".join(parts) + "."


def _retitle(nb: Any, title: str, banner: str = "") -> None:
    """Give the executed copy its run's title (the first '# ' heading of the first markdown
    cell), with ``banner`` right under it."""
    heading = f"# {title}" + (f"\n\n{banner}" if banner else "")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("# "):
                    lines[i] = heading
                    cell.source = "\n".join(lines)
                    return
            cell.source = f"{heading}\n\n{cell.source}"
            return


@dataclass
class Options:
    """How runs are executed (the ``run`` command's flags)."""

    progress: bool = True
    heartbeat: float = EVERY_S
    timeout: float | None = None
    force: bool = False
    keep_going: bool = False
    #: parallel runs on a local Dask cluster (1: the plain serial path)
    jobs: int = 1
    #: an existing Dask scheduler: its address (``tcp://host:8786``) or scheduler file;
    #: overrides ``jobs``
    scheduler: str | None = None


def cache_key(plan: RunPlan, table: dict[str, Any], out_dir: Path, profile: str,
              environment: str) -> str:
    """The execution-cache key of a validated run (:mod:`repsim_utils.exec_cache`); a chapter
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
    notebook, record, figures = _targets(plan, out_dir)
    if not record.exists():
        return False
    state, why = exec_cache.published_state(record, notebook, figures, key)
    if state == "untrusted":
        print(f"  {plan.name}: {why}; it is executed again", file=sys.stderr, flush=True)
    return state == "current"


def _execute_locked(plan: RunPlan, out_dir: Path, profile: str, opts: Options,
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


#: the shortest --timeout: a kernel alone takes seconds to start
MIN_TIMEOUT_S = 1.0
#: the shortest --heartbeat (other than 0, none)
MIN_HEARTBEAT_S = 1.0


def check_options(opts: Options) -> None:
    """Refuse flags that cannot mean what they say (one line, before any work)."""
    import math

    if isinstance(opts.jobs, bool) or not isinstance(opts.jobs, int) or opts.jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1, got {opts.jobs}")
    if opts.timeout is not None and not (math.isfinite(opts.timeout)
                                         and opts.timeout >= MIN_TIMEOUT_S):
        raise ConfigError(f"--timeout must be a finite number of seconds >= {MIN_TIMEOUT_S:g} "
                          f"(leave it out for no limit), got {opts.timeout:g}")
    if not (math.isfinite(opts.heartbeat) and (opts.heartbeat == 0
                                               or opts.heartbeat >= MIN_HEARTBEAT_S)):
        raise ConfigError(f"--heartbeat must be 0 (none) or a finite number of seconds >= "
                          f"{MIN_HEARTBEAT_S:g}, got {opts.heartbeat:g}")
    if opts.scheduler is not None:
        check_scheduler(opts.scheduler)


_ADDRESS = re.compile(r"^([a-z]+://)?[^/:\s]+:\d+$")


def check_scheduler(scheduler: str) -> None:
    """A Dask scheduler address (``tcp://host:8786``, ``host:8786``) or an existing, readable
    scheduler file (JSON with an ``address``)."""
    if _ADDRESS.match(scheduler):
        return
    path = Path(scheduler)
    if not path.is_file():
        raise ConfigError(f"--scheduler {scheduler!r} is neither an address (tcp://host:port) "
                          f"nor an existing scheduler file")
    try:
        address = json.loads(path.read_text()).get("address")
    except (OSError, ValueError, AttributeError) as err:
        raise ConfigError(f"--scheduler {scheduler}: not a Dask scheduler file "
                          f"({type(err).__name__}: {_one_line(err)})") from None
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ConfigError(f"--scheduler {scheduler}: the scheduler file has no valid 'address' "
                          f"(got {address!r})")


def check_out_dir(out_dir: Path) -> Path:
    """The output folder, created if needed; a file there, or a folder that cannot be made, is
    refused in one line."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out_dir}: cannot create it ({err.strerror or err})") from None
    return out_dir


def check_checkout() -> None:
    """Refuse to run when this environment's editable install of the package points at another
    checkout: its tools (``jupyter-book`` and the book's Sphinx extension) would run that copy's
    code. Kernels are safe either way (:func:`_kernel_path`)."""
    from importlib import metadata

    root = paths.PACKAGE_DIR.parent
    try:
        text = metadata.distribution("repsim-utils").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return  # not installed: run from the source tree
    if not text:
        return
    try:
        info = json.loads(text)
    except ValueError:
        return
    url = info.get("url", "")
    if not (info.get("dir_info") or {}).get("editable") or not url.startswith("file://"):
        return
    from urllib.parse import unquote, urlparse

    installed = Path(unquote(urlparse(url).path))
    with contextlib.suppress(OSError):
        if installed.resolve() == root.resolve():
            return
    raise ConfigError(f"this checkout is {root}, but the environment {sys.prefix} installs "
                      f"repsim_utils from {installed} (a copied or moved checkout?); recreate it "
                      f"here: rm -rf .venv && make test")


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
                rec = _execute_locked(plan, out_dir, profile, opts, None, key)
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
                                  f"{_one_line(err)}") from None
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
            future = self.client.submit(_execute_locked, plan, out_dir, profile, opts,
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
                                    f"{type(err).__name__}: {_one_line(err)}; the previous page "
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


def prepare(profile: str, out: Path, table: Path | None = None) -> list[Path]:
    """Write each chapter's notebook with its first run's parameters of ``profile`` injected
    (papermill's ``injected-parameters`` cell), without executing it: what Binder opens, so a
    launched notebook runs with the smoke profile in minutes."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    table = table or default_table()
    plans = plan_runs(load_table(table), table.parent, profile)
    written, seen = [], set()
    for plan in plans:
        if plan.notebook in seen:
            continue
        seen.add(plan.notebook)
        validate(plan)
        nb = parameterize_notebook(load_notebook_node(str(plan.notebook)), plan.params,
                                   report_mode=False)
        target = out / plan.notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, "w") as f:
            nbformat.write(nb, f)
        written.append(target)
    return written


def describe(table: Path | None = None, profile: str = "default") -> str:
    """Human-readable listing of chapters, runs and their resolved parameters."""
    table = table or default_table()
    lines = []
    for plan in plan_runs(load_table(table), table.parent, profile):
        declared = notebook_parameters(plan.notebook)
        lines.append(f"{plan.name}  [{plan.title}]")
        for name, d in declared.items():
            value = plan.params.get(name, d["default"])
            mark = "*" if name in plan.params else " "
            rule = schema.describe(plan.chapter, name)
            lines.append(f"  {mark} {name}: {d['inferred_type_name']} = {value}   # {d['help']}"
                         + (f"  [{rule}]" if rule else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repsim_utils",
        description="Run the study's notebooks with papermill, validated parameters first.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute chapter notebooks into book/executed/")
    p_run.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)}")
    p_run.add_argument("--chapter", action="append", default=[], help="repeatable; default all")
    p_run.add_argument("--run", action="append", default=[], help="named run(s) of the table")
    p_run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="override a parameter (value read as YAML); repeatable")
    p_run.add_argument("--out", type=Path, default=None, help="output folder (default: book/)")
    p_run.add_argument("--table", type=Path, default=None, help="run table (notebooks/runs.yml)")
    p_run.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    p_run.add_argument("--no-progress", action="store_true",
                       help="no progress bar of cells on the console (logs, CI); the heartbeat "
                            "lines stay")
    p_run.add_argument("--heartbeat", type=float, default=EVERY_S, metavar="SECONDS",
                       help="every SECONDS, a console line naming the running cell and its "
                            f"step (default {EVERY_S:g}; 0: none)")
    p_run.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="stop a run that takes longer (its previous page stays)")
    p_run.add_argument("--force", action="store_true",
                       help="rerun even runs whose inputs did not change (execution cache)")
    p_run.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="run N runs at once on a local Dask cluster (default 1: serial)")
    p_run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="send the runs to an existing Dask scheduler: its address "
                            "(tcp://host:8786) or its scheduler file")
    p_prep = sub.add_parser("prepare", help="write the notebooks with a profile's parameters "
                            "injected, not executed (what Binder opens)")
    p_prep.add_argument("--profile", default="smoke")
    p_prep.add_argument("--out", type=Path, required=True, help="folder for the notebooks")
    p_prep.add_argument("--table", type=Path, default=None)
    p_list = sub.add_parser("list", help="show chapters, runs and resolved parameters")
    p_list.add_argument("--profile", default="default")
    p_list.add_argument("--table", type=Path, default=None)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "list":
            print(describe(args.table, args.profile), flush=True)
            return 0
        if args.command == "prepare":
            for path in prepare(args.profile, args.out, args.table):
                print(f"wrote {path}")
            return 0
        opts = Options(progress=not args.no_progress, heartbeat=args.heartbeat,
                       timeout=args.timeout, force=args.force, keep_going=args.keep_going,
                       jobs=args.jobs, scheduler=args.scheduler)
        run(args.profile, args.chapter, args.run, parse_overrides(args.param), args.out,
            args.table, options=opts)
    except BrokenPipeError:
        # `list | head`: the reader has gone; say nothing more (Python would print a traceback
        # when it flushes stdout at exit)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ConfigError, RunFailed) as err:
        if _terminated.is_set():  # a run that died of the same SIGTERM
            return _report_stop(err)
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as err:
        return _report_stop(err)
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI runners, SLURM and ``kill`` send): handled as Ctrl-C is."""


#: set when SIGTERM arrived (the exit status is then 143, not 130)
_terminated = __import__("threading").Event()


def _on_sigterm(signum: int, frame: Any) -> None:
    _terminated.set()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def _report_stop(err: BaseException) -> int:
    import logging

    # the stopped kernel leaves a cell task that asyncio would report at exit
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    how = "terminated (SIGTERM)" if _terminated.is_set() else "interrupted"
    text = str(err) if isinstance(err, Interrupted | RunFailed) else "stopped before any run " \
        "started"
    print(f"{how}: {text}; earlier pages are unchanged", file=sys.stderr)
    return 143 if _terminated.is_set() else 130
