"""Standard representational similarity measures, on activations of shape (samples, units).

Every function returns a *similarity*: 1 for identical representations (up to the measure's
invariances), about 0 for unrelated ones.

- :func:`linear_cka` (Kornblith et al. 2019): ||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F) on
  centred A, B, from sums accumulated over sample batches (:class:`Moments`), so no n x n Gram
  matrix is formed; :func:`debiased_cka`: the same ratio with the unbiased HSIC estimator of
  Song et al. (2012), also from streamed sums.
- :func:`cca`: canonical correlations rho_k (Hotelling 1936), summarised as mean rho and mean
  rho^2; :func:`svcca` (Raghu et al. 2017): CCA after keeping each side's top principal
  components explaining 99% of its variance; :func:`pwcca` (Morcos et al. 2018): canonical
  correlations weighted by how much of the *first* argument's neurons each canonical variate
  accounts for (asymmetric, as published).
- :func:`procrustes` (Williams et al. 2021): after centring and scaling each side to unit
  Frobenius norm, cos of the angular shape distance, ||A^T B||_* (the nuclear norm); widths may
  differ (the narrower side is padded with zero units, which changes nothing).
- :func:`rsa` (Kriegeskorte et al. 2008): Spearman correlation of the two representational
  dissimilarity matrices (Euclidean distances between samples), computed by rsatoolbox.

Every measure is registered in :data:`MEASURES` (:class:`Measure`: its function, whether it is
a similarity or a distance, whether it is symmetric, the transforms it is invariant to and the
paper); the chapters iterate over the registry and the tests check every registered measure's
declared invariances. The table below is generated from the registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from repsim_utils.science import matching
from repsim_utils.science import prepared as pp
from repsim_utils.science.arrays import as_pair
from repsim_utils.science.prepared import check_cca_samples, hsic_u
from repsim_utils.science.subspace import SubspaceMatcher

# ---------------------------------------------------------------------------------------------
# CKA from streamed sums


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return as_pair(a, b, min_samples=4)  # the debiased HSIC divides by n - 3


@dataclass
class Moments:
    """Sums over samples i of one network's activations x_i and of one pair (x_i, y_i), enough
    for linear and debiased CKA without an n x n matrix. Update batch by batch with
    :meth:`update`; the per-network sums (xx, s, q, xq, q2) can be shared by every pair that
    network is in.

    The sums are of *shifted* activations, x_i - c_x and y_i - c_y, with c the column means of
    the first batch (the shifted-data algorithm; Chan, Golub & LeVeque 1983): both CKAs are
    exactly invariant to a constant offset of each side (linear CKA centres; the unbiased HSIC
    is a U-statistic of differences), so the shift changes no value, while raw sums of
    activations with a mean far above their spread would cancel catastrophically in the
    centring (tested with offsets of 1e2 to 1e8 times the spread). Inputs of any float type are
    accumulated in float64.
    """

    n: int = 0
    shift_x: np.ndarray | None = None
    shift_y: np.ndarray | None = None

    def update(self, x: np.ndarray, y: np.ndarray) -> None:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise ValueError(f"need (samples, units) batches with equal samples, got "
                             f"{x.shape} and {y.shape}")
        if self.shift_x is None:
            self.shift_x, self.shift_y = x.mean(0), y.mean(0)
        elif x.shape[1] != self.shift_x.shape[0] or y.shape[1] != self.shift_y.shape[0]:
            raise ValueError(f"batch of {x.shape[1]} and {y.shape[1]} units after batches of "
                             f"{self.shift_x.shape[0]} and {self.shift_y.shape[0]}")
        x, y = x - self.shift_x, y - self.shift_y
        qx, qy = (x * x).sum(1), (y * y).sum(1)  # ||x_i||^2, ||y_i||^2
        parts = {"xx": x.T @ x, "yy": y.T @ y, "xy": x.T @ y, "sx": x.sum(0), "sy": y.sum(0),
                 "qx": qx.sum(), "qy": qy.sum(), "qx2": (qx * qx).sum(), "qy2": (qy * qy).sum(),
                 "qxqy": (qx * qy).sum(), "x_qx": x.T @ qx, "y_qy": y.T @ qy,
                 "x_qy": x.T @ qy, "y_qx": y.T @ qx}
        for key, value in parts.items():
            setattr(self, key, getattr(self, key, 0) + value)
        self.n += len(x)

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, batch_size: int = 8192) -> Moments:
        a, b = _check_pair(a, b)
        m = cls()
        for start in range(0, len(a), batch_size):
            m.update(a[start:start + batch_size], b[start:start + batch_size])
        return m

    def linear_cka(self) -> float:
        """||C_xy||_F^2 / (||C_xx||_F ||C_yy||_F), C the centred co-moment matrices."""
        n = self.n
        cxx = self.xx - np.outer(self.sx, self.sx) / n
        cyy = self.yy - np.outer(self.sy, self.sy) / n
        cxy = self.xy - np.outer(self.sx, self.sy) / n
        den = np.linalg.norm(cxx) * np.linalg.norm(cyy)
        if den == 0:
            raise ValueError("a representation is constant over the samples: CKA undefined")
        return float(np.linalg.norm(cxy) ** 2 / den)

    def _hsic_u(self, kind: str) -> float:
        """Unbiased HSIC of the accumulated sums (:func:`hsic_u`)."""
        if kind == "xx":
            args = (self.xx, self.sx, self.sx, self.qx, self.qx, self.qx2, self.x_qx, self.x_qx)
        elif kind == "yy":
            args = (self.yy, self.sy, self.sy, self.qy, self.qy, self.qy2, self.y_qy, self.y_qy)
        else:
            args = (self.xy, self.sx, self.sy, self.qx, self.qy, self.qxqy, self.x_qy, self.y_qx)
        return hsic_u(self.n, *args)

    def debiased_cka(self) -> float:
        """HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L)): about 0 for independent
        representations whatever the width (the biased form is not)."""
        if self.n < 4:
            raise ValueError("debiased CKA needs at least 4 samples")
        xx, yy = self._hsic_u("xx"), self._hsic_u("yy")
        if xx <= 0 or yy <= 0:
            raise ValueError("a representation has no variance left after debiasing")
        return self._hsic_u("xy") / float(np.sqrt(xx * yy))


def linear_cka(a: np.ndarray, b: np.ndarray, batch_size: int = 8192) -> float:
    """Linear CKA (Kornblith et al. 2019), streamed over sample batches."""
    return Moments.of(a, b, batch_size).linear_cka()


def debiased_cka(a: np.ndarray, b: np.ndarray, batch_size: int = 8192) -> float:
    """Debiased linear CKA (unbiased HSIC), streamed over sample batches."""
    return Moments.of(a, b, batch_size).debiased_cka()


def cka_stream(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> Moments:
    """Moments from an iterable of (batch_a, batch_b), e.g. activations computed on the fly."""
    m = Moments()
    for a, b in pairs:
        m.update(a, b)
    return m


# ---------------------------------------------------------------------------------------------
# CCA family


def canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """rho_1 >= rho_2 >= ... : the singular values of U_a^T U_b, U orthonormal bases of the
    centred column spans (min(rank a, rank b) values); refused where the ranks leave the spans
    no room to differ (:func:`check_cca_samples`)."""
    a, b = _check_pair(a, b)
    return pp.canonical_correlations_between(pp.cca_layer(a), pp.cca_layer(b))


def cca(a: np.ndarray, b: np.ndarray, squared: bool = False) -> float:
    """Mean canonical correlation (or mean rho^2 with ``squared``)."""
    rho = canonical_correlations(a, b)
    return float(np.mean(rho ** 2 if squared else rho))


def _cca_between(x: pp.CcaLayer, y: pp.CcaLayer) -> float:
    return float(np.mean(pp.canonical_correlations_between(x, y)))


#: SVCCA keeps the fewest principal components explaining this share of the variance
SVCCA_KEEP = 0.99


def _svcca_layer(a: np.ndarray, device: str | None = None) -> pp.CcaLayer:
    return pp.cca_layer(a, keep=SVCCA_KEEP, device=device)


def svcca(a: np.ndarray, b: np.ndarray, keep: float = SVCCA_KEEP) -> float:
    """SVCCA: mean canonical correlation between each side's top principal components that
    explain ``keep`` of its variance (Raghu et al. 2017)."""
    a, b = _check_pair(a, b)
    # the kept components u * s span what the kept bases u span (already orthonormal and
    # centred), so their canonical correlations come from the bases without a second SVD
    return _cca_between(pp.cca_layer(a, keep), pp.cca_layer(b, keep))


def _pwcca_layer(a: np.ndarray, device: str | None = None) -> pp.CcaLayer:
    return pp.cca_layer(a, neurons=True, device=device)


def pwcca(a: np.ndarray, b: np.ndarray) -> float:
    """PWCCA (Morcos et al. 2018): sum_k w_k rho_k / sum_k w_k with w_k = sum_j |<h_k, a_j>|,
    h_k the k-th canonical variate of ``a`` (in sample space) and a_j the centred neurons of
    ``a``. The weights come from the first argument, whatever the widths."""
    a, b = _check_pair(a, b)
    return pp.pwcca_between(_pwcca_layer(a), pp.cca_layer(b))


# ---------------------------------------------------------------------------------------------
# Procrustes and RSA


def procrustes(a: np.ndarray, b: np.ndarray) -> float:
    """cos of the angular Procrustes distance (Williams et al. 2021): ||A^T B||_* for centred A,
    B scaled to unit Frobenius norm; 1 when B is a rotation (or reflection) of A."""
    a, b = _check_pair(a, b)
    return pp.procrustes_between(pp.procrustes_layer(a), pp.procrustes_layer(b))


def rdm_ranks(a: np.ndarray) -> np.ndarray:
    """The ranks of the Euclidean RDM of ``a`` over its samples (rsatoolbox's RDM, its upper
    triangle as a vector): Spearman correlation of two RDMs is the Pearson correlation of their
    ranks, so a network's ranks can be computed once and reused for every pair it is in."""
    import rsatoolbox
    from scipy.stats import rankdata

    rdm = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(_centred(a)), method="euclidean")
    return rankdata(rdm.get_vectors()[0])


