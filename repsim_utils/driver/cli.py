"""The command line: ``python -m repsim_utils run | list | prepare``, with one-line errors and
exit statuses (2: bad input, 1: a run failed, 130: Ctrl-C, 141: closed pipe, 143: SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repsim_utils.base.atomic import atomic_open
from repsim_utils.chapters import schema
from repsim_utils.chapters.runtable import (
    PROFILES,
    ConfigError,
    default_table,
    load_table,
    plan_runs,
)
from repsim_utils.driver.engines import run
from repsim_utils.driver.errors import Interrupted, RunFailed, Terminated
from repsim_utils.driver.heartbeat import EVERY_S
from repsim_utils.driver.options import Options
from repsim_utils.driver.params import notebook_parameters, parse_overrides, validate


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
