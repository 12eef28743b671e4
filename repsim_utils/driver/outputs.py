"""Where a run is published (notebook, results JSON, figure folder), its lock (one driver per
run), and the journalled publish of :mod:`repsim_utils.driver.publish` applied to a run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from repsim_utils.chapters.runtable import (
    RunPlan,
)
from repsim_utils.driver import publish as transaction
from repsim_utils.driver.errors import RunBusy

#: Beside the published pages (same file system, so publishing is a set of renames); the book
#: build ignores dot-folders.
WORK = ".repsim-work"


def run_lock_file(name: str, out_dir: Path) -> Any:
    """The file lock of run ``name`` in ``out_dir`` (not acquired)."""
    from filelock import FileLock

    folder = out_dir / WORK / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"))


@contextlib.contextmanager
def run_lock(plan: RunPlan, out_dir: Path) -> Iterator[None]:
    """One driver per run and output folder; a second one stops at once, naming the first."""
    from filelock import Timeout

    lock = run_lock_file(plan.name, out_dir)
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


def targets(plan: RunPlan, out_dir: Path) -> list[Path]:
    """Where a run is published: notebook, results JSON, figure folder."""
    executed = out_dir / "executed"
    return [executed / f"{plan.name}.ipynb", executed / f"{plan.name}.json",
            out_dir / "figures" / plan.chapter / plan.run]


def _journal(plan: RunPlan, out_dir: Path) -> Path:
    return out_dir / WORK / "publishing" / f"{plan.name}.json"


def publish(plan: RunPlan, staged: Sequence[Path], out_dir: Path) -> None:
    """Replace the run's published notebook, JSON and figures by ``staged`` (same order as
    :func:`targets`), all or nothing, at every instant (:mod:`repsim_utils.driver.publish`)."""
    transaction.publish(_journal(plan, out_dir), staged, targets(plan, out_dir))


def recover(out_dir: Path) -> list[str]:
    """Finish every publish that a crash cut off; the runs whose previous page was restored.
    A journal whose run is locked belongs to a driver publishing it now: it is left alone."""
    from filelock import Timeout

    names = []
    for journal in sorted((out_dir / WORK / "publishing").glob("*.json")):
        lock = run_lock_file(journal.stem, out_dir)
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
