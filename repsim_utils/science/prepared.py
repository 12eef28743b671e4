"""One layer's per-network work, done once for every pair the layer is in.

Comparing S networks pairwise costs S(S - 1)/2 comparisons per layer, but most of each
comparison depends on one network only: its centred activations and their norms, its
orthonormal basis, its RDM. Here each measure is split into ``prepare`` (per network and layer)
and ``between`` (per pair: only the cross terms), so that a pair costs about one cross-product
X^T Y of the two layers, 2 n p q flops, plus work in units x units:

=============  ==================================================  ============================
measure        prepared once per layer                             per pair
=============  ==================================================  ============================
linear CKA     centred Z, ||Z^T Z||_F                              ||Z_a^T Z_b||_F^2
debiased CKA   centred Z, row norms q_i = |z_i|^2, HSIC_u(K, K)    Z_a^T Z_b, Z_a^T q_b, Z_b^T q_a
CCA, SVCCA     orthonormal basis U of the centred span (SVD)       singular values of U_a^T U_b
PWCCA          U and U^T Z (the neurons in U's coordinates)        SVD of U_a^T U_b
Procrustes     centred Z / ||Z||_F                                 nuclear norm of Z_a^T Z_b
RSA            ranks of the RDM's upper triangle                   Pearson r of two rank vectors
unit matching  standardised columns (dead columns flagged)         Z_a^T Z_b / n, semi-matching
=============  ==================================================  ============================

:mod:`repsim_utils.science.measures` registers each ``(prepare, between)`` with its measure;
``between(prepare(a), prepare(b))`` equals the measure of ``(a, b)`` to rounding (tested for
every registered measure, against the streamed or library computation where there is one).
A prepared layer holds a float64 copy of the activations: compare network by network with one
measure's layers prepared at a time.

Devices: every ``prepare`` above but RSA's takes ``device``; None keeps NumPy arrays, a torch
device ("cuda", or "cpu" for the tests) holds the prepared layer as a float64 torch tensor
there, and ``between`` then runs on that device (the code is written once against the array
API standard, through ``array_api_compat``). Inputs are checked in NumPy before any transfer;
the results are Python floats (and NumPy arrays for the small per-pair matrices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from repsim_utils.science import matching
from repsim_utils.science.arrays import as_pair


def _as_layer(a: np.ndarray, min_samples: int = 1) -> np.ndarray:
    return as_pair(a, a, min_samples)[0]


def _same_samples(x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise ValueError(f"the two layers are over different samples: {len(x)} and {len(y)} rows")


def check_device(device: str | None) -> None:
    """Refuse, before any work, a device that torch cannot use (None: NumPy, always there)."""
    if device is None:
        return
    import torch

    dev = torch.device(device)  # raises on a malformed name
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but torch sees no CUDA device")


def run_device(name: str) -> str | None:
    """Where a run's comparisons are computed, from its ``device`` parameter (cpu, cuda or
    auto, as for training): None (NumPy) for cpu and for auto without a GPU, else the CUDA
    device."""
    if name == "cpu":
        return None
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else None
    check_device(name)
    return name


def on_device(z: np.ndarray, device: str | None) -> Any:
    """``z`` (checked, float64) unchanged for device None, else a float64 torch tensor there."""
    if device is None:
        return z
    import torch

    return torch.as_tensor(z, dtype=torch.float64, device=device)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of a (small) result computed on any device."""
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()


def centred(a: np.ndarray, device: str | None = None) -> Any:
    """``a`` in float64 minus its column means (two passes: exact to rounding however large
    the mean is against the spread), on ``device``."""
    z = on_device(_as_layer(a), device)
    return z - array_namespace(z).mean(z, axis=0)


# ---------------------------------------------------------------------------------------------
# CKA