def _centred(z: np.ndarray) -> np.ndarray:
    """``z`` minus its column means: Euclidean distances are unchanged, but rsatoolbox forms
    them from ||x||^2 + ||y||^2 - 2 x.y, which cancels catastrophically for activations with a
    mean far above their spread (Spearman off by 2e-5 at an offset of 1e6 spreads, 0.6 at
    1e8)."""
    z = np.asarray(z, np.float64)
    return z - z.mean(0)


def rsa_ranks(ra: np.ndarray, rb: np.ndarray) -> float:
    """Spearman correlation of two RDMs from their ranks (:func:`rdm_ranks`)."""
    return pp.rsa_between(ra, rb)


def rsa(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> float:
    """Correlation (``method``: spearman, corr, cosine... as rsatoolbox names them) between the
    Euclidean representational dissimilarity matrices of ``a`` and ``b`` over the samples,
    computed by rsatoolbox (n x n: use a few hundred to a few thousand samples)."""
    import rsatoolbox

    a, b = _check_pair(a, b)
    rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(_centred(z)), method="euclidean")
            for z in (a, b)]
    return float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method=method)[0, 0])


# ---------------------------------------------------------------------------------------------
# the study's unit and subspace lenses as measures

#: eps of the maximum-match similarity used as a measure
MMS_EPS = 0.5


