"""How an executed notebook reads as a page of the book: code collapsed, figures numbered.

The driver applies these to the executed copy before publishing it; the source notebooks in
``notebooks/`` stay plain. Both are edits of notebook metadata that myst-nb understands:

- every code cell gets the ``hide-input`` tag (one click opens it), unless the source notebook
  tags it ``show-input`` because there the code is the point;
- every figure published with :meth:`repsim_utils.book.report.Report.figure` moves into a cell
  of its own whose ``mystnb.figure`` metadata gives it a label and its caption, so Sphinx numbers it
  ("Fig. 3.2") and other pages can reference it; the caption text that ``Report.figure`` shows
  for people running the notebook by hand is dropped from the page (the figure now carries it).
"""

from __future__ import annotations

import copy
from typing import Any

SHOW_INPUT = "show-input"
HIDE_INPUT = "hide-input"
#: output metadata marking the caption paragraph ``Report.figure`` displays under a figure
CAPTION_MARK = "repsim_caption"


def figure_label(run_name: str, key: str) -> str:
    """The Sphinx label of a figure: unique in the book (runs of a chapter share keys)."""
    return f"fig-{run_name}-{key}".replace("_", "-").lower()


def collapse_code(nb: Any) -> None:
    """Tag every code cell ``hide-input`` unless it is tagged ``show-input``."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if SHOW_INPUT not in tags and HIDE_INPUT not in tags and "remove-input" not in tags:
            tags.append(HIDE_INPUT)


def _figure_key(output: Any, figures: dict[str, str]) -> str | None:
    name = output.get("metadata", {}).get("scrapbook", {}).get("name")
    if output.get("output_type") == "display_data" and name in figures:
        return name
    return None


def number_figures(nb: Any, run_name: str, figures: dict[str, str]) -> int:
    """Give each published figure a numbered, captioned cell of its own; returns how many.

    ``figures`` maps each figure's key to its caption (the run's ``figures`` record). A cell's
    outputs are split around each figure: outputs before it stay in the cell, the figure goes
    into a new input-less cell with ``mystnb.figure = {name, caption}``, outputs after it into
    another input-less cell, so the page reads in the order the notebook printed it.
    """
    cells, count = [], 0
    for cell in nb.cells:
        outputs = cell.get("outputs", []) if cell.cell_type == "code" else []
        if not any(_figure_key(o, figures) for o in outputs):
            cells.append(cell)
            continue
        head = copy.deepcopy(cell)
        head.outputs = []
        pieces, current = [head], head
        for out in outputs:
            if out.get("metadata", {}).get(CAPTION_MARK):
                continue
            key = _figure_key(out, figures)
            if key is None:
                current.outputs.append(out)
                continue
            fig = _outputs_only(cell, f"fig{len(pieces)}", f"# figure {key}")
            fig.metadata["mystnb"] = {"figure": {
                "name": figure_label(run_name, key), "caption": figures[key]}}
            fig.outputs = [out]
            rest = _outputs_only(cell, f"out{len(pieces)}", "# outputs after the figure")
            pieces += [fig, rest]
            current, count = rest, count + 1
        cells += [p for p in pieces if p is head or p.outputs]
    nb.cells = cells
    return count


def _outputs_only(cell: Any, suffix: str, source: str) -> Any:
    """A copy of a code cell that shows outputs only (no input, no prompt). Its source is a
    comment: myst-nb skips cells whose source is empty, outputs and all."""
    new = copy.deepcopy(cell)
    new.source, new.outputs, new.execution_count = source, [], None
    new.metadata = {"tags": ["remove-input"]}
    if "id" in cell:  # ids are unique in a notebook (nbformat 4.5)
        new.id = f"{cell.id}-{suffix}"[-64:]
    return new
