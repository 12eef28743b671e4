"""Versions, commit and machine: recorded in every executed notebook and results file."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from repsim_utils.base.paths import project_root

PACKAGES = (
    "repsim-utils", "torch", "torchvision", "numpy", "scipy", "scikit-learn",
    "seaborn", "matplotlib", "papermill", "jupyter-book", "mnist1d", "mlxtend",
)


def versions() -> dict[str, str]:
    """Installed versions of the study's packages (and Python)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    """The checkout's commit, suffixed with ``-dirty`` when tracked files are modified."""
    root = project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def machine() -> dict[str, str | int]:
    import os

    import torch

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
