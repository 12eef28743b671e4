"""The synthesis page's pipeline: read every chapter run's JSON results (never another page's
glue keys), gather the verdicts and the training effects of every lens, and answer the study's
question in computed sentences.

The question: do networks trained from different seeds learn the same representation? Each
lens answers it with one study verdict per run, "trained networks are more alike than a trained
and an untrained one" (:data:`LENS_VERDICTS`); the standard measures add one such verdict per
measure. A run that is missing (not run, or failed) is named, never fatal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from . import integrity, paths
from .paths import OUT_ENV

#: lens -> (chapter, verdict id) of the study's own cross-seed verdict in that chapter
LENS_VERDICTS = {
    "units (convergent learning)": ("convergent_learning", "trained_match_more"),
    "subspaces (subspace match)": ("subspace_match", "trained_match_more"),
    "input-output maps (effective weights)": ("effective_weights", "seeds_converge"),
    "input geometry (pullback metric)": ("geometry", "seeds_agree"),
}


def results_dir() -> Path:
    """Where the driver published the runs (``REPSIM_OUT``, set by the driver; else book/)."""
    return Path(os.environ.get(OUT_ENV) or paths.book_dir())


def load(expected: list[str], folder: Path | None = None) -> tuple[dict[str, Any], list[str]]:
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
        if problem is not None:
            missing.append(f"{name} (refused: {problem.replace(str(folder) + '/', '')})")
        else:
            found[name] = record
    return found, missing


def verdict_frame(records: dict[str, Any]) -> pd.DataFrame:
    """Every verdict of every run: chapter, run, id, paper, claim, outcome, value, interval."""
    rows = [{"chapter": r["chapter"], "run": r["run"], "id": v["id"], "paper": v["paper"],
             "claim": v["claim"], "outcome": v["outcome"], "value": v["value"],
             "low": v["ci"][0], "high": v["ci"][1]}
            for r in records.values() for v in r.get("verdicts", [])]
    return pd.DataFrame(rows, columns=["chapter", "run", "id", "paper", "claim", "outcome",
                                       "value", "low", "high"])


def _effects(records: dict[str, Any], chapter: str, key: str, statistic: str, lens: str,
             flip: bool = False, where: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for r in records.values():
        if r["chapter"] != chapter:
            continue
        for row in r["results"].get(key, []):
            if row.get("statistic") != statistic or any(row.get(k) != v
                                                        for k, v in (where or {}).items()):
                continue
            e, lo, hi = row["effect"], row["effect_low"], row["effect_high"]
            if flip:  # a distance: more alike is lower, so the sign is turned round
                e, lo, hi = -e, -hi, -lo
            rows.append({"lens": lens, "run": r["run"], "layer": row["layer"], "effect": e,
                         "low": lo, "high": hi})
    return rows


def effect_frame(records: dict[str, Any]) -> pd.DataFrame:
    """The training effect (trained vs trained minus trained vs untrained, positive = trained
    networks more alike) of every lens and standard measure, by run and layer, with its 95%
    interval over networks, from the chapters' published summary tables."""
    rows = _effects(records, "convergent_learning", "cl_summary", "semi",
                    "units: semi-matched correlation")
    rows += _effects(records, "subspace_match", "sm_thresholds", "eps50",
                     "subspaces: eps50 (sign turned)", flip=True, where={"variant": "raw"})
    rows += _effects(records, "effective_weights", "ew_cross_seed_summary", "similarity",
                     "effective weights: W_eff(x) cosine")
    rows += _effects(records, "geometry", "geo_cross_seed", "log_volume_corr",
                     "geometry: log volume correlation")
    for r in records.values():
        if r["chapter"] == "standard_measures":
            for m in sorted({row["statistic"] for row in r["results"].get("stdm_summary", [])}):
                rows += _effects({"x": r}, "standard_measures", "stdm_summary", m,
                                 f"standard: {m}")
    return pd.DataFrame(rows, columns=["lens", "run", "layer", "effect", "low", "high"])


def _count(outcomes: list[str]) -> str:
    parts = [f"{outcomes.count(o)} {o}" for o in ("agrees", "disagrees", "inconclusive")
             if outcomes.count(o)]
    return ", ".join(parts) if parts else "no verdict"


def answer(verdicts: pd.DataFrame) -> list[str]:
    """One computed sentence per lens (its study verdict over runs), one for the standard
    measures, and one over the papers' claims."""
    lines = []
    for lens, (chapter, vid) in LENS_VERDICTS.items():
        sel = verdicts[(verdicts.chapter == chapter) & (verdicts.id == vid)]
        if sel.empty:
            lines.append(f"**{lens}**: no result (the chapter has not been run).")
            continue
        per_run = "; ".join(f"{r.run}: {r.outcome}, effect {r.value:.3g} "
                            f"[{r.low:.3g}, {r.high:.3g}]" for r in sel.itertuples())
        lines.append(f"**{lens}**: trained networks are more alike than a trained and an "
                     f"untrained one in {(sel.outcome == 'agrees').sum()} of {len(sel)} runs "
                     f"({per_run}).")
    std = verdicts[(verdicts.chapter == "standard_measures")
                   & verdicts.id.str.endswith("_trained_more_alike")]
    ident = verdicts[(verdicts.chapter == "standard_measures")
                     & verdicts.id.str.endswith("_identifies_layers")]
    if not std.empty:
        lines.append(f"**standard measures**: trained networks more alike than trained vs "
                     f"untrained in {(std.outcome == 'agrees').sum()} of {len(std)} "
                     f"(measure, run) verdicts ({_count(list(std.outcome))}); corresponding "
                     f"layers identified above chance in {(ident.outcome == 'agrees').sum()} "
                     f"of {len(ident)} ({_count(list(ident.outcome))}).")
    papers = verdicts[verdicts.paper != "study"]
    if not papers.empty:
        lines.append(f"**the papers' claims**, over all runs: {_count(list(papers.outcome))} "
                     f"of {len(papers)} verdicts.")
    return lines


__all__ = ["LENS_VERDICTS", "OUT_ENV", "answer", "effect_frame", "load", "results_dir",
           "verdict_frame"]
