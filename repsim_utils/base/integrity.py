"""Digests that let the book trust what it publishes: of a run's files, and of the code it ran.

- **Files.** A run's record (its results JSON) carries the SHA-256 of its page (the executed
  notebook) and of every figure, and a digest of the record itself. :func:`check_record` tells
  whether the three still match: a JSON edited by hand (a verdict set to "agrees"), a figure
  replaced or a page from another run is found, and the driver reruns it and the synthesis
  refuses it. (A digest is not a signature: it catches accidents and hand edits, not someone
  who recomputes it.)
- **Code.** A run records the digest of every module of the package that its kernel imported,
  taken from the source *as it was imported* (an import hook installed with the package), and
  of the driver modules that shape its page. A published run is current only while every one of
  those modules still has that digest: an edit made while a run executes, even if reverted
  before it ends, leaves the run stale; an edit to a module the run never imported does not.
  The digest is of the module's syntax tree without docstrings, so comments, docstrings and
  formatting do not invalidate results.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import json
import sys
from pathlib import Path
from typing import Any

PACKAGE = __name__.split(".")[0]
PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: the modules of the driver that turn an executed notebook into its page and record
DRIVER_MODULES = (f"{PACKAGE}.driver.execute", f"{PACKAGE}.driver.outputs",
                  f"{PACKAGE}.driver.publish", f"{PACKAGE}.book.page", f"{PACKAGE}.base.integrity")

#: module name -> its source bytes at the moment it was imported in this process
_SOURCES: dict[str, bytes] = {}
_DIGESTS: dict[str, str] = {}


# ---------------------------------------------------------------------------------------------
# code


def code_digest(source: bytes | str) -> str:
    """SHA-256 of a module's syntax tree, docstrings left out: the same for two sources that
    differ only in comments, docstrings or layout. Source that does not parse is hashed as is."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        raw = source.encode() if isinstance(source, str) else source
        return "raw:" + hashlib.sha256(raw).hexdigest()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def module_file(module: str, root: Path | None = None) -> Path | None:
    """The source file of a module of the package in the tree at ``root`` (default: this
    package's folder; None if absent)."""
    root = PACKAGE_DIR if root is None else root
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def tree_digests(modules: Any, root: Path | None = None) -> dict[str, str | None]:
    """The digests ``modules`` have in the tree now (None for a module that is gone)."""
    out: dict[str, str | None] = {}
    for name in modules:
        path = module_file(name, root)
        out[name] = None if path is None else code_digest(path.read_bytes())
    return out


def all_modules(root: Path | None = None) -> list[str]:
    """Every module of the package's tree (sub-packages included)."""
    root = PACKAGE_DIR if root is None else root
    names = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.append(".".join([PACKAGE, *parts]))
    return names


def imported_code(names: Any = None) -> dict[str, str]:
    """{module: digest} of the package's modules imported by this process, from their source as
    imported (``names``: only those)."""
    chosen = sorted(_SOURCES) if names is None else [n for n in names if n in _SOURCES]
    for name in chosen:
        if name not in _DIGESTS:  # a module's recorded source never changes: hash it once
            _DIGESTS[name] = code_digest(_SOURCES[name])
    return {name: _DIGESTS[name] for name in chosen}


def stale_modules(recorded: dict[str, str], root: Path | None = None) -> list[str]:
    """The recorded modules whose digest in the tree now differs (or that are gone)."""
    now = tree_digests(recorded, root)
    return [name for name, digest in recorded.items() if now[name] != digest]


class _Recorder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: reads the source of each of the package's modules as the import
    system is about to load it, so the digest is of the code that ran."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not fullname.startswith(PACKAGE + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            try:
                _SOURCES[fullname] = Path(spec.origin).read_bytes()
            except OSError:
                pass
        return spec


def install_recorder(package_file: str) -> None:
    """Start recording (called once by the package's ``__init__``, with its own file)."""
    if not any(isinstance(f, _Recorder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Recorder())
        _SOURCES[PACKAGE] = Path(package_file).read_bytes()
        _SOURCES[__name__] = Path(__file__).read_bytes()  # imported before the hook existed


# ---------------------------------------------------------------------------------------------
# files


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): file_digest(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _record_digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def seal(record: dict[str, Any], notebook: Path, figures: Path) -> dict[str, Any]:
    """``record`` with the digests of its page and figures and of itself added."""
    sealed = dict(record)
    sealed["files"] = {"notebook": file_digest(notebook), "figures": folder_digests(figures)}
    sealed.pop("digest", None)
    sealed["digest"] = _record_digest(sealed)
    return sealed


def check_record(record_path: Path, notebook: Path, figures: Path
                 ) -> tuple[dict[str, Any] | None, str | None]:
    """(the record, None) when the published files match their digests, else (the record or
    None, what is wrong) in words that name the file."""
    try:
        record = json.loads(record_path.read_text())
    except FileNotFoundError:
        return None, f"{record_path} is missing"
    except (OSError, ValueError) as err:
        return None, f"{record_path} cannot be read ({type(err).__name__}: {err})"
    if not isinstance(record, dict) or "digest" not in record or "files" not in record:
        return None, f"{record_path} carries no digest (written by an older driver)"
    if _record_digest(record) != record["digest"]:
        return record, f"{record_path} was changed after it was published (its digest differs)"
    if not notebook.is_file():
        return record, f"{notebook} is missing"
    if file_digest(notebook) != record["files"]["notebook"]:
        return record, f"{notebook} is not the page published with {record_path.name}"
    if not figures.is_dir():
        return record, f"{figures} is missing"
    if folder_digests(figures) != record["files"]["figures"]:
        return record, f"the figures in {figures} are not those published with it"
    return record, None


__all__ = ["DRIVER_MODULES", "all_modules", "check_record", "code_digest", "file_digest",
           "folder_digests", "imported_code", "install_recorder", "seal", "stale_modules",
           "tree_digests"]
