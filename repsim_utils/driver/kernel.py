"""The plumbing around a Jupyter kernel: its environment, where its stderr goes, quiet loggers,
thread caps, the time limit that kills it, and its ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repsim_utils.base import paths


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
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


@contextlib.contextmanager
def kernel_stderr_to(path: Path) -> Iterator[None]:
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
def quiet_loggers(*names: str) -> Iterator[None]:
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


def thread_limits(threads: int | None) -> dict[str, str]:
    """Environment that caps a kernel's BLAS, OpenMP and torch threads (parallel runs must not
    oversubscribe the cores); empty when ``threads`` is ``None``."""
    if threads is None:
        return {}
    n = str(int(threads))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[Any]:
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


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def kernel_path() -> str:
    """``PYTHONPATH`` for a kernel: this checkout first, so a kernel imports the package the
    driver runs from (not a copy an environment's editable install points to)."""
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(paths.PACKAGE_DIR.parent), *([rest] if rest else [])])
