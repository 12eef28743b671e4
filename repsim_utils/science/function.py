"""What two networks *do* on the same inputs, the functional ground truth against which the
representational measures are checked (Klabunde et al. 2025, ReSi; Ding, Denain & Steinhardt
2021), and the rank correlation that does the checking.

- :func:`disagreement`: the fraction of inputs whose predicted classes differ,
  mean_i [argmax f_a(x_i) != argmax f_b(x_i)];
- :func:`accuracy_gap`: |acc_a - acc_b|;
- :func:`rank_correlation`: Spearman's rho of two statistics over the pairs of a set of
  networks (its interval over networks is
  :func:`repsim_utils.inference.stats.rank_correlation_over_networks`).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def predictions(logits: np.ndarray) -> np.ndarray:
    """Predicted classes of (inputs, classes) logits."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"expected (inputs, classes) logits, got shape {logits.shape}")
    return logits.argmax(1)


def disagreement(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Fraction of inputs on which the two networks predict different classes."""
    pa, pb = predictions(logits_a), predictions(logits_b)
    if pa.shape != pb.shape:
        raise ValueError(f"the two networks saw different inputs: {pa.shape} and {pb.shape}")
    return float(np.mean(pa != pb))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of inputs predicted correctly."""
    return float(np.mean(predictions(logits) == np.asarray(labels)))


def accuracy_gap(acc_a: float, acc_b: float) -> float:
    """|acc_a - acc_b|."""
    return abs(float(acc_a) - float(acc_b))


def _upper(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """m[i, j] for the pairs i < j of the networks ``idx`` (distinct indices)."""
    i, j = np.triu_indices(len(idx), k=1)
    return m[idx[i], idx[j]]


def rank_correlation(x: np.ndarray, y: np.ndarray, idx: np.ndarray | None = None) -> float:
    """Spearman's rho between two statistics over the pairs i < j of the networks ``idx`` (all
    when None), from symmetric (n, n) pair matrices; NaN where either statistic is constant
    over those pairs (no order to compare)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise ValueError(f"expected two (n, n) pair matrices, got {x.shape} and {y.shape}")
    idx = np.arange(len(x)) if idx is None else np.asarray(idx)
    return spearman(_upper(x, idx), _upper(y, idx))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two paired samples; NaN with fewer than 3 or where either is
    constant (no order to compare)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(sps.spearmanr(a, b).statistic)


__all__ = ["accuracy", "accuracy_gap", "disagreement", "predictions", "rank_correlation",
           "spearman"]
