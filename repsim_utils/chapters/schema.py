"""What each chapter's parameters may be: ranges, choices and cross-parameter rules, declared once.

The driver checks a run's resolved parameters against its chapter's :class:`Schema` before any
kernel starts (one line, exit 2); ``python -m repsim_utils list`` prints the constraints; each
chapter notebook calls :func:`check` on its own parameters, so a hand run gets the same message.
A schema also names its runs: :func:`title` builds a run's title from the parameters it actually
runs with (dataset, architecture, task), so a rerun on other data is never mislabelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repsim_utils.nets.shapes import DATASET_LABELS, DATASET_SHAPES, UNTRAINED_OFFSET


class ParameterError(ValueError):
    """A parameter value outside what its chapter allows."""


@dataclass(frozen=True)
class Range:
    """low <= value <= high (either end optional; ``open_low`` makes the low end strict)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    #: why the upper end is where it is (said when a value is refused)
    why: str = ""

    def problem(self, value: Any) -> str | None:
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high
                                        else value <= self.high)
        if low_ok and high_ok:
            return None
        return f"must be {self.describe()}" + (f" ({self.why})" if self.why and not high_ok
                                               else "")

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        if len(parts) == 2 and self.low is not None and self.high is not None:
            lo, hi = ("(" if self.open_low else "["), (")" if self.open_high else "]")
            return f"in {lo}{self.low:g}, {self.high:g}{hi}"
        return " and ".join(parts)


@dataclass(frozen=True)
class OneOf:
    """value in choices."""

    choices: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be {self.describe()}"

    def describe(self) -> str:
        return "one of " + ", ".join(str(c) for c in self.choices)


@dataclass(frozen=True)
class Items:
    """A list: at least ``min_len`` items, distinct if asked, each satisfying ``each``."""

    each: Range | OneOf | None = None
    min_len: int = 1
    distinct: bool = False
    max_len: int | None = None
    why: str = ""
    #: why the lower end of the length is where it is
    min_why: str = ""

    def problem(self, value: Any) -> str | None:
        if len(value) < self.min_len:
            return (f"must have at least {self.min_len} item(s)" +
                    (f" ({self.min_why})" if self.min_why else ""))
        if self.max_len is not None and len(value) > self.max_len:
            return (f"must have at most {self.max_len} items" +
                    (f" ({self.why})" if self.why else ""))
        if self.distinct and len(set(value)) != len(value):
            return "must have distinct items (a repeated seed compares a network with itself)"
        if self.each is not None:
            bad = [v for v in value if self.each.problem(v) is not None]
            if bad:
                return f"must have items {self.each.describe()} (not {bad})"
        return None

    def describe(self) -> str:
        count = (f"{self.min_len}-{self.max_len}" if self.max_len is not None
                 else f"{self.min_len}+")
        text = f"{count} {'distinct ' if self.distinct else ''}items"
        return text + (f", each {self.each.describe()}" if self.each is not None else "")