def hsic_u(n: int, ab: np.ndarray, sa: np.ndarray, sb: np.ndarray, qa: float, qb: float,
           qaqb: float, a_qb: np.ndarray, b_qa: np.ndarray) -> float:
    """Unbiased HSIC (Song et al. 2012) of linear kernels K = X X^T, L = Y Y^T over n samples:
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)), K~ = K with a
    zero diagonal, every term a function of sums over samples: ab = X^T Y, sa = X^T 1,
    sb = Y^T 1, qa = sum_i |x_i|^2, qb = sum_i |y_i|^2, qaqb = sum_i |x_i|^2 |y_i|^2,
    a_qb = X^T q_y, b_qa = Y^T q_x."""
    tr = (ab * ab).sum() - qaqb  # tr(K L) minus the diagonal terms
    ka = sa @ sa - qa  # 1' K~ 1
    lb = sb @ sb - qb
    # 1' K~ L~ 1 = sum_i (x_i.s_x - |x_i|^2)(y_i.s_y - |y_i|^2)
    kl = sa @ ab @ sb - sa @ a_qb - sb @ b_qa + qaqb
    return float((tr + ka * lb / ((n - 1) * (n - 2)) - 2 * kl / (n - 2)) / (n * (n - 3)))



@dataclass(frozen=True)
class CkaLayer:
    """Centred activations Z and ||Z^T Z||_F."""

    z: np.ndarray
    norm: float


def cka_layer(a: np.ndarray, device: str | None = None) -> CkaLayer:
    z = centred(a, device)
    return CkaLayer(z, float(array_namespace(z).linalg.matrix_norm(z.T @ z)))


def linear_cka_between(x: CkaLayer, y: CkaLayer) -> float:
    """Linear CKA (Kornblith et al. 2019): ||Z_x^T Z_y||_F^2 / (||Z_x^T Z_x||_F ||Z_y^T Z_y||_F)."""
    _same_samples(x.z, y.z)
    den = x.norm * y.norm
    if den == 0:
        raise ValueError("a representation is constant over the samples: CKA undefined")
    return float(array_namespace(x.z).linalg.matrix_norm(x.z.T @ y.z)) ** 2 / den


@dataclass(frozen=True)
class HsicLayer:
    """Centred Z, its column sums s (zero up to rounding; kept so the formula is the streamed
    one's), squared row norms q and the unbiased HSIC of Z with itself."""

    z: np.ndarray
    s: np.ndarray
    q: np.ndarray
    hsic: float


def hsic_layer(a: np.ndarray, device: str | None = None) -> HsicLayer:
    z = on_device(_as_layer(a, min_samples=4), device)  # the unbiased HSIC divides by n - 3
    xp = array_namespace(z)
    z = z - xp.mean(z, axis=0)
    s, q = xp.sum(z, axis=0), xp.sum(z * z, axis=1)
    zq = z.T @ q
    qs = float(xp.sum(q))
    self_hsic = hsic_u(z.shape[0], z.T @ z, s, s, qs, qs, float(q @ q), zq, zq)
    if self_hsic <= 0:
        raise ValueError("a representation has no variance left after debiasing")
    return HsicLayer(z, s, q, self_hsic)


def debiased_cka_between(x: HsicLayer, y: HsicLayer) -> float:
    """Debiased CKA: HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L)) (Song et al. 2012)."""
    _same_samples(x.z, y.z)
    xy = hsic_u(x.z.shape[0], x.z.T @ y.z, x.s, y.s, float(x.q.sum()), float(y.q.sum()),
                float(x.q @ y.q), x.z.T @ y.q, y.z.T @ x.q)
    return xy / float(np.sqrt(x.hsic * y.hsic))


# ---------------------------------------------------------------------------------------------
# CCA family


def basis(z: Any, keep: float | None = None, rtol: float = 1e-10) -> tuple[Any, Any, Any]:
    """Orthonormal basis U (samples, r) of the centred columns of z, with the singular values
    s and right vectors V (units, r); rank r by a relative tolerance (no regulariser), or the
    fewest components that explain ``keep`` of the variance. On z's device."""
    xp = array_namespace(z)
    u, s, vt = xp.linalg.svd(z - xp.mean(z, axis=0), full_matrices=False)
    sv = to_numpy(s)
    if sv.size == 0 or sv[0] == 0:
        raise ValueError("a representation is constant over the samples")
    r = int(np.sum(sv > rtol * sv[0]))
    if keep is not None:
        var = np.cumsum(sv[:r] ** 2) / np.sum(sv[:r] ** 2)
        r = int(np.searchsorted(var, keep) + 1)
    return u[:, :r], s[:r], vt[:r].T


