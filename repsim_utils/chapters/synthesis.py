"""The synthesis page's pipeline: read every chapter run's JSON results (never another page's
glue keys), gather the verdicts and the training effects of every lens, and answer the study's
question in computed sentences.

The question: do networks trained from different seeds learn the same representation? Each
lens answers it with one study verdict per run, "trained networks are more alike than two
untrained ones" (tt - uu, :func:`lens_verdicts`), shown beside the effect against trained vs
untrained (tt - tu); the standard measures add one such verdict per measure. Verdicts are
counted by kind (paper claim, study question, precondition, sanity check): a sanity check is
true by construction and is never counted as agreement. A run that is missing (not run, or
failed) is named, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from repsim_utils.base import integrity, paths
from repsim_utils.base.paths import OUT_ENV
from repsim_utils.book.record import RecordError, RunRecord
from repsim_utils.chapters.registry import lenses
from repsim_utils.inference.verdicts import OUTCOMES

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def lens_verdicts() -> dict[str, tuple[str, str]]:
    """lens -> (chapter, verdict id) of the study's own cross-seed verdict in that chapter, from
    the chapters' registry (:data:`repsim_utils.chapters.registry.CHAPTERS`)."""
    return {c.lens.name: (c.name, c.lens.verdict) for c in lenses() if not c.lens.per_measure}


def results_dir() -> Path:
    """Where the driver published the runs (``REPSIM_OUT``, set by the driver; else book/)."""
    return Path(os.environ.get(OUT_ENV) or paths.book_dir())


def load(expected: list[str], folder: Path | None = None
         ) -> tuple[dict[str, RunRecord], list[str]]:
    """({run name: its JSON record}, [expected runs without usable results]). A record whose
    files do not match the digests sealed into it at publishing (edited by hand, truncated,
    its page or figures replaced) is refused, and listed with the reason."""
    folder = folder or results_dir()
    found, missing = {}, []
    for name in expected:
        path = folder / "executed" / f"{name}.json"
        if not path.is_file():
            missing.append(name)
            continue
        chapter, _, run = name.partition("__")
        record, problem = integrity.check_record(path, folder / "executed" / f"{name}.ipynb",
                                                 folder / "figures" / chapter / run)
        if problem is None:
            try:
                found[name] = RunRecord.from_json(record, f"executed/{name}.json")
                continue
            except RecordError as err:
                problem = str(err)
        missing.append(f"{name} (refused: {problem.replace(str(folder) + '/', '')})")
    return found, missing


COLUMNS = ["chapter", "run", "id", "kind", "paper", "claim", "outcome", "value", "low", "high",
           "uu", "null"]


def verdict_frame(records: Mapping[str, RunRecord]) -> pd.DataFrame:
    """Every verdict of every run: chapter, run, id, kind, paper, claim, outcome, value,
    interval, and the values of its uu reference and null (None where it has none)."""
    rows = [{"chapter": r.chapter, "run": r.run, "id": v["id"], "kind": v["kind"],
             "paper": v["paper"], "claim": v["claim"], "outcome": v["outcome"],
             "value": v["value"], "low": v["ci"][0], "high": v["ci"][1],
             "uu": (v.get("uu") or {}).get("value"), "null": (v.get("null") or {}).get("value")}
            for r in records.values() for v in r.verdicts]
    return pd.DataFrame(rows, columns=COLUMNS)


def _effects(records: Mapping[str, RunRecord], chapter: str, key: str, statistic: str,
             lens: str, flip: bool = False, where: Mapping[str, Any] | None = None
             ) -> list[dict[str, Any]]:
    rows = []
    for r in records.values():
        if r.chapter != chapter:
            continue
        for row in r.results.get(key, []):
            if row.get("statistic") != statistic or any(row.get(k) != v
                                                        for k, v in (where or {}).items()):
                continue
            for col, reference in (("effect_uu", UU), ("effect", TU)):
                e, lo, hi = row[col], row[f"{col}_low"], row[f"{col}_high"]
                if flip:  # a distance: more alike is lower, so the sign is turned round
                    e, lo, hi = -e, -hi, -lo
                rows.append({"lens": lens, "run": r.run, "layer": row["layer"],
                             "reference": reference, "effect": e, "low": lo, "high": hi})
    return rows


#: The two training effects of every lens, as the page names them.
UU = "trained pairs minus untrained pairs (tt - uu)"
TU = "trained pairs minus trained vs untrained (tt - tu)"


