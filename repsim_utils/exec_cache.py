"""The execution cache: a run whose inputs did not change is not executed again.

A run's key is a SHA-256 over everything that can change its page:

- the notebook's cells (code, markdown and tags: a markdown edit changes the page too);
- its fully resolved parameters and the profile;
- the package's source files (``repsim_utils/*.py``) and the lock file (``requirements.lock``);
- the versions of the key packages and of Python (:func:`repsim_utils.provenance.versions`);
- for a chapter that reads other runs' results (``last: true``, the synthesis), the published
  results of every other run.

The driver writes the key into the run's published JSON (``cache_key``); a later run whose key
matches, with its notebook, JSON and figures still in place, is skipped (``--force`` reruns).
Data files are not hashed: a dataset replaced under the same name needs ``--force``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import paths
from .provenance import versions

#: bump to invalidate every cached run (a change in what the key covers)
KEY_VERSION = 1


def _digest_files(h: Any, files: Iterable[Path], root: Path) -> None:
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())


def notebook_digest(notebook: Path) -> str:
    """SHA-256 of a notebook's cell types, sources and tags (not its outputs or ids)."""
    cells = json.loads(notebook.read_text())["cells"]
    parts = [[c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list)
              else c["source"], sorted(c.get("metadata", {}).get("tags", []))] for c in cells]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def environment_digest(root: Path | None = None) -> str:
    """SHA-256 of the package's sources, the lock file and the key versions."""
    root = paths.project_root() if root is None else root
    h = hashlib.sha256()
    _digest_files(h, (root / "repsim_utils").glob("*.py"), root)
    lock = root / "requirements.lock"
    if lock.exists():
        _digest_files(h, [lock], root)
    h.update(json.dumps(versions(), sort_keys=True).encode())
    return h.hexdigest()


def run_key(notebook: Path, resolved: dict[str, Any], profile: str, environment: str,
            upstream: Iterable[Path] = ()) -> str:
    """The cache key of one run (see the module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": KEY_VERSION, "notebook": notebook_digest(notebook),
                         "parameters": resolved, "profile": profile, "environment": environment},
                        sort_keys=True, default=repr).encode())
    for f in sorted(upstream):
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def published_key(json_path: Path, notebook: Path, figures: Path) -> str | None:
    """The key recorded with a published run, or ``None`` if any part of it is missing."""
    if not (json_path.is_file() and notebook.is_file() and figures.is_dir()):
        return None
    try:
        return json.loads(json_path.read_text()).get("cache_key")
    except (OSError, ValueError):
        return None