def unit_matching(a: np.ndarray, b: np.ndarray) -> float:
    """Mean semi-matched correlation (Li et al. 2016): each unit of ``a`` takes its most
    correlated unit of ``b``; dead units count 0."""
    return matching.semi_match(matching.correlation(a, b)).mean


def linear_regression(a: np.ndarray, b: np.ndarray) -> float:
    """The mean of the least-squares R^2 of ``b`` from ``a`` and of ``a`` from ``b`` (affine
    fits, in-sample: unrelated layers of p units over n samples score about p / n), 1 when each
    is an invertible affine map of the other; Kornblith et al. (2019) test it for layer
    identification. Pooled over units, R^2(a | b) weighs a's directions by their variance, so
    the mean is invariant to rotations of either side but not to every invertible map. From
    per-network bases (:func:`~repsim_utils.science.prepared.linear_regression_between`);
    :func:`repsim_utils.science.regression.r2` is the direct formula."""
    a, b = _check_pair(a, b)
    return pp.linear_regression_between(pp.regression_layer(a), pp.regression_layer(b))


def mms(a: np.ndarray, b: np.ndarray) -> float:
    """Maximum-match similarity at :data:`MMS_EPS` (Wang et al. 2018)."""
    return float(SubspaceMatcher(a, b).similarity(MMS_EPS))


