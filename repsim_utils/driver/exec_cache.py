"""The execution cache: a run whose inputs did not change is not executed again.

A run's key is a SHA-256 over everything that can change its page:

- the notebook's cells (code, markdown and tags: a markdown edit changes the page too);
- its fully resolved parameters and the profile;
- the lock file (``requirements.lock``) and the versions of the key packages and of Python
  (:func:`repsim_utils.base.provenance.versions`);
- for a chapter that reads other runs' results (``last: true``, the synthesis), the published
  results of every other run.

Code is not in the key: the run's record lists the digest of every module of the package its
kernel imported, as imported, and of the driver's page-shaping modules
(:mod:`repsim_utils.base.integrity`, sub-packages included). A published run is current when its key
matches, each of those modules still has its recorded digest (comments and docstrings do not
count), and its notebook, JSON and figures are in place and match the digests sealed into the
record. Otherwise it is executed again (``--force`` reruns any run). Data files are not hashed:
a dataset replaced under the same name needs ``--force``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from repsim_utils.base import integrity, paths
from repsim_utils.base.provenance import versions
from repsim_utils.book.record import RecordError, RunRecord

#: bump to invalidate every cached run (a change in what the key covers)
KEY_VERSION = 2  # 2: code digests per imported module, sealed records


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
    """SHA-256 of the lock file and the key versions (the package's code is checked per
    module: :func:`published_state`)."""
    root = paths.project_root() if root is None else root
    h = hashlib.sha256()
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


def published_state(json_path: Path, notebook: Path, figures: Path, key: str
                    ) -> tuple[str, str]:
    """("current" | "changed" | "untrusted", why) of a published run against ``key``:
    untrusted when its files do not match the digests sealed into its record."""
    record, problem = integrity.check_record(json_path, notebook, figures)
    if problem is not None:
        return "untrusted", problem
    try:
        run = RunRecord.from_json(record, str(json_path))
    except RecordError as err:
        return "changed", str(err)
    if run.cache_key != key:
        return "changed", "its notebook, parameters or environment changed"
    code = run.code
    if not isinstance(code, dict) or not code:
        return "changed", "it records no code digests"
    stale = integrity.stale_modules(code)
    if stale:
        return "changed", f"code it ran changed: {', '.join(stale)}"
    return "current", ""
