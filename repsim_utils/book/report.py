"""What a chapter notebook hands on: key numbers and figures.

``Report`` is the only place a notebook publishes from:

- ``report.number(key, value)`` glues the value for the book (myst-nb ``glue``) and records it in
  the run's results, which the driver writes to ``<chapter>__<run>.json``;
- ``report.figure(fig, name, caption)`` shows the figure, glues it and saves it as a PNG for
  numbered references;
- ``report.verdict(v)`` records a computed :class:`~repsim_utils.inference.verdicts.Verdict` under
  ``verdicts``; ``report.show_verdicts()`` shows them as a table and generated sentences.

Results are strict JSON: a non-finite number is refused, and a table cell without a value is
written as ``null`` only when the table names why (``nulls=``).

The driver tells the kernel where to write through environment variables (``REPSIM_RESULTS``,
``REPSIM_FIGURES``); run by hand, a notebook simply keeps its results in memory. Results are
rewritten (atomically) after every call, so a run cut off keeps what it had computed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from repsim_utils.base.atomic import atomic_open, write_json
from repsim_utils.base.integrity import imported_code
from repsim_utils.base.paths import FIGURES_ENV, RESULTS_ENV  # noqa: F401 (re-exported)
from repsim_utils.base.provenance import git_commit, machine, versions
from repsim_utils.book.page import CAPTION_MARK
from repsim_utils.book.record import KernelResults
from repsim_utils.inference.verdicts import Verdict


class Report:
    """Key numbers and figures of one notebook run.

    Parameters
    ----------
    chapter : the chapter's name (``convergent_learning``...).
    params : the notebook's parameters, recorded beside the results.
    """

    def __init__(self, chapter: str, params: dict[str, Any]):
        self.chapter = chapter
        self.params = dict(params)
        self.results: dict[str, Any] = {}
        self.figures: dict[str, str] = {}
        self.verdicts: list[Verdict] = []
        self.null_reasons: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        results_path = os.environ.get(RESULTS_ENV)
        figures_dir = os.environ.get(FIGURES_ENV)
        self._results_path = Path(results_path) if results_path else None
        self._figures_dir = Path(figures_dir) if figures_dir else None
        self.provenance = {"versions": versions(), "commit": git_commit(), "machine": machine()}
        self._flush()

    def describe(self) -> str:
        """Markdown block with parameters, versions and commit, for the top of a chapter."""
        lines = ["| parameter | value |", "|---|---|"]
        lines += [f"| `{k}` | `{v!r}` |" for k, v in self.params.items()]
        vers = ", ".join(f"{k} {v}" for k, v in self.provenance["versions"].items())
        lines += ["", f"Commit `{self.provenance['commit']}`; {vers}."]
        return "\n".join(lines)

    def number(self, key: str, value: float | int, *, display: bool = False) -> float | int:
        """Record a key number and glue it under ``key``; returns ``value`` unchanged."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"result {key!r} is {value}: refusing to publish a non-finite number")
        value = value.item() if hasattr(value, "item") else value
        self._claim(key, "number")
        self.results[key] = value
        self._glue(key, value, display=display)
        self._flush()
        return value

    def text(self, key: str, value: str) -> str:
        """Record a generated sentence and glue it (``{glue:text}`...::key:s``)."""
        self._claim(key, "text")
        self.results[key] = str(value)
        self._glue(key, str(value), display=False)
        self._flush()
        return value

    def table(self, key: str, frame: Any, nulls: str | None = None) -> Any:
        """Record a pandas DataFrame (as records) and glue it for other pages.

        Missing or non-finite cells are written as JSON ``null``; a table that has any must say
        why in ``nulls`` (recorded under ``null_reasons``), otherwise it is refused."""
        import numpy as np

        records = frame.reset_index().to_dict(orient="records")
        missing = [(i, k) for i, r in enumerate(records) for k, v in r.items()
                   if isinstance(v, float | np.floating) and not math.isfinite(v)]
        if missing and not nulls:
            i, k = missing[0]
            raise ValueError(f"table {key!r} has {len(missing)} missing or non-finite cells "
                             f"(first: row {i}, column {k!r}); say why with nulls='...'")
        for i, k in missing:
            records[i][k] = None
        self._claim(key, "table")
        if missing:
            self.null_reasons[key] = str(nulls)
        self.results[key] = records
        self._glue(key, frame, display=False)
        self._flush()
        return frame

    def verdict(self, verdict: Verdict) -> Verdict:
        """Record a computed verdict (one per claim id) in the results' ``verdicts``, and glue
        its outcome with value and interval as text under ``verdict_<id>`` (for ``{glue:text}``
        on other pages)."""
        if any(v.claim.id == verdict.claim.id for v in self.verdicts):
            raise ValueError(f"verdict {verdict.claim.id!r} is already recorded in this run")
        key = f"verdict_{verdict.claim.id}"
        self._claim(key, "verdict")
        self.verdicts.append(verdict)
        e = verdict.estimate
        # a plain string: {glue:text} pastes it across documents ({glue:md} cannot)
        self._glue(key, f"{verdict.outcome}: {e.value:.3g} [{e.low:.3g}, {e.high:.3g}]",
                   display=False)
        self._flush()
        return verdict

    def verdict_frame(self) -> Any:
        """The recorded verdicts as a DataFrame (claim, statistic, value, CI, outcome...)."""
        import pandas as pd

        from repsim_utils.inference.verdicts import KINDS

        return pd.DataFrame([{
            "outcome": v.outcome, "kind": KINDS[v.claim.kind], "claim": v.claim.claim,
            "statistic": v.claim.statistic, "value": v.estimate.value,
            "95% CI": f"[{v.estimate.low:.3g}, {v.estimate.high:.3g}]",
            "untrained vs untrained": v.uu.text() if v.uu else "",
            "trained vs untrained": v.baseline.text() if v.baseline else "",
            "null": v.null.text() if v.null else "",
            "rule": v.claim.rule.describe()} for v in self.verdicts])

    def show_verdicts(self) -> None:
        """Display the verdict table and one generated sentence per verdict."""
        from IPython.display import Markdown, display

        if not self.verdicts:
            display(Markdown("No claim was tested in this run."))
            return
        display(self.verdict_frame().style.format({"value": "{:.3g}"}).hide(axis="index"))
        display(Markdown("\n".join(f"- {v.sentence()}" for v in self.verdicts)))

    def figure(self, fig: Any, name: str, caption: str) -> None:
        """Show ``fig`` with its caption, glue it, and save it as ``<name>.png``."""
        import io

        import matplotlib.pyplot as plt
        from IPython.display import Image, Markdown, display

        self._claim(name, "figure")
        # Render to PNG bytes ourselves: the notebook output then does not depend on which
        # matplotlib backend the kernel happens to run (Agg would show "<Figure ...>" text).
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        png = buffer.getvalue()
        if self._figures_dir is not None:
            with atomic_open(self._figures_dir / f"{name}.png", "wb") as f:
                f.write(png)
        self.figures[name] = caption
        self._glue(name, Image(data=png, format="png"), display=True)
        # for a reader running the notebook by hand; the book's page numbers the figure and
        # takes its caption from the figure cell instead (repsim_utils.book.page)
        display(Markdown(f"**Figure ({name}).** {caption}"), metadata={CAPTION_MARK: name})
        plt.close(fig)
        self._flush()

    def _claim(self, key: str, kind: str) -> None:
        """One glue key, one output: the book build refuses duplicates. Under the driver any
        reuse is an error; by hand, re-running a cell may publish the same key again."""
        old = self._kinds.get(key)
        if old is not None and (old != kind or self._results_path is not None):
            raise ValueError(f"key {key!r} is already published in this run (as a {old}); "
                             f"every number, table and figure needs its own key")
        self._kinds[key] = kind

    def _glue(self, key: str, value: Any, *, display: bool) -> None:
        try:
            from myst_nb import glue
        except ImportError:  # outside the book toolchain: results still recorded
            if display:
                from IPython.display import display as show
                show(value)
            return
        glue(key, value, display=display)

    def _flush(self) -> None:
        if self._results_path is None:
            return
        part = KernelResults(
            self.chapter, self.params, self.results, self.figures,
            [v.as_dict() for v in self.verdicts], self.null_reasons,
            # the package's modules this kernel imported, as imported: the execution cache
            # reruns the page when one of them changes (repsim_utils.base.integrity)
            imported_code())
        # shallow: asdict would deep-copy every table on every flush (one per recorded number)
        fields = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
        write_json(self._results_path, {**fields, **self.provenance})
