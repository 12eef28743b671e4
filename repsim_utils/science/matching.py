"""Unit matching across networks (Li, Yosinski, Clune, Lipson & Hopcroft 2016, "Convergent
learning: do different neural networks learn the same representations?", ICLR).

All functions take activations of shape (samples, units). A *dead* unit (constant over the
samples, e.g. a ReLU that never fires) has no defined correlation: it is reported as NaN in
correlation and MI matrices, left out of every matching, and counted as unmatched.

- one-to-one: :func:`correlation`, :func:`semi_match`, :func:`bipartite_match`;
- mutual information: :func:`mutual_information` (zero bin + percentile bins, Miller-Madow);
- few-to-one: :func:`sparse_prediction` (L1-penalised linear maps, held-out error);
- many-to-many: :func:`cluster_units` and :func:`shared_cluster_fraction`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from repsim_utils.science.arrays import as_pair, check_pair

#: A unit whose standard deviation is below DEAD_TOL times the largest standard deviation of its
#: layer is treated as constant (dead). Relative, so it does not depend on the activation scale.
DEAD_TOL = 1e-8


# ---------------------------------------------------------------------------------------------
# correlation


class CorrelationStream:
    """Exact streaming Pearson correlation between the units of two layers.

    Accumulates float64 means and co-moments batch by batch with the pairwise update of Chan,
    Golub & LeVeque (1979): for batches 1 and 2 with n = n1 + n2 and delta = mean2 - mean1,
    ``C = C1 + C2 + outer(delta_a, delta_b) * n1 * n2 / n``. The result equals the in-memory
    correlation to rounding, while only one batch is ever held.
    """

    def __init__(self) -> None:
        self.n = 0

    def update(self, a: np.ndarray, b: np.ndarray) -> None:
        a, b = as_pair(a, b, min_samples=0)
        m = len(a)
        if m == 0:
            return
        mean_a, mean_b = a.mean(0), b.mean(0)
        ca, cb = a - mean_a, b - mean_b
        comoment, m2a, m2b = ca.T @ cb, (ca * ca).sum(0), (cb * cb).sum(0)
        if self.n == 0:
            self.mean_a, self.mean_b = mean_a, mean_b
            self.comoment, self.m2a, self.m2b = comoment, m2a, m2b
            self.n = m
            return
        n = self.n + m
        da, db = mean_a - self.mean_a, mean_b - self.mean_b
        w = self.n * m / n
        self.comoment += comoment + np.outer(da, db) * w
        self.m2a += m2a + da * da * w
        self.m2b += m2b + db * db * w
        self.mean_a += da * (m / n)
        self.mean_b += db * (m / n)
        self.n = n

    def result(self) -> np.ndarray:
        """Correlation matrix (units_a, units_b); rows/columns of dead units are NaN."""
        if self.n < 2:
            raise ValueError("correlation needs at least 2 samples")
        sa, sb = np.sqrt(self.m2a), np.sqrt(self.m2b)
        dead_a, dead_b = _dead(sa), _dead(sb)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.comoment / np.outer(sa, sb)
        corr[dead_a, :] = np.nan
        corr[:, dead_b] = np.nan
        return corr


def _dead(std: np.ndarray) -> np.ndarray:
    top = std.max(initial=0.0)
    return std <= DEAD_TOL * top if top > 0 else np.ones_like(std, dtype=bool)


def dead_units(a: np.ndarray) -> np.ndarray:
    """Indices of the constant (dead) units of ``a`` (samples, units)."""
    return np.flatnonzero(_dead(np.asarray(a, dtype=np.float64).std(0)))


def correlation(a: np.ndarray, b: np.ndarray | None = None, batch_size: int = 8192) -> np.ndarray:
    """Pearson correlation C[i, j] = cov(a_i, b_j) / (std(a_i) std(b_j)) over samples.

    ``b=None`` gives the within-network matrix of ``a``. Computed in float64 over batches of
    ``batch_size`` samples (see :class:`CorrelationStream`); dead units give NaN rows/columns.
    """
    b = a if b is None else b
    check_pair(a, b)
    stream = CorrelationStream()
    for start in range(0, len(a), batch_size):
        stream.update(a[start:start + batch_size], b[start:start + batch_size])
    return stream.result()


def correlation_stream(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Correlation from an iterable of (batch_a, batch_b), e.g. activations computed on the fly."""
    stream = CorrelationStream()
    for a, b in pairs:
        stream.update(a, b)
    return stream.result()


