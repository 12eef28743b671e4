"""Where things live on disk. Notebooks never see these paths; parameters stay logical.

Every location can be moved with an environment variable:

- ``REPSIM_CACHE``: trained-model cache (default ``<project>/.cache/repsim``).
- ``REPSIM_DATA``: torchvision datasets (default ``<project>/data``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # repsim_utils/, above base/
#: set by the driver in a kernel's environment: the folder the runs are published in
OUT_ENV = "REPSIM_OUT"
#: where a kernel writes its run's results and figures (set by the driver for each run)
RESULTS_ENV = "REPSIM_RESULTS"
FIGURES_ENV = "REPSIM_FIGURES"


def project_root() -> Path:
    """The repository root when the package is used from a checkout, else the working directory."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
        return candidate
    return Path.cwd()


def cache_dir() -> Path:
    return Path(os.environ.get("REPSIM_CACHE") or project_root() / ".cache" / "repsim")


def data_dir() -> Path:
    return Path(os.environ.get("REPSIM_DATA") or project_root() / "data")


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def book_dir() -> Path:
    return project_root() / "book"


def failed_dir() -> Path:
    """Failed runs are kept here for debugging, outside anything the book publishes."""
    return project_root() / ".repsim" / "failed"
