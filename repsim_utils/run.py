"""The papermill driver: ``python -m repsim_utils run``.

parameters (run table + command line) -> validated -> papermill -> ``book/executed/`` + JSON.

Everything is checked before the first notebook starts: the profile, the chapter and run names,
every parameter's name and type against the notebook's ``parameters`` cell
(``papermill.inspect_notebook``) and the datasets the runs ask for. papermill alone would only
warn about a misspelled parameter.

A run is executed into a staging folder and moved into the book only when it succeeded; a failed
run is kept under ``.repsim/failed/`` for debugging and its stale published copy is removed, so
the book never shows a notebook that did not run with the current parameters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .atomic import atomic_open, write_json
from .provenance import git_commit, machine, versions
from .report import FIGURES_ENV, RESULTS_ENV

PROFILES = ("smoke", "default", "paper")


class ConfigError(ValueError):
    """A run request that cannot be honoured (unknown name, wrong type...)."""


@dataclass
class RunPlan:
    chapter: str
    run: str
    title: str
    notebook: Path
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.chapter}__{self.run}"


# ---------------------------------------------------------------------------------------------
# run table


def default_table() -> Path:
    return paths.notebooks_dir() / "runs.yml"


def load_table(path: Path) -> dict[str, Any]:
    with open(path) as f:
        table = yaml.safe_load(f)
    if not isinstance(table, dict) or "chapters" not in table:
        raise ConfigError(f"{path}: a run table needs a top-level 'chapters' mapping")
    return table


def plan_runs(
    table: dict[str, Any],
    table_dir: Path,
    profile: str,
    chapters: Sequence[str] = (),
    runs: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
) -> list[RunPlan]:
    """Resolve the runs of a profile: run params < chapter profile < run profile < command line."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    known = table["chapters"]
    for c in chapters:
        if c not in known:
            raise ConfigError(f"unknown chapter {c!r}; chapters: {', '.join(known)}")
    plans = []
    for cname, chapter in known.items():
        if chapters and cname not in chapters:
            continue
        chapter_profile = (chapter.get("profiles") or {}).get(profile) or {}
        for rname, run in chapter["runs"].items():
            if runs and rname not in runs:
                continue
            run_profile = run.get(profile) or {}
            if run_profile == "skip":
                continue
            params = {**(run.get("params") or {}), **chapter_profile, **run_profile,
                      **(overrides or {})}
            plans.append(RunPlan(cname, rname, run.get("title", f"{cname}: {rname}"),
                                 table_dir / chapter["notebook"], params))
    if runs:
        all_runs = {r for c in known.values() for r in c["runs"]}
        for r in runs:
            if r not in all_runs:
                raise ConfigError(f"unknown run {r!r}; runs: {', '.join(sorted(all_runs))}")
    if not plans:
        raise ConfigError("nothing to run: no run matches the chosen chapters and runs")
    return plans


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


def _literal(text: str | None) -> Any:
    import ast

    return None if text is None else ast.literal_eval(text)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; values are read as YAML (``3`` int, ``0.1`` float, ``[0, 1]`` list)."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"-p expects name=value, got {item!r}")
        out[name.strip()] = yaml.safe_load(text)
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
    pass


