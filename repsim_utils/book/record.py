"""The run record: what a published run's JSON holds, typed, written once by the driver and read
by the synthesis and the execution cache.

A kernel writes its part as it runs (:class:`KernelResults`, the file named by
``REPSIM_RESULTS``: parameters, results, figures, verdicts, null reasons, the code it imported);
the driver adds the run's identity and provenance and writes the :class:`RunRecord`, sealed with
the digests of its page and figures (:func:`repsim_utils.base.integrity.seal`). Reading is
strict: a record with a missing or an unknown key is refused with its name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class RecordError(ValueError):
    """A results file that is not a run record of this version."""


@dataclass(frozen=True)
class KernelResults:
    """What the kernel writes while the notebook runs."""

    chapter: str
    parameters: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    null_reasons: dict[str, str] = field(default_factory=dict)
    #: {module: code digest} of the package's modules the kernel imported
    code: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KernelResults:
        """The kernel's part of a results file (its provenance keys are left to the driver)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RunRecord:
    """One published run (``book/executed/<chapter>__<run>.json``)."""

    chapter: str
    run: str
    title: str = ""
    profile: str = ""
    #: the run table's and the command line's parameters
    parameters: dict[str, Any] = field(default_factory=dict)
    command_line: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = 0.0
    commit: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    #: every value the notebook ran with, defaults included
    resolved_parameters: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    null_reasons: dict[str, str] = field(default_factory=dict)
    cache_key: str | None = None
    #: {module: code digest} of the code the run ran (kernel and page-shaping driver modules)
    code: dict[str, str] = field(default_factory=dict)
    #: where the data came from (package, file and digest, counts, split)
    dataset: dict[str, Any] | None = None
    #: the seal: digests of the page and the figures, and of the record itself
    files: dict[str, Any] | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.chapter}__{self.run}"

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object that is published (the seal left out when absent)."""
        out = dataclasses.asdict(self)
        for key in ("files", "digest"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "record") -> RunRecord:
        """A record read back; every key of this version must be there (the seal may be
        absent) and no other."""
        if not isinstance(data, dict):
            raise RecordError(f"{where} is not a JSON object")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data and n not in ("files", "digest")]
        if unknown or missing:
            raise RecordError(f"{where} is not a run record of this version (missing "
                              f"{missing or 'nothing'}, unknown {unknown or 'nothing'})")
        return cls(**data)


__all__ = ["KernelResults", "RecordError", "RunRecord"]
