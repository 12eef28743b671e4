"""Uncertainty over networks: intervals, tests and nulls for the study's comparisons.

The unit of replication is the *network* (its seed), never the pair: pairs that share a network
are not independent. With ``n`` seeds the study has

- ``tt``, an (n, n) symmetric matrix of a statistic between trained networks i and j (diagonal
  unused), and
- ``tu``, an (n,) vector of the same statistic between trained network i and an untrained one
  (its baseline).

Intervals come from :func:`scipy.stats.bootstrap` resampling the *indices of networks*: each
resample recomputes the statistic from the pairs of distinct resampled networks, so a network
drawn twice is never compared with itself. The effect, trained-vs-trained minus
trained-vs-untrained, is resampled jointly (same networks on both sides). Tests of "no effect"
use :func:`scipy.stats.permutation_test` (sign flips of per-network differences). With 5 seeds
an interval is wide and the smallest two-sided p-value is 2 / 2^5 = 0.0625: the book says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Confidence of every interval in the study.
CONFIDENCE = 0.95
#: Bootstrap resamples: enough that the interval's ends move by less than their printed digits.
N_RESAMPLES = 4999


@dataclass(frozen=True)
class Estimate:
    """A statistic's value over the observed networks and its two-sided interval."""

    value: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not all(np.isfinite([self.value, self.low, self.high])):
            raise ValueError(f"estimate is not finite: {self}")
        if not self.low <= self.high:
            raise ValueError(f"interval ends out of order: {self}")

    @property
    def ci(self) -> tuple[float, float]:
        return (self.low, self.high)

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


def _indices(idx: np.ndarray) -> np.ndarray:
    return np.asarray(idx).astype(np.int64)