def effect_frame(records: Mapping[str, RunRecord]) -> pd.DataFrame:
    """The training effects (positive = trained networks more alike) of every lens and
    standard measure, by run and layer, against both references (:data:`UU`, :data:`TU`),
    each with its 95% interval over networks, from the chapters' published summary tables
    (which table and statistic: each chapter's :class:`~repsim_utils.chapters.registry.Lens`)."""
    from repsim_utils.science.measures import MEASURES

    rows = []
    for chapter in lenses():
        lens = chapter.lens
        if not lens.per_measure:
            rows += _effects(records, chapter.name, lens.table, lens.statistic, lens.label,
                             flip=lens.flip, where=lens.where)
            continue
        for r in records.values():
            if r.chapter == chapter.name:
                for m in sorted({row["statistic"] for row in r.results.get(lens.table, [])}):
                    flip = m in MEASURES and MEASURES[m].kind == "distance"
                    rows += _effects({"x": r}, chapter.name, lens.table, m, f"standard: {m}",
                                     flip=flip)
    return pd.DataFrame(rows, columns=["lens", "run", "layer", "reference", "effect", "low",
                                       "high"])


def _count(outcomes: list[str]) -> str:
    parts = [f"{outcomes.count(o)} {o}" for o in OUTCOMES if outcomes.count(o)]
    return ", ".join(parts) if parts else "no verdict"


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.3g} [{low:.3g}, {high:.3g}]"


def answer(verdicts: pd.DataFrame) -> list[str]:
    """One computed sentence per lens (its study verdict over runs: trained pairs against
    untrained pairs), one for the standard measures, and one per kind of claim."""
    from repsim_utils.inference.verdicts import KINDS

    lines = []
    for lens, (chapter, vid) in lens_verdicts().items():
        sel = verdicts[(verdicts.chapter == chapter) & (verdicts.id == vid)]
        if sel.empty:
            lines.append(f"**{lens}**: no result (the chapter has not been run).")
            continue
        per_run = "; ".join(f"{r.run}: {r.outcome}, tt - uu {_interval(r.value, r.low, r.high)}"
                            for r in sel.itertuples())
        lines.append(f"**{lens}**: trained networks are more alike than two untrained ones in "
                     f"{(sel.outcome == 'agrees').sum()} of {len(sel)} runs and less alike in "
                     f"{(sel.outcome == 'disagrees').sum()} ({per_run}).")
    per_measure = [c for c in lenses() if c.lens.per_measure]
    for chapter in per_measure:
        std = verdicts[(verdicts.chapter == chapter.name)
                       & verdicts.id.str.endswith(chapter.lens.verdict)]
        ident = verdicts[(verdicts.chapter == chapter.name)
                         & verdicts.id.str.endswith("_identifies_layers")]
        if std.empty:
            continue
        lines.append(f"**{chapter.lens.name}**: trained networks more alike than two untrained "
                     f"ones in {(std.outcome == 'agrees').sum()} of {len(std)} (measure, run) "
                     f"verdicts ({_count(list(std.outcome))}); layer-identification verdicts "
                     f"(identifies, or fails as Kornblith et al. 2019 found for the CCA family, "
                     f"each against the larger of the shuffled null and untrained pairs): "
                     f"{_count(list(ident[ident.kind != 'sanity'].outcome))} of "
                     f"{int((ident.kind != 'sanity').sum())}; not testable, because every "
                     f"pair of untrained networks already identifies every layer, and not "
                     f"counted: {int((ident.outcome == 'not testable').sum())}.")
    for kind, name in KINDS.items():
        sel = verdicts[verdicts.kind == kind]
        if sel.empty:
            continue
        if kind == "sanity":
            lines.append(f"**{name}s** (true by construction, or not testable because the "
                         f"reference cannot fail; not counted as agreement): {len(sel)} "
                         f"verdicts ({_count(list(sel.outcome))}).")
        else:
            lines.append(f"**{name}s**, over all runs: {_count(list(sel.outcome))} of "
                         f"{len(sel)} verdicts.")
    return lines