# ---------------------------------------------------------------------------------------------
# the registry

#: the transforms T of the invariance table: a measure invariant to T scores A T as A
TRANSFORMS = ("orthogonal", "scale", "permutation", "invertible", "translation")
TRANSFORM_LABELS = {"orthogonal": "orthogonal", "scale": "isotropic scale",
                    "permutation": "permutation", "invertible": "invertible linear",
                    "translation": "translation (an offset per unit)"}


@dataclass(frozen=True)
class Measure:
    """One similarity measure of two activation arrays (samples x units)."""

    name: str
    function: Callable[[np.ndarray, np.ndarray], float]
    #: "similarity" (higher: more alike; 1 for identical) or "distance" (lower: more alike)
    kind: str
    #: does swapping the arguments leave the value unchanged?
    symmetric: bool
    #: the transforms of :data:`TRANSFORMS` applied to one argument that leave the value unchanged
    invariances: frozenset[str]
    #: citation key of the paper that defines it (book/references.bib)
    paper: str
    #: the per-network work on one layer, done once for every pair it is in
    #: (:mod:`repsim_utils.science.prepared`); None: the layer itself
    prepare: Callable[[np.ndarray], Any] | None = None
    #: the per-pair work on two prepared layers; None: ``function`` on the two layers
    between: Callable[[Any, Any], float] | None = None
    #: does ``prepare`` take ``device`` (a torch device where the prepared layer and the
    #: per-pair work live)? Measures without it run on the CPU whatever the device.
    on_devices: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("similarity", "distance"):
            raise ValueError(f"measure {self.name!r}: kind must be similarity or distance, "
                             f"got {self.kind!r}")
        unknown = set(self.invariances) - set(TRANSFORMS)
        if unknown:
            raise ValueError(f"measure {self.name!r}: unknown invariances {sorted(unknown)}; "
                             f"known: {', '.join(TRANSFORMS)}")

        if (self.prepare is None) != (self.between is None):
            raise ValueError(f"measure {self.name!r}: give both prepare and between, or "
                             f"neither")
        if self.on_devices and self.prepare is None:
            raise ValueError(f"measure {self.name!r}: on_devices needs prepare and between")

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.function(a, b)

    def layer(self, a: np.ndarray, device: str | None = None) -> Any:
        """One layer prepared for :meth:`compare` (the per-network work of every pair), on
        ``device`` (a torch device; None: NumPy) when the measure has a device path
        (:attr:`on_devices`), otherwise in NumPy."""
        if self.prepare is None:
            return a
        if device is not None and self.on_devices:
            return self.prepare(a, device=device)
        return self.prepare(a)

    def compare(self, x: Any, y: Any) -> float:
        """The measure of two layers prepared by :meth:`layer`: equal to ``self(a, b)`` to
        rounding, at the cost of the cross terms only."""
        return float(self.function(x, y) if self.between is None else self.between(x, y))

    @property
    def key(self) -> str:
        """The name as an identifier ("linear CKA" -> "linear_cka"), for verdict ids."""
        return self.name.split(" (")[0].lower().replace(" ", "_")