def execute(plan: RunPlan, out_dir: Path, profile: str, progress: bool = True) -> dict[str, Any]:
    """Execute one run; publish it under ``out_dir`` only when it succeeded."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    executed = out_dir / "executed"
    figures = out_dir / "figures" / plan.chapter / plan.run
    staging = paths.project_root() / ".repsim" / "staging" / plan.name
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    staged_nb = staging / f"{plan.name}.ipynb"
    staged_results = staging / "results.json"

    start = time.time()
    try:
        # The kernel inherits our environment; a headless MPLBACKEND=Agg (as in CI) would make
        # figures render as text, so the kernel always gets the notebook's inline backend.
        with _environ(**{RESULTS_ENV: str(staged_results), FIGURES_ENV: str(staging / "figures"),
                         "MPLBACKEND": "module://matplotlib_inline.backend_inline"}):
            papermill.execute_notebook(
                str(plan.notebook), str(staged_nb), parameters=plan.params,
                kernel_name="python3", progress_bar=progress, cwd=str(staging),
                report_mode=False,
            )
    except PapermillExecutionError as err:
        failed = paths.failed_dir() / f"{plan.name}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        if staged_nb.exists():
            shutil.move(staged_nb, failed)
        _unpublish(plan, executed, figures)
        raise RunFailed(
            f"{plan.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  the failed notebook is kept at {failed}; "
            f"nothing of this run is published") from None
    wall = time.time() - start

    nb = nbformat.read(staged_nb, as_version=4)
    _retitle(nb, plan.title)
    nb.metadata["repsim"] = {"chapter": plan.chapter, "run": plan.run, "profile": profile,
                             "parameters": plan.params, "commit": git_commit()}
    partial = json.loads(staged_results.read_text()) if staged_results.exists() else {}
    record = {
        "chapter": plan.chapter, "run": plan.run, "title": plan.title, "profile": profile,
        "parameters": plan.params, "wall_time_s": round(wall, 2),
        "commit": git_commit(), "versions": versions(), "machine": machine(),
        # every value the notebook ran with, defaults included (``parameters``: the run
        # table's and the command line's)
        "resolved_parameters": partial.get("parameters", {}),
        "results": partial.get("results", {}), "figures": partial.get("figures", {}),
        "verdicts": partial.get("verdicts", []), "null_reasons": partial.get("null_reasons", {}),
    }
    # Publish: figures first, then the notebook and results, each atomically.
    if figures.exists():
        shutil.rmtree(figures)
    figures.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging / "figures", figures)
    with atomic_open(executed / f"{plan.name}.ipynb", "w") as f:
        nbformat.write(nb, f)
    write_json(executed / f"{plan.name}.json", record)
    shutil.rmtree(staging, ignore_errors=True)
    return record


def _unpublish(plan: RunPlan, executed: Path, figures: Path) -> None:
    for p in (executed / f"{plan.name}.ipynb", executed / f"{plan.name}.json"):
        p.unlink(missing_ok=True)
    shutil.rmtree(figures, ignore_errors=True)


def _retitle(nb: Any, title: str) -> None:
    """Give the executed copy its run's title: the first '# ' heading of the first markdown cell."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("# "):
                    lines[i] = f"# {title}"
                    cell.source = "\n".join(lines)
                    return
            cell.source = f"# {title}\n\n{cell.source}"
            return


def run(
    profile: str = "default",
    chapters: Sequence[str] = (),
    runs: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    table: Path | None = None,
    keep_going: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Validate every requested run, then execute them in order. Raises on the first failure
    (or, with ``keep_going``, after trying all of them)."""
    table = table or default_table()
    out_dir = out_dir or paths.book_dir()
    plans = plan_runs(load_table(table), table.parent, profile, chapters, runs, overrides)
    for plan in plans:  # all checks before any work
        validate(plan)
    records, failures = [], []
    t0 = time.time()
    for i, plan in enumerate(plans, 1):
        print(f"[{i}/{len(plans)}] {plan.name} ({profile}): {plan.title}", flush=True)
        try:
            rec = execute(plan, out_dir, profile, progress=progress)
        except RunFailed as err:
            print(f"  FAILED after {time.time() - t0:.0f}s: {err}", file=sys.stderr, flush=True)
            failures.append(str(err))
            if not keep_going:
                raise
            continue
        records.append(rec)
        print(f"  done in {rec['wall_time_s']:.0f}s (total {time.time() - t0:.0f}s)", flush=True)
    if failures:
        raise RunFailed(f"{len(failures)} run(s) failed:\n" + "\n".join(failures))
    return records


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
            lines.append(f"  {mark} {name}: {d['inferred_type_name']} = {value}   # {d['help']}")
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
    p_run.add_argument("--no-progress", action="store_true")
    p_list = sub.add_parser("list", help="show chapters, runs and resolved parameters")
    p_list.add_argument("--profile", default="default")
    p_list.add_argument("--table", type=Path, default=None)
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            print(describe(args.table, args.profile))
            return 0
        run(args.profile, args.chapter, args.run, parse_overrides(args.param), args.out,
            args.table, args.keep_going, progress=not args.no_progress)
    except (ConfigError, RunFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
