"""Riemannian geometry of a layer's image of an input manifold (Brandon, Chadwick & Pellegrino
2025, "Emergent Riemannian geometry over learning discrete computations on continuous
manifolds", NeurReps; standard definitions from do Carmo, "Riemannian Geometry", 1992).

Coordinates theta in U (a subset of R^k) are mapped by phi = h_l o iota into layer l (R^n).
With J = d phi / d theta (n x k):

- pullback metric g = J^T J (k x k); volume element sqrt(det g) (local magnification);
  eigenvectors of g: the input directions the layer stretches; the stretch of layer l relative
  to layer l-1: generalised eigenvalues of (g_l, g_{l-1});
- Gaussian curvature (k = 2) by the Gauss equation with the second fundamental form
  II_ij = P_N d^2 phi / d theta_i d theta_j (P_N: projection onto the normal space):
  K = (<II_11, II_22> - |II_12|^2) / det g;
- scalar curvature (any k), intrinsically, from g and its first and second derivatives:
  Christoffel symbols, the Riemann tensor, Ricci, R = g^{ij} Ric_ij (R = 2K when k = 2).

Maps are callables from (batch, k) to (batch, n). Derivatives are exact, by forward-mode
autograd (``torch.func.jacfwd``) vectorised over points with ``torch.func.vmap``: no finite
differences, no loop over points. Use smooth activations: a ReLU network is piecewise linear,
so its metric is piecewise constant and its curvature zero almost everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import jacfwd, vmap

Map = Callable[[torch.Tensor], torch.Tensor]


def _pointwise(f: Map) -> Map:
    """theta (k,) -> f(theta[None])[0] (n,): a single-point view of a batched map."""
    return lambda t: f(t[None])[0]


def jacobian(f: Map, theta: torch.Tensor) -> torch.Tensor:
    """J (batch, n, k) of f at each point of theta (batch, k)."""
    return vmap(jacfwd(_pointwise(f)))(theta)


def pullback_metric(f: Map, theta: torch.Tensor) -> torch.Tensor:
    """g = J^T J (batch, k, k), the metric that f induces on the coordinates."""
    jac = jacobian(f, theta)
    return jac.transpose(-1, -2) @ jac


def volume_element(g: torch.Tensor) -> torch.Tensor:
    """sqrt(det g) (batch,): the local magnification of k-volume."""
    return torch.sqrt(torch.linalg.det(g))


def metric_eigen(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (batch, k), ascending, and unit eigenvectors (batch, k, k), as columns, of
    g: the squared stretch factors and the input directions stretched."""
    return torch.linalg.eigh(g)


def relative_stretch(g: torch.Tensor, g_prev: torch.Tensor) -> torch.Tensor:
    """Generalised eigenvalues (batch, k), ascending, of g v = lambda g_prev v: the squared
    stretch that a layer adds to the previous layer's metric (all 1: an isometry)."""
    chol = torch.linalg.cholesky(g_prev)
    inner = torch.linalg.solve_triangular(chol, g, upper=False)
    inner = torch.linalg.solve_triangular(chol, inner.transpose(-1, -2), upper=False)
    return torch.linalg.eigvalsh(inner)


def second_derivatives(f: Map, theta: torch.Tensor) -> torch.Tensor:
    """d^2 f / d theta_i d theta_j (batch, n, k, k), forward over forward mode (k is small)."""
    return vmap(jacfwd(jacfwd(_pointwise(f))))(theta)