def check_cca_samples(n: int, rank_a: int, rank_b: int, what: str = "") -> None:
    """Refuse CCA where the data cannot fail: centred, n samples span n - 1 dimensions, so two
    spans of ranks r_a + r_b > n - 1 must intersect and at least r_a + r_b - (n - 1) canonical
    correlations are 1 whatever the data (independent noise with n <= units scores 1.0). This
    is the condition on the bases actually compared (after SVCCA's truncation); the chapters
    check it on the layers' widths before any work. Google's reference ``cca_core`` refuses such
    input too; no regulariser is applied, so no value is silently changed."""
    if rank_a + rank_b > n - 1:
        forced = rank_a + rank_b - (n - 1)
        raise ValueError(
            f"CCA{' of ' + what if what else ''} needs more samples than the two sides' ranks "
            f"together: {n} samples (n - 1 = {n - 1} centred dimensions) for ranks {rank_a} + "
            f"{rank_b}, so {forced} canonical correlation(s) would be 1 whatever the data; use "
            f"at least {rank_a + rank_b + 1} samples (max_samples) or narrower layers")



@dataclass(frozen=True)
class CcaLayer:
    """Orthonormal basis U (samples, rank) of the centred span; for PWCCA also U^T Z, the
    centred neurons in U's coordinates (rank, units)."""

    u: Any
    neurons: Any = None

    @property
    def rank(self) -> int:
        return self.u.shape[1]


def cca_layer(a: np.ndarray, keep: float | None = None, neurons: bool = False,
              device: str | None = None) -> CcaLayer:
    """The basis of :func:`basis` (rank by a relative tolerance,
    or SVCCA's fewest components explaining ``keep`` of the variance)."""
    z = on_device(_as_layer(a, min_samples=4), device)
    u = basis(z, keep)[0]
    return CcaLayer(u, u.T @ (z - array_namespace(z).mean(z, axis=0)) if neurons else None)


def canonical_correlations_between(x: CcaLayer, y: CcaLayer) -> np.ndarray:
    """rho_1 >= rho_2 >= ...: the singular values of U_x^T U_y, refused where the ranks leave
    the spans no room to differ (:func:`check_cca_samples`)."""
    _same_samples(x.u, y.u)
    check_cca_samples(x.u.shape[0], x.rank, y.rank)
    return np.clip(to_numpy(array_namespace(x.u).linalg.svdvals(x.u.T @ y.u)), 0.0, 1.0)


def pwcca_between(x: CcaLayer, y: CcaLayer) -> float:
    """PWCCA (Morcos et al. 2018): sum_k w_k rho_k / sum_k w_k, w_k = sum_j |<h_k, z_j>| with
    h_k = U_x p_k the canonical variates of x, so <h_k, z_j> = (P^T U_x^T Z_x)_kj."""
    if x.neurons is None:
        raise ValueError("PWCCA needs the first layer prepared with neurons=True")
    _same_samples(x.u, y.u)
    check_cca_samples(x.u.shape[0], x.rank, y.rank)
    xp = array_namespace(x.u)
    p, rho, _ = xp.linalg.svd(x.u.T @ y.u, full_matrices=False)
    w = to_numpy(xp.sum(xp.abs(p.T @ x.neurons), axis=1))
    return float(np.sum(w * np.clip(to_numpy(rho), 0.0, 1.0)) / np.sum(w))


@dataclass(frozen=True)
class RegressionLayer:
    """The basis U (samples, rank) of :func:`basis` and the singular values s: the centred
    layer is U diag(s) V^T."""

    u: Any
    s: Any


def regression_layer(a: np.ndarray, device: str | None = None) -> RegressionLayer:
    """The basis and singular values of the centred layer (:func:`basis`)."""
    u, s, _ = basis(on_device(_as_layer(a, min_samples=4), device))
    return RegressionLayer(u, s)