# ---------------------------------------------------------------------------------------------
# one-to-one matching


@dataclass(frozen=True)
class Match:
    """A matching of the units of network A to those of network B.

    ``partner[i]`` is the unit of B matched to unit i of A (-1 where none: dead, or left over by
    a one-to-one matching of unequal layers); ``value[i]`` its similarity (NaN where none).
    """

    partner: np.ndarray
    value: np.ndarray
    dead_a: np.ndarray
    dead_b: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        return self.partner >= 0

    @property
    def mean(self) -> float:
        """Mean similarity over all units of A, a dead or unmatched unit counting 0 (Li et al.
        2016 count them as unmatched); 0 for a layer without matched units."""
        return float(np.where(self.matched, self.value, 0.0).mean())

    @property
    def mean_matched(self) -> float:
        """Mean similarity over the matched units only (NaN when none is matched)."""
        return float(self.value[self.matched].mean()) if self.matched.any() else float("nan")

    def quantile(self, q: float) -> float:
        """Quantile ``q`` of the per-unit similarity, dead or unmatched units counting 0."""
        return float(np.quantile(np.where(self.matched, self.value, 0.0), q))

    def sorted_values(self) -> np.ndarray:
        """Matched similarities sorted in descending order (the paper's per-layer curve)."""
        return np.sort(self.value[self.matched])[::-1]