def gaussian_curvature(f: Map, theta: torch.Tensor) -> torch.Tensor:
    """Gaussian curvature K (batch,) of the 2-D image of f, by the Gauss equation
    K = (<II_11, II_22> - |II_12|^2) / det g, II_ij the normal part of the second derivatives.
    """
    if theta.shape[-1] != 2:
        raise ValueError(f"Gaussian curvature needs k = 2 coordinates, got {theta.shape[-1]}; "
                         f"use scalar_curvature")
    jac = jacobian(f, theta)
    hess = second_derivatives(f, theta)
    g = jac.transpose(-1, -2) @ jac
    ginv = torch.linalg.inv(g)

    def normal_inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # a^T P_N b = a.b - (J^T a)^T g^-1 (J^T b), P_N = I - J g^-1 J^T
        ja = torch.einsum("bnk,bn->bk", jac, a)
        jb = torch.einsum("bnk,bn->bk", jac, b)
        return (a * b).sum(-1) - torch.einsum("bk,bkl,bl->b", ja, ginv, jb)

    h11, h22, h12 = hess[..., 0, 0], hess[..., 1, 1], hess[..., 0, 1]
    return (normal_inner(h11, h22) - normal_inner(h12, h12)) / torch.linalg.det(g)


def scalar_curvature(f: Map, theta: torch.Tensor) -> torch.Tensor:
    """Scalar curvature R (batch,) of the pullback metric, for any number k of coordinates,
    from g and its derivatives (third derivatives of f by nested forward-mode autograd):

    Gamma^m_ij = 1/2 g^ml (d_i g_lj + d_j g_li - d_l g_ij),
    R^r_smn = d_m Gamma^r_ns - d_n Gamma^r_ms + Gamma^r_ml Gamma^l_ns - Gamma^r_nl Gamma^l_ms,
    Ric_sn = R^r_srn,  R = g^sn Ric_sn   (a sphere of radius r: R = k (k - 1) / r^2).
    """
    point = _pointwise(f)

    def metric(t: torch.Tensor) -> torch.Tensor:
        jac = jacfwd(point)(t)
        return jac.T @ jac

    def christoffel(t: torch.Tensor) -> torch.Tensor:
        g, dg = metric(t), jacfwd(metric)(t)  # dg[i, j, l] = d_l g_ij
        ginv = torch.linalg.inv(g)
        # lower[l, i, j] = 1/2 (d_i g_lj + d_j g_li - d_l g_ij)
        lower = 0.5 * (dg.permute(0, 2, 1) + dg - dg.permute(2, 0, 1))
        return torch.einsum("ml,lij->mij", ginv, lower)  # Gamma[m, i, j]

    def scalar(t: torch.Tensor) -> torch.Tensor:
        gam = christoffel(t)
        dgam = jacfwd(christoffel)(t)  # dgam[r, n, s, m] = d_m Gamma^r_ns
        riemann = (torch.einsum("rnsm->rsmn", dgam) - torch.einsum("rmsn->rsmn", dgam)
                   + torch.einsum("rml,lns->rsmn", gam, gam)
                   - torch.einsum("rnl,lms->rsmn", gam, gam))
        ricci = torch.einsum("rsrn->sn", riemann)
        return torch.einsum("sn,sn->", torch.linalg.inv(metric(t)), ricci)

    return vmap(scalar)(theta)


def layer_maps(net: torch.nn.Module, embedding: Map | None = None,
               layers: tuple[str, ...] | None = None) -> dict[str, Map]:
    """{layer name: theta -> activations of that layer} for a :class:`~repsim_utils.nets.models.
    Network` (or any module with a ``layers`` nn.Sequential of named children), composed with
    the coordinate ``embedding`` iota (identity when None). ``layers`` defaults to the net's
    hidden layers plus its output."""
    seq = net.layers
    names = [n for n, _ in seq.named_children()]
    wanted = layers if layers is not None else (*getattr(net, "hidden", ()), names[-1])
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; the network has {names}")

    def upto(name: str) -> Map:
        stop = names.index(name) + 1
        stack = torch.nn.Sequential(*list(seq.children())[:stop])
        return (lambda t: stack(embedding(t))) if embedding is not None else stack

    return {name: upto(name) for name in wanted}


__all__ = ["gaussian_curvature", "jacobian", "layer_maps", "metric_eigen", "pullback_metric",
           "relative_stretch", "scalar_curvature", "second_derivatives", "volume_element"]
