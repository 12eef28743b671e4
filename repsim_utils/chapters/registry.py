"""Every chapter of the book, once: its parameter schema, the module of its pipeline (claims and
verdicts), and what the synthesis reads from its runs (its lens: the headline verdict and the
training effect of its summary table).

The driver (parameter checks, titles, ``list``), the synthesis and the tests read this registry,
so a new chapter is its pipeline module, its notebook, its run-table entry, its TOC line and
landing page, and one :class:`Chapter` here. Light on purpose: no torch, numpy or pandas (the
pipeline module is imported only when its claims are asked for).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from repsim_utils.chapters import schema as s
from repsim_utils.nets.shapes import CLASSIFIERS, GATE_TASKS


@dataclass(frozen=True)
class Lens:
    """What a chapter answers of the study's question, as the synthesis reads it.

    ``verdict``: the id of the headline verdict ("trained networks are more alike than two
    untrained ones", :func:`repsim_utils.inference.verdicts.training_verdict`); ``table``,
    ``statistic`` (and ``where``, further column values a row must have): the summary-table
    rows whose ``effect_uu`` and ``effect`` columns are the lens's training effects by layer;
    ``flip``: the statistic is a distance (lower is more alike), so the effect's sign is
    turned round. ``per_measure``: the table holds one statistic per measure
    (the standard measures), each its own line of effects and its own headline verdict
    ``{measure key}_trained_more_alike``."""

    name: str
    verdict: str
    table: str
    statistic: str = ""
    label: str = ""
    flip: bool = False
    where: dict[str, Any] = field(default_factory=dict)
    per_measure: bool = False


@dataclass(frozen=True)
class Chapter:
    """One chapter: the run table's key, its label, its schema, its pipeline and its lens."""

    name: str
    label: str
    schema: s.Schema
    #: the chapter's pipeline module (``CLAIMS``, ``verdicts``); None: it tests no claim itself
    module: str | None = None
    lens: Lens | None = None
    #: the driver's test fixture, not a chapter of the book
    fixture: bool = False

    def pipeline(self) -> ModuleType | None:
        """The chapter's pipeline module, imported on first use."""
        return importlib.import_module(self.module) if self.module else None

    @property
    def claims(self) -> dict[str, Any]:
        """The claims the chapter tests, by id (empty for a chapter that tests none)."""
        module = self.pipeline()
        return dict(getattr(module, "CLAIMS", {})) if module is not None else {}


_DEVICE = s.Rule("device available", s.device_available)
_DATA = s.Rule("sample counts within the data, conv depth within the input", s.fits_the_data)
_ACTIVATIONS = {"split": s.OneOf(s.SPLITS), "n_samples": s.MAX_COUNT,
                "positions": s.MAX_POSITIONS}
_PACKAGE = "repsim_utils.chapters"

_ALL = (
    Chapter(
        "convergent_learning", "Convergent learning",
        s.Schema(s.classifier_fields(CLASSIFIERS) | _ACTIVATIONS | {
            "mi_bins": s.Range(2, 256), "lasso_alphas": s.Items(s.Range(0, open_low=True)),
            "few": s.Range(0, open_low=True), "sparse_targets": s.Range(0, 4096),
            "n_clusters": s.Range(2, 4096)},
            [_DEVICE, _DATA], s.classifier_title("Convergent learning"), "Convergent learning"),
        f"{_PACKAGE}.convergent_learning",
        Lens("units (convergent learning)", "trained_match_more", "cl_summary", "semi",
             "units: semi-matched correlation")),
    Chapter(
        "subspace_match", "Subspace match",
        s.Schema(s.classifier_fields(CLASSIFIERS) | _ACTIVATIONS | {
            "n_coords": s.Range(1, 10_000_000, why="each draw holds n_coords rows per layer"),
            "n_draws": s.Range(1, 256),
            "eps_grid": s.Items(s.Range(0, 1, open_high=True)),
            "curve_points": s.Range(2, 500, why="each point is a maximum match per pair"),
            "simple_units": s.Range(0, 4096), "simple_orders": s.Range(1, 64)},
            [_DEVICE, _DATA], s.classifier_title("Subspace match"), "Subspace match"),
        f"{_PACKAGE}.subspace_match",
        Lens("subspaces (subspace match)", "trained_match_more", "sm_thresholds", "eps50",
             "subspaces: eps50 (sign turned)", flip=True, where={"variant": "raw"})),
    Chapter(
        "effective_weights", "Effective weights",
        # MNIST-1D classes are shifted 1-D templates: W_eff(x) is not class-consistent
        s.Schema(s.classifier_fields(tuple(d for d in CLASSIFIERS if d != "mnist1d")) | {
            "biases": s.Items(min_len=1, distinct=True),
            "checkpoints": s.Items(s.Range(1), min_len=0, distinct=True),
            "per_class": s.Range(2, 1000, why="the test splits hold about 1,000 per class"),
            "knn_k": s.Range(1, 1000), "n_trajectories": s.Range(0, 10_000)},
            [_DEVICE, _DATA, s.Rule("checkpoints <= epochs", s.checkpoints_within_epochs)],
            s.classifier_title("Effective weights"), "Effective weights"),
        f"{_PACKAGE}.effective_weights",
        Lens("input-output maps (effective weights)", "trained_more_alike",
             "ew_cross_seed_summary",
             "similarity", "effective weights: W_eff(x) cosine")),
    Chapter(
        "geometry", "Geometry",
        s.Schema(
            {"task": s.OneOf(GATE_TASKS), "width": s.MAX_WIDTH, "depth": s.MAX_DEPTH,
             "epochs": s.Range(1, 100_000, why="the paper trains for 3,000"),
             "lr": s.MAX_LR,
             "rich_init_scale": s.Range(0, open_low=True),
             "lazy_alpha": s.Range(0, open_low=True),
             "noise": s.Range(0), "seeds": s.MAX_SEEDS,
             "grid_points": s.Range(3, 401, why="the metric is computed at grid_points^2 points"),
             "band": s.Range(0, 1, open_low=True, open_high=True),
             "n_heldout": s.Range(1, s.MAX_SAMPLES)},
            [s.Rule("map_seed in seeds", s.map_seed_in_seeds)], s.geometry_title, "Geometry"),
        f"{_PACKAGE}.geometry",
        Lens("input geometry (pullback metric)", "seeds_agree", "geo_cross_seed",
             "log_volume_corr", "geometry: log volume correlation")),
    Chapter(
        "standard_measures", "Standard measures",
        s.Schema(s.classifier_fields(CLASSIFIERS) | _ACTIVATIONS | {
            "max_samples": s.Range(10, 200_000, why="RSA holds a samples x samples matrix"),
            "n_fit": s.MAX_COUNT},
            [_DEVICE, _DATA], s.classifier_title("Standard measures"), "Standard measures"),
        f"{_PACKAGE}.standard_measures",
        Lens("standard measures", "_trained_more_alike", "stdm_summary", per_measure=True)),
    Chapter(
        "stitching", "Model stitching",
        s.Schema(s.classifier_fields(CLASSIFIERS) | {
            "n_fit": s.MAX_COUNT,
            "max_rows": s.Range(10, 10_000_000, why="a conv fit holds max_rows x channels"),
            "stitch_epochs": s.Range(0, 1000), "stitch_lr": s.Range(0, 1, open_low=True)},
            [_DEVICE, _DATA], s.classifier_title("Model stitching"), "Model stitching"),
        f"{_PACKAGE}.stitching"),
    Chapter("synthesis", "Synthesis",
            s.Schema({"profile": s.OneOf(("smoke", "default", "paper"))}),
            f"{_PACKAGE}.synthesis"),
    # the driver's test fixture (tests/fixtures/tiny.ipynb)
    Chapter("tiny", "Driver test fixture", s.Schema({"n": s.Range(0, 1000)},
                                                     label="Driver test fixture"),
            fixture=True),
)

#: chapter name -> :class:`Chapter`
CHAPTERS: dict[str, Chapter] = {c.name: c for c in _ALL}


def lenses() -> list[Chapter]:
    """The chapters with a lens, in the book's order."""
    return [c for c in CHAPTERS.values() if c.lens is not None]


__all__ = ["CHAPTERS", "Chapter", "Lens", "lenses"]
