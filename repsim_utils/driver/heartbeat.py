"""The driver's heartbeat: a console line every so often naming the cell that is running.

papermill saves the output notebook when a cell starts (``metadata.papermill.status`` is
``running``), and :func:`repsim_utils.base.progress.track` writes the kernel's current step to a
status file; a background thread reads both and prints, e.g.::

    ... cell 14/31 running for 2m10s (simple matches 5/15): sizes = subspace_match.simple_...

so a long cell is never a silent console (the tqdm bar moves only between cells).
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

#: seconds between heartbeat lines
EVERY_S = 30.0


def running_cell(notebook: Path) -> tuple[int, int, float, str] | None:
    """(position among code cells, number of code cells, seconds running, first source line)
    of the running cell of a notebook papermill is executing; ``None`` when none is."""
    try:
        nb = json.loads(notebook.read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return None
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for i, cell in enumerate(code, 1):
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("status") == "running":
            started = meta.get("start_time")
            seconds = 0.0
            if started:
                t0 = datetime.fromisoformat(started.replace("Z", "+00:00"))
                seconds = (datetime.now(UTC) - t0).total_seconds()
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            lines = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")]
            return i, len(code), seconds, (lines[0].strip() if lines else "")
    return None


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def line(notebook: Path, status: Path) -> str | None:
    """The heartbeat line, or ``None`` when no cell is running."""
    cell = running_cell(notebook)
    if cell is None:
        return None
    i, n, seconds, source = cell
    step = status.read_text().strip() if status.exists() else ""
    step = f" ({step})" if step else ""
    return f"  ... cell {i}/{n} running for {_duration(seconds)}{step}: {source[:60]}"


class Heartbeat:
    """Print :func:`line` every ``every`` seconds while in the ``with`` block."""

    def __init__(self, notebook: Path, status: Path, every: float = EVERY_S):
        self.notebook, self.status, self.every = notebook, status, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="repsim-heartbeat")

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            text = line(self.notebook, self.status)
            if text:
                print(text, file=sys.stdout, flush=True)

    def __enter__(self) -> Heartbeat:
        if self.every > 0:  # 0 switches the heartbeat off
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