def linear_regression_between(x: RegressionLayer, y: RegressionLayer) -> float:
    """The mean of the least-squares R^2 of each layer from the other. Projecting the centred
    Y = U_y S_y V_y^T on the span of the centred X leaves
    R^2(y | x) = ||U_x^T U_y S_y||_F^2 / ||S_y||_F^2, so both directions need one cross-product
    U_x^T U_y (refused where the ranks leave the spans no room to differ, as CCA)."""
    _same_samples(x.u, y.u)
    check_cca_samples(x.u.shape[0], x.u.shape[1], y.u.shape[1], "linear regression")
    xp = array_namespace(x.u)
    c = x.u.T @ y.u
    fwd = float(xp.sum((c * y.s[None, :]) ** 2)) / float(xp.sum(y.s ** 2))
    bwd = float(xp.sum((c.T * x.s[None, :]) ** 2)) / float(xp.sum(x.s ** 2))
    return 0.5 * (fwd + bwd)


# ---------------------------------------------------------------------------------------------
# Procrustes, RSA, unit matching


def procrustes_layer(a: np.ndarray, device: str | None = None) -> Any:
    """Centred activations scaled to unit Frobenius norm."""
    z = centred(a, device)
    norm = float(array_namespace(z).linalg.matrix_norm(z))
    if norm == 0:
        raise ValueError("a representation is constant over the samples")
    return z / norm


def procrustes_between(x: Any, y: Any) -> float:
    """cos of the angular Procrustes distance (Williams et al. 2021): ||Z_x^T Z_y||_*, at most
    1 (Cauchy-Schwarz; the cap removes only rounding)."""
    _same_samples(x, y)
    return min(1.0, float(array_namespace(x).linalg.svdvals(x.T @ y).sum()))


def rsa_between(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation of two RDMs, from their ranks
    (:func:`~repsim_utils.science.measures.rdm_ranks`): Pearson's r of the ranks."""
    if x.shape != y.shape:
        raise ValueError("the two RDMs are over different numbers of samples")
    return float(np.corrcoef(x, y)[0, 1])


@dataclass(frozen=True)
class UnitsLayer:
    """Standardised columns (z - mean) / ||z - mean|| (zero for dead units) and the dead mask
    (:data:`repsim_utils.science.matching.DEAD_TOL`)."""

    z: Any
    dead: np.ndarray


def units_layer(a: np.ndarray, device: str | None = None) -> UnitsLayer:
    z = centred(a, device)
    xp = array_namespace(z)
    norm = to_numpy(xp.sqrt(xp.sum(z * z, axis=0)))
    dead = matching._dead(norm)
    scale = np.where(dead, 0.0, 1.0 / np.where(dead, 1.0, norm))
    return UnitsLayer(z * xp.asarray(scale, device=device_of(z)), dead)


def correlation_between(x: UnitsLayer, y: UnitsLayer) -> np.ndarray:
    """Pearson correlation matrix (units_x, units_y); rows and columns of dead units NaN, as
    :func:`repsim_utils.science.matching.correlation`."""
    _same_samples(x.z, y.z)
    corr = to_numpy(x.z.T @ y.z)
    corr[x.dead, :] = np.nan
    corr[:, y.dead] = np.nan
    return corr


def unit_matching_between(x: UnitsLayer, y: UnitsLayer) -> float:
    """Mean semi-matched correlation (Li et al. 2016), dead units counting 0."""
    return matching.semi_match(correlation_between(x, y)).mean


__all__ = ["CcaLayer", "CkaLayer", "HsicLayer", "RegressionLayer", "UnitsLayer", "basis",
           "canonical_correlations_between", "cca_layer", "centred", "check_cca_samples",
           "check_device", "cka_layer", "correlation_between", "debiased_cka_between", "hsic_layer",
           "hsic_u", "linear_cka_between", "linear_regression_between", "on_device",
           "procrustes_between", "procrustes_layer", "pwcca_between", "regression_layer",
           "rsa_between", "run_device", "to_numpy", "unit_matching_between", "units_layer"]
