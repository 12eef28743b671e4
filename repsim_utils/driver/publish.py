"""Publishing a run all or nothing, whatever instant a crash or an error strikes.

A run's page is several files (notebook, results JSON, figure folder) that must change together.
The protocol is a write-ahead journal and renames inside each target's own folder:

1. The journal is written (atomically) *before anything moves*. Per target it records whether
   the target existed and the two hidden sibling names used for it: ``.NAME.TOKEN.new`` (the
   new version) and ``.NAME.TOKEN.old`` (the backup of the old one).
2. Each new version is moved (same file system) or copied (another one: a bind mount or volume
   under ``book/executed``) to its ``.new`` sibling: nothing live has changed yet.
3. Each existing target is renamed to its ``.old`` sibling, then each ``.new`` onto its target.
   Every rename stays inside one folder, so none can cross a file system.
4. The journal is rewritten as committed; the backups and then the journal are removed.

Recovery (:func:`roll_back`: by the driver's ``recover`` at the next start after a crash, or
at once after an error) reads only the journal: before the commit mark it restores every
backup that exists, deletes what was moved in where nothing existed, and deletes the ``.new``
siblings; a target whose backup
does not exist was never moved and is left alone. After the commit mark it finishes the
clean-up. Either way the folder holds the complete previous page or the complete new one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from repsim_utils.base.atomic import write_json


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _bring(source: Path, new: Path) -> None:
    """Put ``source`` at ``new`` (a sibling of the target): a rename on one file system, a copy
    across two (a rename there fails with EXDEV)."""
    if _same_device(source, new.parent):
        os.replace(source, new)
    elif source.is_dir():
        shutil.copytree(source, new)
    else:
        shutil.copy2(source, new)


def publish(journal: Path, staged: Sequence[Path], targets: Sequence[Path]) -> None:
    """Replace each of ``targets`` by the matching ``staged`` file or folder, all or nothing,
    under ``journal`` (see the module docstring). Any error rolls back and is raised again."""
    if len(staged) != len(targets):
        raise ValueError("one staged path per target")
    token = uuid.uuid4().hex[:12]
    entries = []
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        entries.append({"path": str(target), "existed": target.exists(),
                        "new": str(target.parent / f".{target.name}.{token}.new"),
                        "old": str(target.parent / f".{target.name}.{token}.old")})
    journal.parent.mkdir(parents=True, exist_ok=True)
    write_json(journal, {"committed": False, "targets": entries})
    try:
        for source, entry in zip(staged, entries, strict=True):
            _bring(Path(source), Path(entry["new"]))
        for entry in entries:
            if entry["existed"]:
                os.replace(entry["path"], entry["old"])
        for entry in entries:
            os.replace(entry["new"], entry["path"])
        write_json(journal, {"committed": True, "targets": entries})
    except BaseException:
        roll_back(journal)
        raise
    try:
        _finish(journal, entries)
    except OSError:
        pass  # published: the backups left behind are removed by the next start's recovery


def _finish(journal: Path, entries: list[dict]) -> None:
    for entry in entries:
        _remove(Path(entry["old"]))
        _remove(Path(entry["new"]))
    journal.unlink()


def roll_back(journal: Path) -> bool:
    """Complete or undo the publish that ``journal`` describes; True if it was rolled back
    (the previous page restored), False if it had committed (the new page kept)."""
    record = json.loads(journal.read_text())
    entries = record["targets"]
    if record.get("committed"):
        _finish(journal, entries)
        return False
    failed: OSError | None = None
    for entry in entries:  # every target is tried, whatever happens to the others
        target, old, new = Path(entry["path"]), Path(entry["old"]), Path(entry["new"])
        try:
            if old.exists() or old.is_symlink():
                _remove(target)  # the new version, or nothing
                os.replace(old, target)
            elif not entry["existed"]:
                _remove(target)  # moved in where nothing was: no half-published run stays
            # existed and no backup: the target was never moved; it is the previous version
            _remove(new)
        except OSError as err:
            failed = failed or err
    if failed is not None:
        raise failed  # the journal stays: the next start tries again
    journal.unlink()
    return True


__all__ = ["publish", "roll_back"]