def pair_mean(tt: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of ``tt[..., a, b]`` over ordered pairs of positions a != b of the resampled network
    indices ``idx`` (..., n) whose networks differ; NaN where no such pair exists.

    ``tt`` has shape (k..., n, n); the result has shape (k..., resamples...).
    """
    idx = _indices(idx)
    tt = np.asarray(tt, dtype=np.float64)
    vals = tt[..., idx[..., :, None], idx[..., None, :]]  # (k..., r..., n, n)
    valid = idx[..., :, None] != idx[..., None, :]  # (r..., n, n)
    count = valid.sum(axis=(-2, -1))
    total = np.where(valid, vals, 0.0).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def net_mean(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of per-network ``values`` (k..., n) over resampled indices (r..., n):
    (k..., r...)."""
    return np.asarray(values, dtype=np.float64)[..., _indices(idx)].mean(axis=-1)


def bootstrap_networks(statistic: Callable[[np.ndarray], np.ndarray], n_networks: int, *,
                       confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                       seed: int = 0) -> Estimate | list[Estimate]:
    """Percentile bootstrap interval of ``statistic(idx)`` over networks.

    ``statistic`` takes integer network indices of shape (..., n_networks) (one resample per
    leading index; the observed set is ``arange(n)``) and returns shape (...) or (k, ...) for
    k statistics at once. Resamples where the statistic is undefined (NaN, e.g. one network
    drawn n times leaves no pair) are left out of the percentiles. Returns one
    :class:`Estimate`, or a list of k.
    """
    if n_networks < 2:
        raise ValueError(f"an interval over networks needs at least 2 networks, got {n_networks}")
    observed = np.asarray(statistic(np.arange(n_networks)), dtype=np.float64)
    with warnings.catch_warnings():
        # resamples without a pair give NaN, which scipy reports as a degenerate
        # distribution; they are left out of the percentiles below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap((np.arange(n_networks),), lambda i, axis=-1: statistic(i),
                              vectorized=True, paired=False, method="percentile",
                              n_resamples=n_resamples, confidence_level=confidence,
                              rng=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    alpha = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        low = np.nanquantile(dist, alpha, axis=-1)
        high = np.nanquantile(dist, 1 - alpha, axis=-1)
    # A statistic that is the same for every resample has a point interval.
    low, high = np.minimum(low, observed), np.maximum(high, observed)
    if observed.ndim == 0:
        return Estimate(float(observed), float(low), float(high))
    return [Estimate(float(v), float(lo), float(hi))
            for v, lo, hi in zip(observed, low, high, strict=True)]


def mean_over_networks(values: np.ndarray, **kwargs) -> Estimate:
    """Mean of one value per network, with its bootstrap interval over networks."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"need one value per network, got shape {values.shape}")
    return bootstrap_networks(lambda idx: net_mean(values, idx), len(values), **kwargs)


def weakest(values: np.ndarray) -> np.ndarray:
    """Minimum over the first axis (layers): a claim "in every layer" holds if it holds in the
    weakest one. Applied inside each resample, the interval is that of the minimum."""
    return np.asarray(values).min(axis=0)


def strongest(values: np.ndarray) -> np.ndarray:
    """Maximum over the first axis (layers), e.g. the worst error of all layers."""
    return np.asarray(values).max(axis=0)


def identity(values: np.ndarray) -> np.ndarray:
    return np.asarray(values)


def over_networks(values: np.ndarray, n: int, pairs: bool,
                  reduce: Callable[[np.ndarray], np.ndarray] = identity, **kwargs) -> Estimate:
    """Estimate of ``reduce`` of the mean of ``values`` over networks: pair values (..., n, n)
    when ``pairs``, else one value per network (..., n)."""
    mean = pair_mean if pairs else net_mean
    return bootstrap_networks(lambda i: reduce(mean(values, i)), n, **kwargs)


def effect_over_networks(tt: np.ndarray, tu: np.ndarray, n: int,
                         reduce: Callable[[np.ndarray], np.ndarray] = identity,
                         sign: float = 1.0, **kwargs) -> Estimate:
    """Estimate of ``reduce`` of the training effect, sign * (mean over pairs of trained
    networks of ``tt`` minus mean over networks of ``tu``), both sides on the same resampled
    networks. ``sign=-1`` for distances (lower is more alike)."""
    return bootstrap_networks(
        lambda i: reduce(sign * (pair_mean(tt, i) - net_mean(tu, i))), n, **kwargs)


@dataclass(frozen=True)
class Comparison:
    """Trained vs trained beside trained vs untrained, for one statistic.

    ``effect`` = trained - untrained, resampled jointly; ``p_value``: two-sided sign-flip
    permutation test of the per-network differences (each trained network's mean over its
    trained partners minus its value against the untrained network)."""

    trained: Estimate
    untrained: Estimate
    effect: Estimate
    p_value: float


def check_pairs(tt: np.ndarray, tu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an (n, n) trained-vs-trained matrix (finite off the diagonal, symmetric) and an
    (n,) trained-vs-untrained vector."""
    tt = np.asarray(tt, dtype=np.float64)
    tu = np.asarray(tu, dtype=np.float64)
    n = len(tu)
    if tu.ndim != 1 or tt.shape != (n, n):
        raise ValueError(f"need tt of shape (n, n) and tu of shape (n,), got {tt.shape} and "
                         f"{tu.shape}")
    if n < 2:
        raise ValueError("comparing networks needs at least 2 trained networks")
    off = ~np.eye(n, dtype=bool)
    if not np.all(np.isfinite(tt[off])) or not np.all(np.isfinite(tu)):
        raise ValueError("pair statistics must be finite (a missing pair or a NaN value)")
    if not np.allclose(tt[off], tt.T[off]):
        raise ValueError("trained-vs-trained statistics must be symmetric")
    return tt, tu


def per_network_difference(tt: np.ndarray, tu: np.ndarray) -> np.ndarray:
    """For each trained network: its mean over trained partners minus its untrained value."""
    tt, tu = check_pairs(tt, tu)
    n = len(tu)
    off = ~np.eye(n, dtype=bool)
    return np.where(off, tt, 0.0).sum(1) / (n - 1) - tu


def sign_flip_test(d: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of mean(d) = 0 against a distribution symmetric about 0: every sign
    pattern of ``d`` (exact up to 2^16 patterns, otherwise 9,999 random ones)."""
    d = np.asarray(d, dtype=np.float64)
    if np.allclose(d, 0):
        return 1.0
    res = stats.permutation_test((d,), lambda x, axis=-1: np.mean(x, axis=axis),
                                 permutation_type="samples", vectorized=True,
                                 alternative="two-sided", n_resamples=9999,
                                 rng=np.random.default_rng(seed))
    return float(res.pvalue)


def compare(tt: np.ndarray, tu: np.ndarray, **kwargs) -> Comparison:
    """:class:`Comparison` of one statistic over ``n`` trained networks (see the module)."""
    tt, tu = check_pairs(tt, tu)
    est = bootstrap_networks(lambda idx: np.stack([
        pair_mean(tt, idx), net_mean(tu, idx), pair_mean(tt, idx) - net_mean(tu, idx)]),
        len(tu), **kwargs)
    return Comparison(est[0], est[1], est[2], sign_flip_test(per_network_difference(tt, tu)))


def shuffled(b: np.ndarray, seed: int = 0) -> np.ndarray:
    """The null partner: the rows (samples) of ``b`` in a random order, which destroys every
    sample-to-sample correspondence with another network while keeping ``b``'s marginals."""
    return np.asarray(b)[np.random.default_rng(seed).permutation(len(b))]


__all__ = ["CONFIDENCE", "Comparison", "Estimate", "bootstrap_networks", "check_pairs",
           "compare", "effect_over_networks", "identity", "mean_over_networks", "net_mean",
           "over_networks", "pair_mean", "per_network_difference", "shuffled", "sign_flip_test",
           "strongest", "weakest"]