def overall(outcomes: Sequence[str]) -> str:
    """The one-word answer from the lenses' cross-seed verdicts, by a rule fixed here: "Yes"
    where every verdict agrees (trained pairs more alike than untrained pairs), "No" where none
    does, otherwise "Partly"; "No answer yet" without verdicts."""
    outcomes = list(outcomes)
    if not outcomes:
        return "No answer yet"
    agree = outcomes.count("agrees")
    return "Yes" if agree == len(outcomes) else "No" if agree == 0 else "Partly"


def run_titles(records: Mapping[str, RunRecord]) -> dict[str, str]:
    """run -> the words of its title after the chapter's ("MLP on 8x8 digits")."""
    return {r.run: r.title.partition(": ")[2] or r.run for r in records.values()}


def short_answer(verdicts: pd.DataFrame, ladder: pd.DataFrame,
                 titles: Mapping[str, str] | None = None) -> list[str]:
    """The answer in a few plain sentences, for the first screen of the book: the word of
    :func:`overall` over every lens's cross-seed verdict, how many (lens, run) verdicts agree,
    the transformation up to which each run's layers are the same (the invariance ladder,
    :func:`ladder_frame`; ``titles``: run -> its words), and how many measures are grounded in
    function. Every number is counted from the verdicts."""
    outcomes = [o for chapter, vid in lens_verdicts().values()
                for o in verdicts[(verdicts.chapter == chapter) & (verdicts.id == vid)].outcome]
    lines = [f"**{overall(outcomes)}.** Networks trained from different seeds are more alike "
             f"than two untrained networks in {outcomes.count('agrees')} of {len(outcomes)} "
             f"comparisons (lens by run), less alike in {outcomes.count('disagrees')}, and "
             f"undecided in {outcomes.count('inconclusive')}."]
    titles = titles or {}
    parts = []
    for run, d in ladder.groupby("run", sort=False):
        groups = [g if isinstance(g, str) else None for g in d.group]
        name = titles.get(run, run)
        if all(g is None for g in groups):
            parts.append(f"{name}: no layer reaches any rung")
        elif len(set(groups)) == 1:
            parts.append(f"{name}: every layer up to {groups[0]}")
        else:
            parts.append(f"{name}: " + ", ".join(
                f"{la} up to {g}" if g else f"{la} at no rung" for la, g in zip(
                    d.layer, groups, strict=True)))
    if parts:
        lines.append("The same up to which transformation (the lowest rung of the invariance "
                     "ladder reached by trained pairs): " + "; ".join(parts) + ".")
    grounded = verdicts[verdicts.id.str.endswith("_grounded")]
    if not grounded.empty:
        lines.append(f"Grounded in function: {(grounded.outcome == 'agrees').sum()} of "
                     f"{len(grounded)} (measure, run) verdicts find that the pairs a measure "
                     f"calls alike also disagree less in their predictions.")
    lines.append("Each verdict comes from a 95% interval over networks, by a rule fixed in the "
                 "code before the runs.")
    return lines


def ladder_frame(records: Mapping[str, RunRecord], key: str = "stdm_ladder_lowest"
                 ) -> pd.DataFrame:
    """Per run and layer of the standard-measures chapter: the lowest rung of the invariance
    ladder at which trained networks agree (:func:`repsim_utils.chapters.ladder.lowest_rungs`;
    None where no rung is reached), its share of the way from untrained pairs to identical and
    the largest share on the ladder."""
    rows = [{"run": r.run, "layer": row["layer"], "rung": row.get("rung"),
             "group": row.get("group"), "share": row.get("share"),
             "share_low": row.get("share_low"), "share_high": row.get("share_high"),
             "best_rung": row.get("best_rung"), "best_share": row.get("best_share")}
            for r in records.values() for row in r.results.get(key, [])]
    return pd.DataFrame(rows, columns=["run", "layer", "rung", "group", "share", "share_low",
                                       "share_high", "best_rung", "best_share"])


def ladder_lines(ladder: pd.DataFrame) -> list[str]:
    """One computed sentence per run: the rung each layer reaches (the rule of
    :mod:`repsim_utils.chapters.ladder`)."""
    lines = []
    for run, d in ladder.groupby("run", sort=False):
        parts = [f"{r.layer} up to {r.group} "
                 f"(share {_interval(r.share, r.share_low, r.share_high)})"
                 if isinstance(r.rung, str) else f"{r.layer} at no rung" for r in d.itertuples()]
        lines.append(f"**The same up to what** ({run}, invariance ladder): " + "; ".join(parts)
                     + ".")
    return lines