def _alive(sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = np.asarray(sim)
    if sim.ndim != 2:
        raise ValueError(f"need a (units_a, units_b) matrix, got shape {sim.shape}")
    rows = ~np.all(np.isnan(sim), axis=1)
    cols = ~np.all(np.isnan(sim), axis=0)
    if np.isnan(sim[np.ix_(rows, cols)]).any():
        raise ValueError("NaN entries outside dead rows/columns: not a similarity matrix")
    return rows, cols


def semi_match(sim: np.ndarray) -> Match:
    """Semi-matching: each unit i of A takes argmax_j sim[i, j]; partners may repeat."""
    rows, cols = _alive(sim)
    partner = np.full(sim.shape[0], -1)
    value = np.full(sim.shape[0], np.nan)
    if rows.any() and cols.any():
        cidx = np.flatnonzero(cols)
        best = np.argmax(sim[np.ix_(rows, cols)], axis=1)
        partner[rows] = cidx[best]
        value[rows] = sim[rows, partner[rows]]
    return Match(partner, value, np.flatnonzero(~rows), np.flatnonzero(~cols))


def bipartite_match(sim: np.ndarray) -> Match:
    """One-to-one matching maximising the summed similarity (assignment problem, solved by
    ``scipy.optimize.linear_sum_assignment``). With unequal alive counts the larger side keeps
    unmatched units."""
    rows, cols = _alive(sim)
    partner = np.full(sim.shape[0], -1)
    value = np.full(sim.shape[0], np.nan)
    ridx, cidx = np.flatnonzero(rows), np.flatnonzero(cols)
    if len(ridx) and len(cidx):
        r, c = linear_sum_assignment(sim[np.ix_(ridx, cidx)], maximize=True)
        partner[ridx[r]] = cidx[c]
        value[ridx[r]] = sim[ridx[r], cidx[c]]
    return Match(partner, value, np.flatnonzero(~rows), np.flatnonzero(~cols))


def same_partner_fraction(m1: Match, m2: Match) -> float:
    """Fraction of units matched by both matchings that get the same partner in both."""
    both = m1.matched & m2.matched
    if not both.any():
        return float("nan")
    return float(np.mean(m1.partner[both] == m2.partner[both]))


def permute_units(sim: np.ndarray, match: Match) -> np.ndarray:
    """Columns of ``sim`` reordered so that each matched partner sits on the diagonal (the
    paper's "between-net after permutation" view); unmatched columns follow."""
    order = [p for p in match.partner if p >= 0]
    rest = [j for j in range(sim.shape[1]) if j not in set(order)]
    return sim[:, order + rest]


# ---------------------------------------------------------------------------------------------
# mutual information


def bin_units(a: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Per-unit bin index in 0..n_bins-1: bin 0 holds the exact zeros (a ReLU's silence), bins
    1..n_bins-1 are equal-mass percentile bins of the non-zero values (Li et al. 2016)."""
    a = np.asarray(a, dtype=np.float64)
    if n_bins < 2:
        raise ValueError("n_bins must be >= 2")
    out = np.zeros(a.shape, dtype=np.int64)
    qs = np.linspace(0, 100, n_bins)[1:-1]  # n_bins - 2 inner edges -> n_bins - 1 bins
    for u in range(a.shape[1]):  # a loop over units, each step vectorised over samples
        col = a[:, u]
        nz = col != 0
        if nz.any():
            edges = np.percentile(col[nz], qs)
            out[nz, u] = 1 + np.searchsorted(edges, col[nz], side="right")
    return out


def _entropy_mm(counts: np.ndarray, n: int, axis: tuple[int, ...]) -> np.ndarray:
    """Plug-in entropy in nats plus the Miller-Madow correction (m - 1) / (2 N), m the number of
    occupied cells."""
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=axis)
    occupied = (counts > 0).sum(axis=axis)
    return h + (occupied - 1) / (2 * n)


def mutual_information(a: np.ndarray, b: np.ndarray, n_bins: int = 10,
                       batch_size: int = 4096) -> np.ndarray:
    """Mutual information (nats) between every unit of ``a`` and every unit of ``b``.

    MI = H(X) + H(Y) - H(X, Y) from 2-D histograms of :func:`bin_units`, each entropy with the
    Miller-Madow bias correction, so independent units give ~0 (the plug-in bias
    (m_x - 1)(m_y - 1) / (2 N) removed) and a unit with itself gives its entropy. All joint
    histograms are counted at once as a product of one-hot codes, streamed over samples.
    Dead units give NaN rows/columns.
    """
    check_pair(a, b)
    ba, bb = bin_units(a, n_bins), bin_units(b, n_bins)
    n, ua, ub = len(a), a.shape[1], b.shape[1]
    joint = np.zeros((ua * n_bins, ub * n_bins))
    eye = np.eye(n_bins, dtype=np.float32)
    for s in range(0, n, batch_size):
        oa = eye[ba[s:s + batch_size]].reshape(-1, ua * n_bins)
        ob = eye[bb[s:s + batch_size]].reshape(-1, ub * n_bins)
        joint += (oa.T @ ob).astype(np.float64)  # counts are exact integers in float32 < 2^24
    joint = joint.reshape(ua, n_bins, ub, n_bins).transpose(0, 2, 1, 3)  # (ua, ub, bins, bins)
    hx = _entropy_mm(joint.sum(3)[:, 0], n, axis=(1,))  # (ua,)
    hy = _entropy_mm(joint.sum(2)[0], n, axis=(1,))  # (ub,)
    hxy = _entropy_mm(joint, n, axis=(2, 3))
    mi = hx[:, None] + hy[None, :] - hxy
    mi[np.isin(np.arange(ua), dead_units(a)), :] = np.nan
    mi[:, np.isin(np.arange(ub), dead_units(b))] = np.nan
    return mi


def top_pairs(sim: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The k semi-matched pairs (i, partner) with the highest similarity."""
    m = semi_match(sim)
    order = np.argsort(-np.where(m.matched, m.value, -np.inf), kind="stable")[:k]
    return [(int(i), int(m.partner[i])) for i in order if m.matched[i]]


# ---------------------------------------------------------------------------------------------
# few-to-one: sparse prediction


@dataclass(frozen=True)
class SparsePrediction:
    """Held-out quality of L1-penalised linear maps predicting every unit of B from all of A.

    Inputs and targets are standardised on the fitting half, so one penalty means the same for
    every unit. ``error[k]``: mean over predicted units of held-out MSE / held-out variance at
    ``alphas[k]``; ``nonzero[k]``: mean number of non-zero weights per predicted unit;
    ``weights[k]``: (units_b_alive, units_a) coefficients (standardised units, a copy per
    penalty); ``targets``: indices of the predicted (alive) units; ``dense_error``: the same
    error for the unpenalised least-squares map (the reference a sparse map is compared with);
    ``excluded``: alive units of B left out because they are active (non-zero) on fewer than
    ``min_active`` of the rows of either half: their held-out variance is so small that one
    such unit's normalised error (330 was seen) would dominate the mean;
    ``excluded_inputs``: units of A left out as predictors because they are active on fewer
    than ``min_active`` of the fitting rows: standardised by a tiny spread, such a unit takes
    huge values on the held-out rows, and the dense map's held-out error reached 3.95 (worse
    than predicting the mean) on untrained MLPs with 3 of 1,000 rows active. Their weights are
    0 in ``weights``.
    """

    alphas: np.ndarray
    error: np.ndarray
    nonzero: np.ndarray
    weights: list[np.ndarray]
    targets: np.ndarray
    dense_error: float
    excluded: int = 0
    excluded_inputs: int = 0

    def sparsest_within(self, tolerance: float) -> int:
        """Index of the largest penalty whose error is within ``tolerance`` (absolute, in units
        of normalised MSE) of the best error: the sparsest map that predicts about as well."""
        ok = np.flatnonzero(self.error <= self.error.min() + tolerance)
        return int(ok[np.argmax(self.alphas[ok])])

    def error_with_at_most(self, n_weights: float) -> float:
        """The best held-out error among maps using at most ``n_weights`` weights per unit on
        average; the empty map (error 1, predicting each unit by its mean) always qualifies."""
        ok = self.nonzero <= n_weights
        return float(min(1.0, self.error[ok].min())) if ok.any() else 1.0


def _halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: n // 2], perm[n // 2:]


#: Units active (non-zero) on fewer than this share of the rows are neither predicted nor
#: predictors in :func:`sparse_prediction`.
MIN_ACTIVE = 0.05


def sparse_prediction(a: np.ndarray, b: np.ndarray, alphas: Sequence[float],
                      seed: int = 0, max_iter: int = 5000, tol: float = 1e-7,
                      n_targets: int | None = None, min_active: float = MIN_ACTIVE
                      ) -> SparsePrediction:
    """Predict each unit of ``b`` from all units of ``a`` (Li et al. 2016, few-to-one).

    scikit-learn's ``Lasso`` with intercept, objective (1 / 2n) ||y - X w - c||^2 +
    alpha ||w||_1, on inputs and targets standardised with the fitting half's mean and standard
    deviation; fitted on a random half of the samples (``seed``) and scored on the other half,
    for each penalty in ``alphas`` (warm-started from the sparsest), beside the dense
    least-squares map. ``tol`` is scikit-learn's duality-gap tolerance (relative to ||y||^2):
    at its default of 1e-4 a warm start from the previous penalty often already passes it, and
    the smaller penalty would silently keep the previous map. ``n_targets`` predicts only that
    many alive units of ``b``, drawn with ``seed`` (the error is a mean over units). Targets
    active (non-zero) on fewer than ``min_active`` of the rows of either half are excluded and
    counted (:attr:`SparsePrediction.excluded`): a nearly silent unit's held-out variance is
    tiny and its normalised error would dominate the mean. Predictors (units of ``a``) active on
    fewer than ``min_active`` of the fitting rows are left out of every map, dense and sparse
    alike, and counted (:attr:`SparsePrediction.excluded_inputs`).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import StandardScaler

    a, b = as_pair(a, b)
    if min(alphas, default=-1) <= 0:
        raise ValueError(f"penalties must be > 0 (the dense map is computed separately), got "
                         f"{list(alphas)}")
    fit, test = _halves(len(a), seed)
    targets = np.setdiff1d(np.arange(b.shape[1]), dead_units(b[test]))
    targets = np.setdiff1d(targets, dead_units(b[fit]))
    if not 0 <= min_active < 1:
        raise ValueError(f"min_active must lie in [0, 1), got {min_active}")
    active = np.minimum((b[fit] != 0).mean(0), (b[test] != 0).mean(0))
    quiet = targets[active[targets] < min_active]
    targets = np.setdiff1d(targets, quiet)
    if not len(targets):
        raise ValueError(f"no unit of b is active on at least {min_active:g} of both halves' "
                         f"rows: nothing to predict")
    if n_targets is not None and n_targets < len(targets):
        targets = np.sort(np.random.default_rng(seed).choice(targets, n_targets, replace=False))
    inputs = np.flatnonzero((a[fit] != 0).mean(0) >= min_active)
    if not len(inputs):
        raise ValueError(f"no unit of a is active on at least {min_active:g} of the fitting "
                         f"rows: nothing to predict from")
    xs, ys = StandardScaler().fit(a[fit][:, inputs]), StandardScaler().fit(b[fit][:, targets])
    xfit, xtest = xs.transform(a[fit][:, inputs]), xs.transform(a[test][:, inputs])
    yfit, ytest = ys.transform(b[fit][:, targets]), ys.transform(b[test][:, targets])
    var = ytest.var(0)

    def error(pred: np.ndarray) -> float:
        return float(np.mean(((pred - ytest) ** 2).mean(0) / var))

    design = np.hstack([xfit, np.ones((len(xfit), 1))])
    dense = np.linalg.lstsq(design, yfit, rcond=None)[0]
    dense_error = error(np.hstack([xtest, np.ones((len(xtest), 1))]) @ dense)
    descending = np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
    errors, nonzero, weights = [], [], []
    model = Lasso(alpha=float(descending[0]), max_iter=max_iter, tol=tol, warm_start=True)
    for alpha in descending:  # warm start from the sparsest solution
        model.set_params(alpha=float(alpha))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(xfit, yfit)
        # a copy: the warm-started model reuses (and overwrites) its coefficient array
        coef = np.zeros((len(targets), a.shape[1]))
        coef[:, inputs] = model.coef_.reshape(len(targets), len(inputs))
        errors.append(error(model.predict(xtest).reshape(len(test), len(targets))))
        nonzero.append(float(np.mean((coef != 0).sum(1))))
        weights.append(coef)
    return SparsePrediction(descending[::-1], np.array(errors[::-1]), np.array(nonzero[::-1]),
                            weights[::-1], targets, dense_error, len(quiet),
                            a.shape[1] - len(inputs))


# ---------------------------------------------------------------------------------------------
# many-to-many: clustering the joint correlation matrix


def cluster_units(corr: np.ndarray, n_clusters: int, method: str = "spectral",
                  seed: int = 0) -> np.ndarray:
    """Cluster units from a (units, units) correlation matrix without NaN.

    ``spectral``: spectral clustering on the non-negative affinity (C + 1) / 2.
    ``agglomerative``: average linkage on the distance 1 - C.
    """
    from sklearn.cluster import AgglomerativeClustering, SpectralClustering

    corr = np.asarray(corr, dtype=np.float64)
    if np.isnan(corr).any():
        raise ValueError("remove dead units before clustering (NaN in the correlation matrix)")
    if method == "spectral":
        model = SpectralClustering(n_clusters, affinity="precomputed", random_state=seed)
        return model.fit_predict((corr + 1) / 2)
    if method == "agglomerative":
        model = AgglomerativeClustering(n_clusters, metric="precomputed", linkage="average")
        return model.fit_predict(1 - corr)
    raise ValueError(f"method must be 'spectral' or 'agglomerative', got {method!r}")


def shared_cluster_fraction(labels: np.ndarray, n_a: int, min_each: int = 1) -> float:
    """Share of clusters holding at least ``min_each`` units of each network; units
    0..n_a-1 belong to network A."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    shared = [np.sum(labels[:n_a] == c) >= min_each and np.sum(labels[n_a:] == c) >= min_each
              for c in ids]
    return float(np.mean(shared))


def many_to_many_share(labels: np.ndarray, n_a: int) -> float:
    """Share of all units that lie in balanced many-to-many groups (Li et al. 2016): over the
    clusters holding at least two units of each network, sum 2 min(n_A, n_B), divided by the
    number of units. A cluster of one unit of each network (a one-to-one match) counts 0, a
    cluster of one network's units only counts 0, and the statistic reaches 1 only when every
    cluster holds as many units of A as of B; units 0..n_a-1 belong to network A."""
    labels = np.asarray(labels)
    total = 0
    for c in np.unique(labels):
        k_a, k_b = int(np.sum(labels[:n_a] == c)), int(np.sum(labels[n_a:] == c))
        if k_a >= 2 and k_b >= 2:
            total += 2 * min(k_a, k_b)
    return total / len(labels)


def reliable_units(best: np.ndarray, null_q95: np.ndarray) -> tuple[float, float]:
    """Units of one network learnt by every other network (Li et al. 2016: "some features are
    learned reliably in multiple networks, others are not").

    ``best`` (others, units): each unit's semi-matched (best) correlation in every other
    network; ``null_q95`` (others,): the 95th percentile of the same best correlations with
    that other network's samples shuffled. A unit is *reliable* when its best match exceeds the
    null's percentile in every other network, *unmatched* when it exceeds it in none; dead units
    (NaN) are neither reliable nor matched. Returns (share reliable, share unmatched) over all
    units."""
    best = np.asarray(best, dtype=np.float64)
    above = np.nan_to_num(best, nan=-np.inf) > np.asarray(null_q95, np.float64)[:, None]
    return float(above.all(0).mean()), float((~above).all(0).mean())
