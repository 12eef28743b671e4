"""Progress of long loops: a bar in the notebook, a status line for the driver's console.

Inside a notebook, :func:`track` is a tqdm bar on stderr (kept out of the book's pages). Run by
the driver, the kernel's output does not reach the console, so :func:`track` also writes its
current position (``"simple matches 5/15"``) to the file named by ``REPSIM_STATUS``, at most once
a second; the driver's heartbeat prints it beside the running cell
(``repsim_utils.driver.heartbeat``).
``REPSIM_PROGRESS=0`` switches the bars off (the tests, logs).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

STATUS_ENV = "REPSIM_STATUS"
T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars unless ``REPSIM_PROGRESS=0``."""
    return os.environ.get("REPSIM_PROGRESS", "1") != "0"


def report_status(text: str) -> None:
    """Write ``text`` as the kernel's current step for the driver (no-op outside it)."""
    path = os.environ.get(STATUS_ENV)
    if not path:
        return
    tmp = Path(f"{path}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)  # the driver never reads half a line
    except OSError:
        pass  # progress is a courtesy: never fail a run for it


def track(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar named ``desc``, and report ``desc i/n`` to the driver."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    bar = tqdm(iterable, desc=desc, total=total, file=sys.stderr, disable=not progress_enabled(),
               dynamic_ncols=True)
    last = 0.0
    of = f"/{total}" if total is not None else ""
    for i, item in enumerate(bar):
        now = time.monotonic()
        if now - last >= 1.0:
            report_status(f"{desc} {i}{of}")
            last = now
        yield item
    report_status("")  # the step is over: a later cell must not show it
