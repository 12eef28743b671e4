"""The invariance ladder: how alike two layers (samples x units) are *up to* ever larger groups of
transformations, each rung a similarity that is 1 when one layer is the other transformed by a
member of its group.

- **identity** (nothing: unit i is unit i): the mean over units of corr(a_i, b_i)
  (:func:`identity_correlation`);
- **permutation** (a one-to-one relabelling of units; Li et al. 2016): the mean correlation after
  the best one-to-one matching (:func:`permutation_correlation`);
- **orthogonal** (a rotation or reflection; Williams et al. 2021): Procrustes, cos of the angular
  shape distance (:func:`repsim_utils.science.measures.procrustes`);
- **linear** (an invertible affine map): the R^2 of each layer from the other by least squares,
  both directions (:func:`repsim_utils.science.measures.linear_regression`; 1 exactly under
  such a map, though below 1 it weighs directions by their variance);
- **subspace** (the span, approximately; Wang et al. 2018): the maximum-match similarity at
  eps 0.5 (:func:`repsim_utils.science.measures.mms`).

Each group contains the one before (a permutation is orthogonal, an orthogonal map invertible, and
an invertible linear map keeps the span), so a layer identical at one rung is identical at every
looser one; the one exception is an offset, which the linear rung ignores and the subspace rung,
on raw activations as Wang et al. define it, does not.
Function, the last rung (model stitching), needs the networks, not their layers:
:mod:`repsim_utils.science.stitching`. The rungs' scales differ (a correlation, a nuclear norm,
an R^2), so the chapter compares them as the share of the way from two untrained networks to 1
(:func:`share`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repsim_utils.science import matching, measures
from repsim_utils.science import prepared as pp
from repsim_utils.science.arrays import as_pair


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return pp.correlation_between(pp.units_layer(a), pp.units_layer(b))


def identity_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over units i of the Pearson correlation of a_i with b_i, with no alignment; a unit
    dead on either side counts 0. Needs layers of equal width (one architecture)."""
    a, b = as_pair(a, b, min_samples=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the identity rung compares unit i with unit i: widths must be equal, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    return float(np.nan_to_num(np.diagonal(_correlation(a, b)), nan=0.0).mean())


def permutation_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean correlation of each unit of ``a`` with its partner under the one-to-one matching
    of largest summed correlation (Li et al. 2016's bipartite matching); dead or unmatched units
    count 0."""
    a, b = as_pair(a, b, min_samples=2)
    return matching.bipartite_match(_correlation(a, b)).mean


@dataclass(frozen=True)
class Rung:
    """One rung: its name, the group of transformations it ignores, its statistic and the
    paper of the statistic."""

    name: str
    group: str
    function: Callable[[np.ndarray, np.ndarray], float]
    paper: str
    #: the registered measure (:data:`repsim_utils.science.measures.MEASURES`) it is, if any:
    #: a table of that measure's values can then stand in for computing it again
    measure: str | None = None


#: The ladder, from the strictest rung to the loosest.
RUNGS: tuple[Rung, ...] = (
    Rung("identity", "no transformation", identity_correlation, "li2016convergent"),
    Rung("permutation", "a permutation of units", permutation_correlation, "li2016convergent"),
    Rung("orthogonal", "a rotation or reflection", measures.procrustes,
         "williams2021generalized", "Procrustes"),
    Rung("linear", "an invertible affine map", measures.linear_regression,
         "kornblith2019similarity", "linear regression (R^2)"),
    Rung("subspace", f"the span, within eps {measures.MMS_EPS}", measures.mms,
         "wang2018towards", f"MMS (eps {measures.MMS_EPS})"),
)


def share(tt: float | np.ndarray, uu: float | np.ndarray) -> float | np.ndarray:
    """The share of the way from two untrained networks to identical layers,
    (tt - uu) / (1 - uu), for a rung whose maximum is 1: 0 where trained pairs are as alike as
    untrained ones, 1 where they are the same up to the rung's group. Undefined (an error)
    where untrained pairs already score 1: nothing is left to share."""
    uu = np.asarray(uu, dtype=np.float64)
    if np.any(uu >= 1):
        raise ValueError("untrained pairs score 1 at this rung: the share of the way to 1 is "
                         "undefined")
    out = (np.asarray(tt, dtype=np.float64) - uu) / (1.0 - uu)
    return float(out) if out.ndim == 0 else out


__all__ = ["RUNGS", "Rung", "identity_correlation", "permutation_correlation", "share"]
