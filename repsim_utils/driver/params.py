"""Parameter checks of the driver: each value's type against the notebook's ``parameters``
cell (``papermill.inspect_notebook``), then its chapter's schema
(:mod:`repsim_utils.chapters.schema`), and ``-p NAME=VALUE`` overrides read as YAML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from repsim_utils.chapters import schema
from repsim_utils.chapters.runtable import (
    ConfigError,
    RunPlan,
)

_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (float, int), "str": (str,), "bool": (bool,),
}


def check_type(value: Any, type_name: str) -> bool:
    """Does ``value`` fit the annotation ``type_name`` of a parameters-cell variable?"""
    type_name = type_name.replace(" ", "")
    if type_name in _SCALARS:
        if isinstance(value, bool) and type_name != "bool":
            return False  # True is an int to Python, not to a reader of the parameters
        return isinstance(value, _SCALARS[type_name])
    for container in ("list", "tuple"):
        if type_name.startswith(f"{container}[") and type_name.endswith("]"):
            inner = type_name[len(container) + 1:-1].removesuffix(",...")
            return isinstance(value, list | tuple) and all(check_type(v, inner) for v in value)
    if "|" in type_name:
        return any(check_type(value, t) for t in type_name.split("|"))
    if type_name == "None":
        return value is None
    raise ConfigError(f"parameter annotation {type_name!r} is not supported by the driver")


def notebook_parameters(notebook: Path) -> dict[str, dict[str, Any]]:
    import papermill

    if not notebook.is_file():
        raise ConfigError(f"notebook not found: {notebook}")
    return papermill.inspect_notebook(str(notebook))


def validate(plan: RunPlan) -> None:
    """Refuse unknown parameter names and values of the wrong type, listing what is allowed."""
    declared = notebook_parameters(plan.notebook)
    for name, value in plan.params.items():
        if name not in declared:
            allowed = ", ".join(f"{n}: {d['inferred_type_name']}" for n, d in declared.items())
            raise ConfigError(
                f"{plan.name}: unknown parameter {name!r}. {plan.notebook.name} accepts: {allowed}")
        type_name = declared[name]["inferred_type_name"]
        if type_name == "None":
            raise ConfigError(f"{plan.notebook.name}: parameter {name!r} has no type annotation")
        if not check_type(value, type_name):
            raise ConfigError(
                f"{plan.name}: parameter {name!r} must be {type_name} "
                f"(default {declared[name]['default']}), got {value!r} ({type(value).__name__})")
    resolved = plan.resolved = resolved_parameters(plan, declared)
    try:
        schema.check(plan.chapter, resolved)
    except schema.ParameterError as err:
        raise ConfigError(f"{plan.name}: {err}") from None
    plan.title = schema.title(plan.chapter, resolved, plan.title)
    if "dataset" in plan.params or "dataset" in declared:
        from repsim_utils.nets.data import DatasetError, check_available

        dataset = plan.params.get("dataset", _literal(declared.get("dataset", {}).get("default")))
        download = plan.params.get("download", _literal(declared.get("download", {})
                                                        .get("default", "False")))
        if dataset is not None:
            try:
                check_available(dataset, download=bool(download))
            except DatasetError as err:
                raise ConfigError(f"{plan.name}: {err}") from None


def resolved_parameters(plan: RunPlan, declared: dict[str, dict[str, Any]] | None = None
                        ) -> dict[str, Any]:
    """Every parameter the notebook will run with: its declared defaults, then the plan's."""
    declared = notebook_parameters(plan.notebook) if declared is None else declared
    return {name: _literal(d["default"]) for name, d in declared.items()} | plan.params


def _literal(text: str | None) -> Any:
    import ast

    return None if text is None else ast.literal_eval(text)


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; read it as the float a user means."""
    if isinstance(value, str) and _FLOAT.match(value):
        return float(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; values are read as YAML (``3`` int, ``0.1`` and ``1e-3`` float,
    ``[0, 1]`` list). A malformed value is a :class:`ConfigError` in one line."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"-p expects name=value, got {item!r}")
        try:
            out[name.strip()] = _numbers(yaml.safe_load(text))
        except yaml.YAMLError as err:
            where = getattr(err, "problem", None) or type(err).__name__
            raise ConfigError(f"-p {name.strip()}: cannot read {text!r} as a value ({where}); "
                              f"quote strings, write lists as [0, 1]") from None
    return out
