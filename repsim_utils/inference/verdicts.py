"""Claims of the papers and the study's computed verdicts on them.

A :class:`Claim` is declared in the chapter's pipeline module, with its :class:`Rule`, before any
number exists; :meth:`Claim.judge` turns an :class:`~repsim_utils.inference.stats.Estimate` into a
:class:`Verdict` whose outcome follows from the interval alone:

- ``above t``: *agrees* when the whole interval lies above t, *disagrees* when it lies at or
  below t, *inconclusive* when it straddles t;
- ``below t``: the mirror image;
- ``differs from t by more than m``: *agrees* when the interval excludes t, *disagrees* when it
  lies inside [t - m, t + m] (the difference is too small to matter), *inconclusive* otherwise.

Every claim has a *kind* (:data:`KINDS`), shown on the page and counted apart by the synthesis:
a **paper claim** (what a paper says), a **study question** (the study's own, e.g. "trained
networks are more alike than untrained ones"), a **precondition** (what other verdicts need,
e.g. the lazy network is lazy) or a **sanity check** (true by construction: shown, never counted
as agreement with a paper).

Every cross-seed verdict carries its references: untrained vs untrained (``uu``, the
architecture's prior), trained vs untrained (``baseline``) and, where one exists, a null that
destroys the correspondence the statistic measures. Verdicts are stored in the run's JSON
results under ``verdicts`` (see ``verdicts.md`` of the study) and shown in the chapter as a
table and as generated sentences.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from repsim_utils.inference import stats
from repsim_utils.inference.pairs import BOTH_UNTRAINED, NULL, TRAINED, Sides
from repsim_utils.inference.stats import Estimate

#: "not testable": the reference sits where the rule cannot fail (e.g. two untrained networks
#: already identify every layer), so no interval could decide the claim.
OUTCOMES = ("agrees", "disagrees", "inconclusive", "not testable")

#: The kinds of claim, and their names on the page.
KINDS = {"paper": "paper claim", "study": "study question", "precondition": "precondition",
         "sanity": "sanity check"}


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
    """A claim as the study tests it: the statistic and the rule, fixed in advance, and its
    kind (:data:`KINDS`; default: a paper claim, or a study question when ``paper`` is
    "study")."""

    id: str
    paper: str
    claim: str
    statistic: str
    rule: Rule
    kind: str = ""
    #: True when the rule's threshold (or margin) is the study's choice, not the paper's
    #: number: the verdict then also reports its outcome at half and at double of it.
    own_threshold: bool = False

    def __post_init__(self) -> None:
        if self.own_threshold and self.rule.threshold == 0 and self.rule.margin == 0:
            raise ValueError(f"claim {self.id!r}: a threshold of 0 has no half or double")
        if not self.kind:
            object.__setattr__(self, "kind", "study" if self.paper == "study" else "paper")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id!r}: kind must be one of {list(KINDS)}, got "
                             f"{self.kind!r}")
        if self.kind == "paper" and self.paper == "study":
            raise ValueError(f"claim {self.id!r}: a paper claim names its paper")

    def judge(self, estimate: Estimate, baseline: Reference | None = None,
              null: Reference | None = None, note: str = "", uu: Reference | None = None,
              extra: tuple[Reference, ...] = (), untestable: str = "") -> Verdict:
        return Verdict(self, estimate, baseline, null, note, uu, tuple(extra), untestable)


@dataclass(frozen=True)
class Verdict:
    """A claim, the estimate of its statistic, the references beside it, and the outcome."""

    claim: Claim
    estimate: Estimate
    baseline: Reference | None = None
    null: Reference | None = None
    note: str = ""
    uu: Reference | None = None
    extra: tuple[Reference, ...] = ()
    #: Why the claim cannot be decided here ('' when it can): the outcome is "not testable".
    untestable: str = ""
    outcome: str = field(init=False)

    def __post_init__(self) -> None:
        for ref in self.references():
            if not math.isfinite(ref.value):
                raise ValueError(f"{self.claim.id}: reference {ref.name!r} is not finite")
        object.__setattr__(self, "outcome", "not testable" if self.untestable else
                           self.claim.rule.outcome(self.estimate.low, self.estimate.high))

    def sensitivity(self) -> dict[str, str] | None:
        """Outcomes at half and double the threshold, for a study-chosen threshold (else
        None)."""
        if not self.claim.own_threshold or self.untestable:
            return None
        r, e = self.claim.rule, self.estimate
        return {f"{factor:g}x": Rule(r.kind, r.threshold * factor, r.margin * factor).outcome(
            e.low, e.high) for factor in (0.5, 2.0)}

    def references(self) -> list[Reference]:
        """Every reference beside the estimate: uu, trained vs untrained, null, then others."""
        return [r for r in (self.uu, self.baseline, self.null, *self.extra) if r is not None]

    def as_dict(self) -> dict[str, Any]:
        c = self.claim
        return {"id": c.id, "paper": c.paper, "kind": c.kind, "claim": c.claim,
                "statistic": c.statistic, "value": self.estimate.value,
                "ci": list(self.estimate.ci),
                "uu": self.uu.as_dict() if self.uu else None,
                "baseline": self.baseline.as_dict() if self.baseline else None,
                "null": self.null.as_dict() if self.null else None,
                "references": [r.as_dict() for r in self.extra],
                "outcome": self.outcome, "rule": c.rule.describe(),
                "sensitivity": self.sensitivity(), "note": self.note,
                "untestable": self.untestable}

    def sentence(self) -> str:
        """One generated sentence: the claim, the outcome, the number and its references."""
        e = self.estimate
        refs = "; ".join(r.text() for r in self.references())
        text = (f"{KINDS[self.claim.kind].capitalize()}: *{self.claim.claim}* — "
                f"**{self.outcome}**: {self.claim.statistic} = "
                f"{e.value:.3g} (95% CI {e.low:.3g} to {e.high:.3g}; rule: "
                f"{self.claim.rule.describe()}).")
        if refs:
            text += f" Beside it, {refs}."
        if (sens := self.sensitivity()) is not None:
            text += (" The threshold is the study's: at half of it the outcome is "
                     f"{sens['0.5x']}, at double {sens['2x']}.")
        if self.untestable:
            text += f" Not testable here: {self.untestable}"
        elif self.claim.kind == "sanity":
            text += " True by construction: shown, not counted as agreement."
        if self.note:
            text += f" {self.note}"
        return text


def training_verdict(claim: Claim, sides: Sides, n: int, *,
                     reduce: Callable[[np.ndarray], np.ndarray] = stats.weakest,
                     sign: float = 1.0, where: str = "weakest layer",
                     reference_reduce: Callable[[np.ndarray], np.ndarray] | None = None,
                     null: Reference | None = None, note: str = "", **kwargs: Any) -> Verdict:
    """Every lens's headline verdict, "trained networks are more alike than two untrained
    ones": ``claim`` judged on sign * (mean tt - mean uu), reduced over layers by ``reduce``
    (the weakest layer) on the same networks, beside the untrained pairs (uu), trained vs
    untrained (tu), the trained pairs, the effect tt - tu (all reduced the same way, or by
    ``reference_reduce``) and the null: ``null``, or else the null pairs of ``sides``.
    ``sides`` (tt (layers, n, n), tu (layers, n), uu (layers, n, n)) from
    :func:`repsim_utils.inference.pairs.layer_arrays`; ``sign=-1`` for a distance. One
    function for every lens, so the lenses cannot drift apart."""
    tt, tu, uu = sides
    ref_reduce = reference_reduce or reduce
    if null is None and sides.null is not None:
        null = Reference.of(f"null: samples of one network shuffled ({where})",
                            stats.over_networks(sides.null, n, False, ref_reduce, **kwargs))
    effect = stats.effect_over_networks(tt, uu, n, reduce, sign=sign, pairs=True, **kwargs)
    effect_tu = stats.effect_over_networks(tt, tu, n, reduce, sign=sign, **kwargs)
    return claim.judge(
        effect,
        baseline=Reference.of(f"trained vs untrained ({where})",
                              stats.over_networks(tu, n, False, ref_reduce, **kwargs)),
        uu=Reference.of(f"untrained vs untrained ({where})",
                        stats.over_networks(uu, n, True, ref_reduce, **kwargs)),
        null=null, note=note,
        extra=(Reference.of(f"trained vs trained ({where})",
                            stats.over_networks(tt, n, True, ref_reduce, **kwargs)),
               Reference.of("effect against trained vs untrained (tt - tu)", effect_tu)))


def identification_verdict(claim: Claim, accuracy: Mapping[str, np.ndarray], n: int,
                           n_layers: int, what: str = "samples of one network shuffled",
                           **kwargs: Any) -> Verdict:
    """A layer-identification verdict (Kornblith et al. 2019), the same for every lens:
    ``claim`` judged on the accuracy of trained pairs minus the larger, pair by pair, of the
    null (the same pairs with one network's ``what``: the null of the argmax itself) and of
    two untrained networks (the architecture's prior), with an interval over networks.
    ``accuracy`` maps pair kinds (:data:`~repsim_utils.inference.pairs.TRAINED`,
    ``BOTH_UNTRAINED``, ``NULL``) to (n, n) matrices
    (:func:`~repsim_utils.inference.pairs.identification_matrices`). Where the reference
    identifies every layer on every pair (two untrained networks do, or the null does, as CCA
    does with fewer samples than units), it is at the ceiling and no outcome of the trained
    pairs could show learning: the verdict is "not testable", and its claim a sanity check
    (never counted)."""
    def ref(name: str, values: np.ndarray) -> Reference:
        return Reference.of(name, stats.over_networks(values, n, True, **kwargs))

    tt, uu, null = accuracy[TRAINED], accuracy[BOTH_UNTRAINED], accuracy[NULL]
    reference = np.maximum(null, uu)
    off = ~np.eye(n, dtype=bool)
    untestable = ""
    if np.all(reference[off] == 1):  # the reference is at the ceiling: nothing can exceed it
        claim = dataclasses.replace(claim, kind="sanity")
        untestable = (
            "every pair of untrained networks identifies every layer too (the layers' shapes "
            "tell them apart)" if np.all(uu[off] == 1) else
            f"the null ({what}) identifies every layer too: the measure does not depend on "
            f"which sample corresponds to which" if np.all(null[off] == 1) else
            "on every pair, the null or two untrained networks identify every layer too")
        untestable += ", so no accuracy of trained pairs could exceed the reference."
    elif np.all(tt[off] == reference[off]):  # an interval of zero width decides nothing
        claim = dataclasses.replace(claim, kind="sanity")
        untestable = ("trained pairs score exactly the reference on every pair (the measure "
                      "ties the layers alike for trained and reference pairs, as a measure "
                      "saturated at its maximum does), so the interval has no width.")
    return claim.judge(
        stats.over_networks(tt - reference, n, True, **kwargs),
        null=ref(f"accuracy, {what}", null), uu=ref("accuracy, untrained vs untrained", uu),
        extra=(ref("accuracy, trained vs trained", tt), Reference("chance", 1 / n_layers)),
        untestable=untestable)


__all__ = ["KINDS", "OUTCOMES", "Claim", "Reference", "Rule", "Verdict",
           "identification_verdict", "training_verdict"]