#: the grounding claims' id suffixes (:mod:`repsim_utils.chapters.grounding`) and what each tests
GROUNDING = {
    "_grounded": "**Grounded in function** (rho of each measure with the disagreement of pairs "
                 "of trained networks below 0, last hidden layer, over runs)",
    "_pc_deletion": "**Principal-component deletion** (rho of each measure's loss with a linear "
                    "probe's, beyond that of the number of components deleted, above 0, last "
                    "hidden layer, over runs)",
}


def grounding_line(verdicts: pd.DataFrame, suffix: str = "_grounded") -> str | None:
    """One computed sentence: per measure, its verdicts of one grounding claim (``suffix``, a
    key of :data:`GROUNDING`) over the standard-measures runs; None where no run has them."""
    if suffix not in GROUNDING:
        raise ValueError(f"suffix must be one of {list(GROUNDING)}, got {suffix!r}")
    sel = verdicts[verdicts.id.str.endswith(suffix)]
    if sel.empty:
        return None
    parts = [f"{vid[:-len(suffix)]}: {_count(list(d.outcome))}"
             for vid, d in sel.groupby("id", sort=False)]
    return f"{GROUNDING[suffix]}: " + "; ".join(parts) + "."


def expected_runs(profile: str) -> list[str]:
    """Every run of the run table's ``profile`` except the synthesis itself."""
    from repsim_utils.chapters.runtable import default_table, run_names

    return [name for name in run_names(default_table(), profile)
            if not name.startswith("synthesis__")]


def missing_sentence(missing: list[str], found: int) -> str:
    """The runs without usable results, named; or, when none is missing, that all ``found``
    expected runs have results (an empty Markdown output would show its Python repr)."""
    if not missing:
        return f"All {found} expected runs have published results; none is missing."
    return ("**Missing runs** (not run, failed, or refused because their files do not match "
            "what was published; their verdicts are absent below): "
            + ", ".join(f"`{m}`" for m in missing) + ".")


def effects_figure(effects: pd.DataFrame) -> Figure:
    """The training effects of every lens and measure by run and layer, one panel per lens:
    against untrained pairs (tt - uu, filled) and against trained vs untrained (tt - tu,
    open)."""
    import matplotlib.pyplot as plt
    import numpy as np

    lens_names = list(dict.fromkeys(effects["lens"]))
    ncols = 4
    nrows = max(1, int(np.ceil(len(lens_names) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.9 * nrows), squeeze=False)
    for ax, lens in zip(axes.flat, lens_names, strict=False):
        d = effects[effects.lens == lens]
        places = list(dict.fromkeys(zip(d.run, d.layer, strict=True)))
        for k, (reference, style) in enumerate(((UU, {"fmt": "o"}),
                                                (TU, {"fmt": "o", "mfc": "white"}))):
            e = d[d.reference == reference]
            x = np.array([places.index(p) for p in zip(e.run, e.layer, strict=True)]) + 0.2 * k
            y = e["effect"].to_numpy()
            err = np.stack([y - e["low"].to_numpy(), e["high"].to_numpy() - y])
            ax.errorbar(x, y, yerr=err, capsize=2, ms=3, color=f"C{k}",
                        label="tt - uu" if reference == UU else "tt - tu", **style)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xticks(np.arange(len(places)), [f"{r}\n{la}" for r, la in places], rotation=90,
                      fontsize=6)
        ax.set_title(lens, fontsize=9)
    if lens_names:
        axes.flat[0].legend(fontsize=7)
    for ax in axes.flat[len(lens_names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def claims_grid(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Every claim (rows, by chapter and kind) against every run (columns): "outcome
    (value)"."""
    claims = verdicts.assign(cell=[f"{o} ({v:.3g})" for o, v in zip(
        verdicts.outcome, verdicts.value, strict=True)])
    grid = claims.pivot_table(index=["chapter", "kind", "claim"], columns="run", values="cell",
                              aggfunc="first", sort=False).fillna("").reset_index()
    grid.columns.name = None
    return grid


__all__ = ["COLUMNS", "GROUNDING", "OUT_ENV", "TU", "UU", "answer", "claims_grid", "effect_frame",
           "effects_figure", "expected_runs", "grounding_line", "ladder_frame", "ladder_lines",
           "lens_verdicts", "load", "missing_sentence", "overall", "results_dir", "run_titles",
           "short_answer", "verdict_frame"]