@dataclass(frozen=True)
class Rule:
    """A rule across parameters: ``problem(params)`` returns None or what is wrong."""

    text: str
    problem: Callable[[Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Schema:
    fields: Mapping[str, Range | OneOf | Items]
    rules: Sequence[Rule] = ()
    title: Callable[[Mapping[str, Any]], str] | None = None
    label: str = ""

    def problems(self, params: Mapping[str, Any]) -> list[str]:
        out = []
        for name, constraint in self.fields.items():
            if name in params:
                msg = constraint.problem(params[name])
                if msg:
                    out.append(f"parameter {name!r} {msg}, got {params[name]!r}")
        if not out:  # cross rules assume each value is valid on its own
            out += [msg for rule in self.rules if (msg := rule.problem(params))]
        return out


def device_available(params: Mapping[str, Any]) -> str | None:
    if params.get("device") != "cuda":
        return None
    import torch

    if not torch.cuda.is_available():
        return ("parameter 'device' is 'cuda' but no CUDA device is available here; use "
                "'cpu' or 'auto' (GPU when there is one)")
    return None


def checkpoints_within_epochs(params: Mapping[str, Any]) -> str | None:
    late = [c for c in params.get("checkpoints", []) if c > params.get("epochs", 0)]
    if late:
        return (f"parameter 'checkpoints' {late} lie beyond epochs = {params['epochs']}; "
                f"checkpoints must be <= epochs")
    return None


def map_seed_in_seeds(params: Mapping[str, Any]) -> str | None:
    if params.get("map_seed") not in params.get("seeds", []):
        return (f"parameter 'map_seed' = {params.get('map_seed')!r} must be one of the seeds "
                f"{params.get('seeds')}")
    return None


def fits_the_data(params: Mapping[str, Any]) -> str | None:
    """Sample counts no larger than the data (refused, never silently capped), and a conv net
    no deeper than its input can be pooled (one 2x2 pooling per block)."""
    shape = DATASET_SHAPES.get(params.get("dataset"))
    if shape is None:
        return None
    name = params["dataset"]
    if params.get("n_train", 0) > shape.n_train:
        return (f"parameter 'n_train' = {params['n_train']} but {name} has {shape.n_train} "
                f"training samples (0: all of them)")
    if params.get("n_fit", 0) > shape.n_train:
        return (f"parameter 'n_fit' = {params['n_fit']} but {name} has {shape.n_train} "
                f"training samples (0: all of them)")
    split = params.get("split", "test")
    if params.get("n_samples", 0) > shape.rows(split):
        return (f"parameter 'n_samples' = {params['n_samples']} but the {split} split of {name} "
                f"has {shape.rows(split)} samples (0: all of them)")
    if params.get("arch") == "conv":
        if len(shape.input_shape) != 3:
            return f"arch 'conv' needs image inputs; {name} inputs have shape {shape.input_shape}"
        side = min(shape.input_shape[1:])
        most = max(1, side.bit_length() - 1)  # floor(log2(side)) poolings
        if params.get("depth", 1) > most:
            return (f"parameter 'depth' = {params['depth']}: a conv net pools 2x2 once per block, "
                    f"and {name}'s {side}x{side} inputs allow at most {most} blocks")
    return None


ARCH_LABELS = {"mlp": "MLP", "conv": "conv net"}
SPLITS = ("test", "train", "all")
DEVICES = ("cpu", "cuda", "auto")


#: Upper bounds, each with its reason: a value beyond them is a typo, or a run of days.
MAX_WIDTH = Range(1, 4096, why="activations of wider layers take GiBs per network; the papers "
                                "use at most 512")
MAX_DEPTH = Range(1, 16, why="the chapters compare every layer of every pair")
MAX_EPOCHS = Range(1, 1000, why="the papers train for at most 160 epochs")
MAX_SEEDS = Items(Range(0, UNTRAINED_OFFSET - 1,
                        why=f"untrained networks use seed + {UNTRAINED_OFFSET}, never a trained "
                            f"seed"),
                  min_len=3, distinct=True, max_len=50,
                  why="the pairs grow as seeds squared: 50 seeds are 1,225 pairs per layer",
                  min_why="intervals leave one network out, and pairs must remain")
MAX_SAMPLES = 1_000_000
MAX_COUNT = Range(0, MAX_SAMPLES, why="larger than any dataset here")
MAX_LR = Range(0, 10, open_low=True, why="SGD diverges")
MAX_POSITIONS = Range(0, 1024, why="a 32x32 map has 1,024 positions")


def classifier_fields(datasets: Sequence[str]) -> dict[str, Range | OneOf | Items]:
    return {
        "dataset": OneOf(tuple(datasets)), "arch": OneOf(tuple(ARCH_LABELS)),
        "width": MAX_WIDTH, "depth": MAX_DEPTH,
        # epochs = 0 would label untrained networks "trained"
        "epochs": MAX_EPOCHS, "lr": MAX_LR,
        "batch_size": Range(1, 100_000, why="larger than any dataset here"),
        "n_train": MAX_COUNT,
        "seeds": MAX_SEEDS, "device": OneOf(DEVICES),
        "min_accuracy": Range(0, 1, open_high=True)}


def classifier_title(label: str) -> Callable[[Mapping[str, Any]], str]:
    def title(p: Mapping[str, Any]) -> str:
        dataset = DATASET_LABELS.get(p["dataset"], p["dataset"])
        return f"{label}: {ARCH_LABELS.get(p['arch'], p['arch'])} on {dataset}"
    return title


def geometry_title(p: Mapping[str, Any]) -> str:
    gate, manifold = p["task"].split("_")
    return f"Geometry: {gate.upper()} on the {manifold}"


def _schemas() -> dict[str, Schema]:
    from repsim_utils.chapters.registry import CHAPTERS

    return {name: chapter.schema for name, chapter in CHAPTERS.items()}


def schema_for(chapter: str) -> Schema | None:
    """The chapter's schema, or None for a chapter without one (e.g. a test fixture)."""
    return _schemas().get(chapter)


def chapters() -> list[str]:
    """The chapters that have a schema (a run table may name only these)."""
    return sorted(_schemas())


def check(chapter: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ParameterError` naming the first parameter outside what ``chapter``
    allows (and what is allowed)."""
    schema = schema_for(chapter)
    problems = schema.problems(params) if schema is not None else []
    if problems:
        raise ParameterError(problems[0])


def title(chapter: str, params: Mapping[str, Any], default: str) -> str:
    """The run's title from the parameters it runs with (``default`` without a schema)."""
    schema = schema_for(chapter)
    return schema.title(params) if schema is not None and schema.title else default


def describe(chapter: str, name: str) -> str:
    """The constraint on one parameter, as text ('' when unconstrained)."""
    schema = schema_for(chapter)
    if schema is None or name not in schema.fields:
        return ""
    return schema.fields[name].describe()


__all__ = ["ARCH_LABELS", "DEVICES", "SPLITS", "Items", "OneOf", "ParameterError", "Range",
           "Rule", "Schema", "chapters", "check", "checkpoints_within_epochs", "classifier_fields",
           "classifier_title", "describe", "device_available", "fits_the_data", "geometry_title",
           "map_seed_in_seeds", "schema_for", "title"]
