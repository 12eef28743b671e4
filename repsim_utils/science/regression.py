"""Affine least squares between two layers (samples x units): the fit of one layer from another
(model stitching's direct matching, Csiszárik et al. 2021) and its R^2, computed directly; the
registered measure :func:`repsim_utils.science.measures.linear_regression` computes the same R^2
from per-network bases, and the tests check the two against each other."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from repsim_utils.science.arrays import as_pair
from repsim_utils.science.prepared import check_cca_samples


def fit_affine(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine map from ``a`` (samples, p) to ``b`` (samples, q):
    W (p, q), c (q,) minimising sum_i ||a_i W + c - b_i||^2 (direct matching, Csiszárik et al.
    2021). Solved on centred data in float64 (``scipy.linalg.lstsq``, the minimum-norm W where
    units are dead or collinear), c = mean(b) - mean(a) W."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"expected (samples, units) arrays with the same samples, got "
                         f"{a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"an affine fit needs at least 2 samples, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("activations contain NaN or infinity")
    ma, mb = a.mean(0), b.mean(0)
    w = scipy.linalg.lstsq(a - ma, b - mb, lapack_driver="gelsd")[0]
    return w, mb - ma @ w


def r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of ``y`` from ``x`` by the affine least-squares map
    (:func:`fit_affine`),
    1 - sum ||y_i - yhat_i||^2 / sum ||y_i - mean(y)||^2 (all units pooled, so each weighs by its
    variance): in [0, 1], and 1 exactly when y is an affine map of x. In-sample, as CCA is: with
    p units of x over n samples, unrelated layers score about p / n, which the untrained pairs
    beside it carry (scored on held-out samples instead, near-dead units with a few nonzero
    samples get huge weights and the score runs to -1e20). Needs more samples than twice the
    units, as the CCA family (:func:`~repsim_utils.science.prepared.check_cca_samples`)."""
    x, y = as_pair(x, y, min_samples=4)
    check_cca_samples(len(x), x.shape[1], y.shape[1], "the linear rung (R^2)")
    w, c = fit_affine(x, y)
    y = y.astype(np.float64)
    total = float(((y - y.mean(0)) ** 2).sum())
    if total == 0:
        raise ValueError("the target layer has no variance (every unit dead): R^2 is undefined")
    return 1.0 - float(((y - (x @ w + c)) ** 2).sum()) / total


__all__ = ["fit_affine", "r2"]
