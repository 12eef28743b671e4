"""The run table (``notebooks/runs.yml``): chapters, their named runs and profiles, read strictly.

A typo in the table must not run something else: ``parmas:`` instead of ``params:`` would run
the notebook's defaults under the run's name. So the table is read with a YAML loader that
refuses duplicate keys, and checked against a fixed shape before anything runs:

- top level: ``chapters`` (required);
- a chapter: ``notebook`` (an ``.ipynb`` path, relative to the table; required), ``runs``
  (required), ``profiles`` (profile name -> parameters), ``last`` (run after every other
  chapter);
- a run: ``title``, ``params`` (a mapping) and, per profile, parameters or ``skip``;
- chapter and run names match ``[a-z0-9_]+`` (they become file names), and every chapter has a
  parameter schema in :mod:`repsim_utils.chapters.schema`.

Every problem is a :class:`ConfigError` of one line naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from repsim_utils.base import paths

PROFILES = ("smoke", "default", "paper")
NAME = re.compile(r"^[a-z0-9_]+$")
TOP_KEYS = {"chapters"}
CHAPTER_KEYS = {"notebook", "profiles", "runs", "last"}
RUN_KEYS = {"title", "params", *PROFILES}


class ConfigError(ValueError):
    """A run request that cannot be honoured (unknown name, wrong type, a malformed table...)."""


@dataclass
class RunPlan:
    chapter: str
    run: str
    title: str
    notebook: Path
    params: dict[str, Any] = field(default_factory=dict)
    #: parameters given on the command line (the page says it is not the book's default run)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: every parameter the notebook runs with, defaults included (set by the driver's validate)
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.chapter}__{self.run}"


class _Map(dict):
    """A YAML mapping that remembers the line of each key (1-based)."""

    lines: dict[Any, int]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in out.lines:
            raise _Located(line, f"{key!r} is given twice (first on line {out.lines[key]})")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Located(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def default_table() -> Path:
    return paths.notebooks_dir() / "runs.yml"


def load_table(path: Path) -> dict[str, Any]:
    """Read and check a run table; a :class:`ConfigError` ``'FILE:LINE: problem'`` otherwise."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read the run table {path}: {err.strerror or err}") from None
    try:
        table = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
        _check(table, path)
    except _Located as err:
        raise ConfigError(f"{path}:{err.line}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    return table


def _line(mapping: Any, key: Any) -> int:
    return getattr(mapping, "lines", {}).get(key, 1)


def _mapping(value: Any, line: int, what: str) -> None:
    if not isinstance(value, dict):
        raise _Located(line, f"{what} must be a mapping (name: value), got "
                             f"{type(value).__name__}")


def _keys(mapping: dict, allowed: set[str], what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise _Located(_line(mapping, key),
                           f"unknown key {key!r} in {what}; allowed: {', '.join(sorted(allowed))}")


def _name(mapping: dict, key: Any, what: str) -> None:
    if not isinstance(key, str) or not NAME.match(key):
        raise _Located(_line(mapping, key),
                       f"{what} name {key!r} must match [a-z0-9_]+ (it becomes a file name)")


def _check(table: Any, path: Path) -> None:
    from repsim_utils.chapters import schema

    _mapping(table, 1, "the run table")
    _keys(table, TOP_KEYS, "the run table")
    if "chapters" not in table:
        raise _Located(1, "a run table needs a top-level 'chapters' mapping")
    chapters = table["chapters"]
    _mapping(chapters, _line(table, "chapters"), "'chapters'")
    for cname, chapter in chapters.items():
        at = _line(chapters, cname)
        _name(chapters, cname, "chapter")
        _mapping(chapter, at, f"chapter {cname!r}")
        _keys(chapter, CHAPTER_KEYS, f"chapter {cname!r}")
        if schema.schema_for(cname) is None:
            raise _Located(at, f"chapter {cname!r} has no parameter schema in "
                               f"repsim_utils/chapters/registry.py (chapters with one: "
                               f"{', '.join(schema.chapters())})")
        for required in ("notebook", "runs"):
            if required not in chapter:
                raise _Located(at, f"chapter {cname!r} needs {required!r}")
        notebook = chapter["notebook"]
        if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
            raise _Located(_line(chapter, "notebook"),
                           f"chapter {cname!r}: notebook must be the path of an .ipynb file "
                           f"(relative to the table), got {notebook!r}")
        if not isinstance(chapter.get("last", False), bool):
            raise _Located(_line(chapter, "last"), f"chapter {cname!r}: 'last' must be true or "
                                                   f"false")
        profiles = chapter.get("profiles") or {}
        _mapping(profiles, _line(chapter, "profiles"), f"chapter {cname!r}: 'profiles'")
        _keys(profiles, set(PROFILES), f"the profiles of chapter {cname!r}")
        for pname, params in profiles.items():
            _mapping(params or {}, _line(profiles, pname),
                     f"chapter {cname!r}: profile {pname!r}")
        runs = chapter["runs"]
        _mapping(runs, _line(chapter, "runs"), f"chapter {cname!r}: 'runs'")
        if not runs:
            raise _Located(_line(chapter, "runs"), f"chapter {cname!r} has no runs")
        for rname, run in runs.items():
            _name(runs, rname, "run")
            _mapping(run or {}, _line(runs, rname), f"run {cname}.{rname}")
            run = run or {}
            _keys(run, RUN_KEYS, f"run {cname}.{rname}")
            if "title" in run and not isinstance(run["title"], str):
                raise _Located(_line(run, "title"), f"run {cname}.{rname}: title must be text")
            _mapping(run.get("params") or {}, _line(run, "params"),
                     f"run {cname}.{rname}: 'params'")
            for pname in PROFILES:
                value = run.get(pname)
                if value is not None and value != "skip":
                    _mapping(value, _line(run, pname),
                             f"run {cname}.{rname}: profile {pname!r} (parameters or 'skip')")


def plan_runs(
    table: dict[str, Any],
    table_dir: Path,
    profile: str,
    chapters: Sequence[str] = (),
    runs: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
) -> list[RunPlan]:
    """Resolve the runs of a profile: run params < chapter profile < run profile < command line."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    known = table["chapters"]
    for c in chapters:
        if c not in known:
            raise ConfigError(f"unknown chapter {c!r}; chapters: {', '.join(known)}")
    plans = []
    for cname, chapter in known.items():
        if chapters and cname not in chapters:
            continue
        chapter_profile = (chapter.get("profiles") or {}).get(profile) or {}
        for rname, run in chapter["runs"].items():
            run = run or {}
            if runs and rname not in runs:
                continue
            run_profile = run.get(profile) or {}
            if run_profile == "skip":
                continue
            params = {**(run.get("params") or {}), **chapter_profile, **run_profile,
                      **(overrides or {})}
            plans.append(RunPlan(cname, rname, run.get("title", f"{cname}: {rname}"),
                                 table_dir / chapter["notebook"], dict(params),
                                 dict(overrides or {})))
    if runs:
        all_runs = {r for c in known.values() for r in c["runs"]}
        for r in runs:
            if r not in all_runs:
                raise ConfigError(f"unknown run {r!r}; runs: {', '.join(sorted(all_runs))}")
    if not plans:
        raise ConfigError("nothing to run: no run matches the chosen chapters and runs")
    # A chapter marked ``last: true`` (the synthesis) reads every other run's results: it is
    # run after them, also when only some chapters were asked for.
    for cname, chapter in known.items():
        if chapter.get("last") and not any(p.chapter == cname for p in plans):
            plans += plan_runs(table, table_dir, profile, [cname])
    last = [p for p in plans if known[p.chapter].get("last")]
    return [p for p in plans if p not in last] + last


def run_names(table: Path, profile: str) -> list[str]:
    """``chapter__run`` of every run of ``profile`` (what the synthesis expects to read)."""
    return [p.name for p in plan_runs(load_table(table), table.parent, profile)]


__all__ = ["PROFILES", "ConfigError", "RunPlan", "default_table", "load_table", "plan_runs",
           "run_names"]
