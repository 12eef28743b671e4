"""What every chapter notebook does first: collect the values of its parameters cell, check them
against the chapter's schema, and start the run's :class:`~repsim_utils.book.report.Report`.

The parameters are read from the notebook's own ``parameters`` cell (papermill's
``inspect_notebook`` of ``notebooks/<chapter>.ipynb``), so a parameter added to the cell is
recorded without being listed a second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repsim_utils.base import paths
from repsim_utils.book.report import Report
from repsim_utils.chapters import schema


def parameter_names(chapter: str, notebook: Path | None = None) -> list[str]:
    """The names the chapter notebook's ``parameters`` cell assigns, in order."""
    import papermill

    notebook = notebook or paths.notebooks_dir() / f"{chapter}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"chapter {chapter!r}: no notebook at {notebook}")
    return list(papermill.inspect_notebook(str(notebook)))


def collect(chapter: str, namespace: Mapping[str, Any], notebook: Path | None = None
            ) -> dict[str, Any]:
    """{name: value} of every parameter of the chapter's notebook, from ``namespace`` (the
    notebook's ``globals()``)."""
    names = parameter_names(chapter, notebook)
    missing = [n for n in names if n not in namespace]
    if missing:
        raise NameError(f"chapter {chapter!r}: parameters {missing} are not defined; run the "
                        f"parameters cell first")
    return {n: namespace[n] for n in names}


def start(chapter: str, namespace: Mapping[str, Any], notebook: Path | None = None,
          show: bool = True) -> tuple[Report, dict[str, Any]]:
    """(the run's report, its parameters): the parameters collected from ``namespace`` and
    checked against the chapter's schema (the driver checks the same before any work; this
    guard is for runs by hand), and, with ``show``, the parameter table at the top of the
    page."""
    params = collect(chapter, namespace, notebook)
    schema.check(chapter, params)
    report = Report(chapter, params)
    if show:
        from IPython.display import Markdown, display

        display(Markdown(report.describe()))
    return report, params


__all__ = ["collect", "parameter_names", "start"]