#: Every measure by name, in the order the chapters show them.
MEASURES: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    """Add ``measure`` to :data:`MEASURES` (a name already there is refused)."""
    if measure.name in MEASURES:
        raise ValueError(f"measure {measure.name!r} is already registered")
    MEASURES[measure.name] = measure
    return measure


@contextlib.contextmanager
def registered(measure: Measure) -> Iterator[Measure]:
    """``measure`` in the registry for the duration of a ``with`` block (tests, experiments)."""
    register(measure)
    try:
        yield measure
    finally:
        del MEASURES[measure.name]


_ALL = frozenset(TRANSFORMS)
_NOT_LINEAR = _ALL - {"invertible"}
for _m in (
    Measure("unit matching", unit_matching, "similarity", False,
            frozenset({"scale", "permutation", "translation"}), "li2016convergent",
            pp.units_layer, pp.unit_matching_between, on_devices=True),
    # raw (uncentred) neuron vectors, as Wang et al. define the match: an offset moves spans
    Measure(f"MMS (eps {MMS_EPS})", mms, "similarity", True, _ALL - {"translation"},
            "wang2018towards"),
    Measure("linear CKA", linear_cka, "similarity", True, _NOT_LINEAR, "kornblith2019similarity",
            pp.cka_layer, pp.linear_cka_between, on_devices=True),
    Measure("debiased CKA", debiased_cka, "similarity", True, _NOT_LINEAR,
            "kornblith2019similarity", pp.hsic_layer, pp.debiased_cka_between, on_devices=True),
    Measure("CCA (mean rho)", cca, "similarity", True, _ALL, "raghu2017svcca",
            pp.cca_layer, _cca_between, on_devices=True),
    # R^2(b | a) ignores any invertible map of a, but R^2(a | b) weighs a's directions by
    # their variance, which such a map changes: the mean of both ignores only rotations
    Measure("linear regression (R^2)", linear_regression, "similarity", True, _NOT_LINEAR,
            "kornblith2019similarity", pp.regression_layer, pp.linear_regression_between,
            on_devices=True),
    Measure("SVCCA", svcca, "similarity", True, _NOT_LINEAR, "raghu2017svcca",
            _svcca_layer, _cca_between, on_devices=True),
    Measure("PWCCA", pwcca, "similarity", False,
            frozenset({"scale", "permutation", "translation"}), "morcos2018insights",
            _pwcca_layer, pp.pwcca_between, on_devices=True),
    Measure("Procrustes", procrustes, "similarity", True, _NOT_LINEAR,
            "williams2021generalized", pp.procrustes_layer, pp.procrustes_between, on_devices=True),
    Measure("RSA", rsa, "similarity", True, _NOT_LINEAR, "kriegeskorte2008rsa",
            rdm_ranks, pp.rsa_between),
):
    register(_m)


def invariance_table(measures: Iterable[Measure] | None = None) -> str:
    """The invariance table of the registered measures, as Markdown."""
    rows = ["| measure | " + " | ".join(TRANSFORM_LABELS[t] for t in TRANSFORMS)
            + " | symmetric | paper |", "|---" * (len(TRANSFORMS) + 3) + "|"]
    for m in MEASURES.values() if measures is None else measures:
        cells = ["yes" if t in m.invariances else "no" for t in TRANSFORMS]
        rows.append(f"| {m.name} | " + " | ".join(cells)
                    + f" | {'yes' if m.symmetric else 'no'} | {m.paper} |")
    return "\n".join(rows)


__doc__ = (__doc__ or "") + "\n" + invariance_table() + "\n"

__all__ = ["MEASURES", "MMS_EPS", "Measure", "Moments", "SVCCA_KEEP", "TRANSFORMS",
           "canonical_correlations", "cca", "check_cca_samples", "cka_stream", "debiased_cka",
           "hsic_u", "invariance_table", "linear_cka", "linear_regression", "mms", "procrustes",
           "pwcca", "rdm_ranks", "register", "registered", "rsa", "rsa_ranks", "svcca",
           "unit_matching"]
