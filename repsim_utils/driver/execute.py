"""Executing one run: papermill into a staging folder, then the page (title, collapsed code,
numbered figures) and the sealed run record, published all or nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from repsim_utils.base import integrity, paths
from repsim_utils.base.atomic import atomic_open, write_json
from repsim_utils.base.paths import FIGURES_ENV, OUT_ENV, RESULTS_ENV
from repsim_utils.base.progress import STATUS_ENV
from repsim_utils.base.provenance import git_commit, machine, versions
from repsim_utils.book import page
from repsim_utils.book.record import KernelResults, RunRecord
from repsim_utils.chapters.runtable import (
    RunPlan,
)
from repsim_utils.driver import kernel
from repsim_utils.driver.errors import Interrupted, RunFailed
from repsim_utils.driver.heartbeat import EVERY_S, Heartbeat
from repsim_utils.driver.kernel import (
    environ,
    kernel_stderr_to,
    one_line,
    quiet_loggers,
    thread_limits,
    time_limit,
)
from repsim_utils.driver.outputs import WORK, publish


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
        with environ(**{RESULTS_ENV: str(staged_results), FIGURES_ENV: str(staging / "figures"),
                         OUT_ENV: str(out_dir), STATUS_ENV: str(staging / "status.txt"),
                         "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                         "PYTHONPATH": kernel.kernel_path(), **thread_limits(threads)}), \
                kernel_stderr_to(kernel_log), quiet_loggers("papermill", "traitlets"), \
                Heartbeat(staged_nb, staging / "status.txt", heartbeat), \
                time_limit(timeout) as timed_out:
            papermill.execute_notebook(
                str(plan.notebook), str(staged_nb), parameters=plan.params,
                kernel_name="python3", progress_bar=progress, cwd=str(staging),
                report_mode=False,
            )
    except PapermillExecutionError as err:
        raise fail(f"failed in cell {err.cell_index} (execution count {err.exec_count}): "
                   f"{err.ename}: {one_line(err.evalue)}") from None
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(f"{plan.name} was stopped; nothing of it is published") from None
    except Exception as err:  # a dead kernel (out of memory), a timeout, a full disk...
        if timed_out():
            what = f"was stopped at its time limit ({timeout:g} s, --timeout)"
        elif type(err).__name__ == "DeadKernelError":
            what = "the kernel died (killed, e.g. out of memory)"
        else:
            what = f"stopped: {type(err).__name__}: {one_line(err)}"
        raise fail(what) from None
    wall = time.time() - start

    try:
        nb = nbformat.read(staged_nb, as_version=4)
        partial = KernelResults.from_json(
            {"chapter": plan.chapter,
             **(json.loads(staged_results.read_text()) if staged_results.exists() else {})})
        _retitle(nb, plan.title, _banner(plan, profile))
        page.collapse_code(nb)
        page.number_figures(nb, plan.name, partial.figures)
        nb.metadata["repsim"] = {"chapter": plan.chapter, "run": plan.run, "profile": profile,
                                 "parameters": plan.params, "commit": git_commit()}
        record = RunRecord(
            plan.chapter, plan.run, plan.title, profile, plan.params, plan.overrides,
            round(wall, 2), git_commit(), versions(), machine(),
            resolved_parameters=partial.parameters, results=partial.results,
            figures=partial.figures, verdicts=partial.verdicts,
            null_reasons=partial.null_reasons, cache_key=cache_key,
            code=_code_ran(partial.code), dataset=_dataset_provenance(plan.resolved))
        for line in _cache_warnings(nb):
            print(f"  warning: {line}", file=sys.stderr, flush=True)
        changed = integrity.stale_modules(record.code)
        if changed:
            print(f"  warning: {', '.join(changed)} changed while {plan.name} ran; its page "
                  f"records the code it ran, and the next run executes it again",
                  file=sys.stderr, flush=True)
        with atomic_open(staging / "page.ipynb", "w") as f:
            nbformat.write(nb, f)
        sealed = integrity.seal(record.to_json(), staging / "page.ipynb", staging / "figures")
        write_json(staging / "record.json", sealed)
        publish(plan, [staging / "page.ipynb", staging / "record.json", staging / "figures"],
                out_dir)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(f"{plan.name} was stopped while publishing; the previous page is "
                          f"restored") from None
    except Exception as err:
        raise fail(f"could not be published ({type(err).__name__}: {one_line(err)})") from None
    shutil.rmtree(staging, ignore_errors=True)
    return sealed


def _dataset_provenance(resolved: dict[str, Any]) -> dict[str, Any] | None:
    name = resolved.get("dataset", resolved.get("task"))
    if not isinstance(name, str):
        return None
    from repsim_utils.nets.data import DatasetError, provenance

    try:
        return provenance(name)
    except DatasetError:
        return None


def _code_ran(kernel: dict[str, str]) -> dict[str, str]:
    """{module: digest} of the code a run ran: what its kernel imported (recorded as it imported
    it) and the driver's page-shaping modules; every module of the tree when the kernel did not
    say (a notebook that never made a Report)."""
    if not isinstance(kernel, dict) or not kernel:
        kernel = {k: v for k, v in integrity.tree_digests(integrity.all_modules()).items() if v}
    return {**kernel, **integrity.imported_code(integrity.DRIVER_MODULES)}


def _cache_warnings(nb: Any) -> list[str]:
    """The model cache's warnings printed inside the kernel, so the console shows them too."""
    from repsim_utils.nets.zoo import CACHE_WARNING

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
