"""Claims of the papers and the study's computed verdicts on them.

A :class:`Claim` is declared in the chapter's pipeline module, with its :class:`Rule`, before any
number exists; :meth:`Claim.judge` turns an :class:`~repsim_utils.inference.stats.Estimate` into a
:class:`Verdict` whose outcome follows from the interval alone:

- ``above t``: *agrees* when the whole interval lies above t, *disagrees* when it lies at or
  below t, *inconclusive* when it straddles t;
- ``below t``: the mirror image;
- ``differs from t by more than m``: *agrees* when the interval excludes t, *disagrees* when it
  lies inside [t - m, t + m] (the difference is too small to matter), *inconclusive* otherwise.

Verdicts are stored in the run's JSON results under ``verdicts`` (see ``verdicts.md`` of the
study) and shown in the chapter as a table and as generated sentences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from repsim_utils.inference import stats
from repsim_utils.inference.stats import Estimate

OUTCOMES = ("agrees", "disagrees", "inconclusive")


@dataclass(frozen=True)
class Rule:
    """How an interval decides a claim (see the module docstring)."""

    kind: Literal["above", "below", "differs"]
    threshold: float = 0.0
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("above", "below", "differs"):
            raise ValueError(f"rule kind must be above, below or differs, got {self.kind!r}")
        if self.margin < 0 or (self.kind == "differs") != (self.margin > 0):
            raise ValueError("a margin > 0 belongs to 'differs' rules, and only to them")

    def outcome(self, low: float, high: float) -> str:
        t = self.threshold
        if self.kind == "above":
            return "agrees" if low > t else "disagrees" if high <= t else "inconclusive"
        if self.kind == "below":
            return "agrees" if high < t else "disagrees" if low >= t else "inconclusive"
        if low > t or high < t:
            return "agrees"
        inside = t - self.margin <= low and high <= t + self.margin
        return "disagrees" if inside else "inconclusive"

    def describe(self) -> str:
        if self.kind == "above":
            return f"agrees if the 95% CI lies above {self.threshold:g}"
        if self.kind == "below":
            return f"agrees if the 95% CI lies below {self.threshold:g}"
        return (f"agrees if the 95% CI excludes {self.threshold:g}; disagrees if it lies within "
                f"{self.threshold:g} ± {self.margin:.3g}")


@dataclass(frozen=True)
class Reference:
    """A reference value beside a verdict: the untrained baseline or a null."""

    name: str
    value: float
    ci: tuple[float, float] | None = None

    @classmethod
    def of(cls, name: str, estimate: Estimate | float) -> Reference:
        if isinstance(estimate, Estimate):
            return cls(name, estimate.value, estimate.ci)
        return cls(name, float(estimate))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": self.value}
        if self.ci is not None:
            out["ci"] = list(self.ci)
        return out

    def text(self) -> str:
        ci = f" [{self.ci[0]:.3g}, {self.ci[1]:.3g}]" if self.ci else ""
        return f"{self.name}: {self.value:.3g}{ci}"


@dataclass(frozen=True)
class Claim:
    """A paper's claim as the study tests it: the statistic and the rule, fixed in advance."""

    id: str
    paper: str
    claim: str
    statistic: str
    rule: Rule

    def judge(self, estimate: Estimate, baseline: Reference | None = None,
              null: Reference | None = None, note: str = "") -> Verdict:
        return Verdict(self, estimate, baseline, null, note)


@dataclass(frozen=True)
class Verdict:
    """A claim, the estimate of its statistic, the references beside it, and the outcome."""

    claim: Claim
    estimate: Estimate
    baseline: Reference | None = None
    null: Reference | None = None
    note: str = ""
    outcome: str = field(init=False)

    def __post_init__(self) -> None:
        for ref in (self.baseline, self.null):
            if ref is not None and not math.isfinite(ref.value):
                raise ValueError(f"{self.claim.id}: reference {ref.name!r} is not finite")
        object.__setattr__(self, "outcome",
                           self.claim.rule.outcome(self.estimate.low, self.estimate.high))

    def as_dict(self) -> dict[str, Any]:
        c = self.claim
        return {"id": c.id, "paper": c.paper, "claim": c.claim, "statistic": c.statistic,
                "value": self.estimate.value, "ci": list(self.estimate.ci),
                "baseline": self.baseline.as_dict() if self.baseline else None,
                "null": self.null.as_dict() if self.null else None,
                "outcome": self.outcome, "rule": c.rule.describe(), "note": self.note}

    def sentence(self) -> str:
        """One generated sentence: the claim, the outcome, the number and its references."""
        e = self.estimate
        refs = "; ".join(r.text() for r in (self.baseline, self.null) if r is not None)
        text = (f"*{self.claim.claim}* — **{self.outcome}**: {self.claim.statistic} = "
                f"{e.value:.3g} (95% CI {e.low:.3g} to {e.high:.3g}; rule: "
                f"{self.claim.rule.describe()}).")
        if refs:
            text += f" Beside it, {refs}."
        if self.note:
            text += f" {self.note}"
        return text


def trained_vs_untrained(claim: Claim, tt: np.ndarray, tu: np.ndarray, n: int, *,
                         reduce: Callable[[np.ndarray], np.ndarray] = stats.weakest,
                         sign: float = 1.0,
                         reference: str = "trained vs untrained (weakest layer)",
                         reference_reduce: Callable[[np.ndarray], np.ndarray] | None = None,
                         note: str = "", **kwargs: Any) -> Verdict:
    """Every lens's headline verdict, "trained networks are more alike than a trained and an
    untrained one": ``claim`` judged on the training effect sign * (mean tt - mean tu), reduced
    over layers by ``reduce`` (the weakest layer) inside every resample of networks, beside the
    trained-vs-untrained values as the reference (reduced by ``reference_reduce``, default
    ``reduce``). ``tt`` (layers, n, n), ``tu`` (layers, n) from
    :func:`repsim_utils.inference.pairs.layer_arrays`; ``sign=-1`` for a distance."""
    effect = stats.effect_over_networks(tt, tu, n, reduce, sign=sign, **kwargs)
    baseline = stats.over_networks(tu, n, False, reference_reduce or reduce, **kwargs)
    return claim.judge(effect, Reference.of(reference, baseline), note=note)


__all__ = ["trained_vs_untrained", "OUTCOMES", "Claim", "Reference", "Rule", "Verdict"]
