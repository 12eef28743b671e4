"""The ``run`` command's options and their checks (before any work): jobs, timeout, heartbeat,
the Dask scheduler, the output folder and the checkout the environment installs.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from repsim_utils.base import paths
from repsim_utils.chapters.runtable import (
    ConfigError,
)
from repsim_utils.driver.heartbeat import EVERY_S
from repsim_utils.driver.kernel import (
    one_line,
)


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
                          f"({type(err).__name__}: {one_line(err)})") from None
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
    code. Kernels are safe either way (:func:`kernel_path`)."""
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
