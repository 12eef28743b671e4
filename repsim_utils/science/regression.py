"""Affine least squares between two layers (samples x units): the fit of one layer from another
(model stitching's direct matching, Csiszárik et al. 2021) and its R^2, computed directly; the
registered measure :func:`repsim_utils.science.measures.linear_regression` computes the same R^2
from per-network bases, and the tests check the two against each other."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from repsim_utils.science.arrays import as_pair
from repsim_utils.science.prepared import check_cca_samples


class AffineFit:
    """The per-sender work of affine least squares from ``a`` (samples, p): its column means and
    the thin SVD of the centred a = U S V^T, rank by the relative tolerance eps * max(n, p) of
    LAPACK's ``gelsd`` (NumPy's and SciPy's ``lstsq``). :meth:`solve` then fits any target on
    the same samples with two products, so one sender serves every receiver."""

    def __init__(self, a: np.ndarray) -> None:
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2 or len(a) < 2:
            raise ValueError(f"an affine fit needs a (samples >= 2, units) array, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("activations contain NaN or infinity")
        self.mean = a.mean(0)
        u, s, vt = scipy.linalg.svd(a - self.mean, full_matrices=False)
        keep = s > np.finfo(np.float64).eps * max(a.shape) * s[0] if s.size and s[0] > 0 else \
            np.zeros(s.shape, dtype=bool)
        self.u, self.s, self.vt = u[:, keep], s[keep], vt[keep]
        self.n = len(a)

    def solve(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """W (p, q), c (q,) minimising sum_i ||a_i W + c - b_i||^2 (the minimum-norm W):
        W = V S^-1 U^T (b - mean(b)), c = mean(b) - mean(a) W."""
        b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or len(b) != self.n:
            raise ValueError(f"expected a ({self.n}, units) target with the sender's samples, "
                             f"got {b.shape}")
        if not np.isfinite(b).all():
            raise ValueError("activations contain NaN or infinity")
        mb = b.mean(0)
        w = self.vt.T @ ((self.u.T @ (b - mb)) / self.s[:, None])
        return w, mb - self.mean @ w


def fit_affine(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine map from ``a`` (samples, p) to ``b`` (samples, q):
    W (p, q), c (q,) minimising sum_i ||a_i W + c - b_i||^2 (direct matching, Csiszárik et al.
    2021), in float64 on centred data, the minimum-norm W where units are dead or collinear
    (:class:`AffineFit`; checked against ``scipy.linalg.lstsq`` in the tests)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"expected (samples, units) arrays with the same samples, got "
                         f"{a.shape} and {b.shape}")
    return AffineFit(a).solve(b)


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


__all__ = ["AffineFit", "fit_affine", "r2"]
