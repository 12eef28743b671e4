"""Subspace matching of two layers (Wang, Hu, Gu, Hu, Wu, He & Hopcroft 2018, "Towards
understanding learning representations: to what extent do different neural networks learn the
same representation", NeurIPS).

Neuron v of a layer is its activation vector z_v over d samples (a column of the (samples,
units) array). A pair of neuron sets (X', Y') is an *epsilon-approximate match* when every
v in X' has dist(z_v, span z_Y') <= eps ||z_v|| and every u in Y' has
dist(z_u, span z_X') <= eps ||z_u||. Matches are closed under union, so there is a unique
maximum match (X*, Y*), found by Algorithm 1: alternately remove from X' all neurons far from
span z_Y' and from Y' all neurons far from span z_X', until nothing changes. The maximum match
similarity is MMS = (|X*| + |Y*|) / (|X| + |Y|); zero-norm (dead) neurons count as unmatched.

Speed: distances to spans depend only on inner products, so one factorisation of the stacked
vectors [Z_X, Z_Y] (float64; a thin QR, or the eigendecomposition of their Gram matrix) gives
coordinates R in which every distance in R^d is the same distance between columns of R, a
(|X| + |Y|)-dimensional problem. :class:`SubspaceMatcher`
factors once and answers every question (eps grids, bisections, the thousands of maximum-match
calls of the simple-match search) in that small space.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from repsim_utils.science.arrays import as_pair

_OTHER = {"x": "y", "y": "x"}


@functools.cache
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _small_space(method: Callable) -> Callable:
    """Run ``method`` with BLAS on one thread: the small-space work is many products and
    factorisations of a few hundred rows, where threads cost more than they give (3-4x slower
    with two threads on 2 cores, measured on the MNIST-1D chapter's layers)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _blas().limit(limits=1, user_api="blas"):
            return method(*args, **kwargs)
    return wrapper

#: Columns whose norm is below this fraction of the layer's largest norm are dead (zero-norm).
DEAD_TOL = 1e-10


@dataclass(frozen=True)
class MaximumMatch:
    """The maximum eps-match: unit indices of X and of Y (into the original layers)."""

    x: np.ndarray
    y: np.ndarray
    n_x: int
    n_y: int

    @property
    def similarity(self) -> float:
        """MMS = (|X*| + |Y*|) / (|X| + |Y|), dead neurons in the denominator."""
        return (len(self.x) + len(self.y)) / (self.n_x + self.n_y)

    @property
    def size(self) -> int:
        return len(self.x) + len(self.y)


class SubspaceMatcher:
    """Maximum and minimal eps-matches between layers ``x`` (samples, units_x) and ``y``
    (samples, units_y), computed in the small space of one factorisation of the stacked unit
    vectors (see :func:`_coordinates`).

    ``center=True`` subtracts each neuron's mean over samples first (the study's extension:
    raw ReLU vectors share a large mean component). ``device`` (a torch device, e.g. "cuda";
    None: NumPy) is where the one product over samples is computed, the stacked Gram matrix
    (or QR); everything after it lives in the small space, on the CPU.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, center: bool = False,
                 method: str = "gram", device: str | None = None):
        x, y = as_pair(x, y)
        if center:
            x, y = x - x.mean(0), y - y.mean(0)
        self.n_x, self.n_y = x.shape[1], y.shape[1]
        if len(x) < self.n_x + self.n_y:
            warnings.warn(f"{len(x)} samples for {self.n_x} + {self.n_y} units: the spans are "
                          f"trivially large and matches meaningless; use many more samples "
                          f"than units", RuntimeWarning, stacklevel=2)
        if method not in ("gram", "qr"):
            raise ValueError(f"method must be 'gram' or 'qr', got {method!r}")
        z = np.hstack([x, y])
        r = _coordinates(z, method, device)
        norms = np.linalg.norm(r, axis=0)
        top = norms.max(initial=0.0)
        alive = norms > DEAD_TOL * top if top > 0 else np.zeros(len(norms), dtype=bool)
        self._norms = norms
        self._gram = r.T @ r
        self.alive_x = np.flatnonzero(alive[: self.n_x])
        self.alive_y = np.flatnonzero(alive[self.n_x:])
        self._r = r
        self._screens: dict[tuple[str, bytes, bytes], tuple] = {}
        self._found: dict[float, MaximumMatch] = {}  # maximum matches by eps

    @functools.cached_property
    def _sides(self) -> tuple[dict[tuple[str, str], np.ndarray], dict[str, np.ndarray]]:
        """Every span searched is a subspace of span(X) or of span(Y); rotating into an
        orthonormal basis of each (exact) shrinks the factorisations to rank(X) or rank(Y)
        rows. Returns (inside, outside2): ``inside[b, s]`` the neurons of side s in the
        coordinates of span(b)'s basis, ``outside2[b]`` the fixed squared residual of the other
        side's neurons outside span(b), added back in `_resid2`. Computed on first use: a
        maximum match whose screen is sure of every neuron (one eps, as the standard-measures
        chapter's MMS) never needs it."""
        cols = {"x": self._r[:, : self.n_x], "y": self._r[:, self.n_x:]}
        inside, outside2 = {}, {}
        for b, t in (("x", "y"), ("y", "x")):
            u = _svd_basis(cols[b])[0]
            inside[b, b] = u.T @ cols[b]
            inside[b, t] = u.T @ cols[t]
            outside2[b] = np.sum((cols[t] - u @ inside[b, t]) ** 2, axis=0)
        return inside, outside2

    @property
    def _in(self) -> dict[tuple[str, str], np.ndarray]:
        return self._sides[0]

    @property
    def _outside2(self) -> dict[str, np.ndarray]:
        return self._sides[1]

    # -- distances --------------------------------------------------------------------------

    def _offset(self, side: str) -> int:
        """Where ``side``'s units start in the stacked [X, Y] columns."""
        return 0 if side == "x" else self.n_x

    def _resid2(self, side: str, idx: np.ndarray, basis_side: str, q: np.ndarray
                ) -> np.ndarray:
        """Squared distances of neurons ``idx`` of ``side`` to the span of the orthonormal
        columns ``q``, given in the coordinates of ``basis_side``'s layer span."""
        v = self._in[basis_side, side][:, idx]
        resid = np.sum((v - q @ (q.T @ v)) ** 2, axis=0)
        if side != basis_side:
            resid += self._outside2[basis_side][idx]
        return resid

    def _relative_distance(self, side: str, idx: np.ndarray, other: np.ndarray) -> np.ndarray:
        """dist(z_v, span z_other) / ||z_v|| for each v in ``idx`` of ``side``."""
        b = _OTHER[side]
        if len(other) == 0:
            return np.ones(len(idx))
        q = _span(self._in[b, b][:, other])[0]
        return np.sqrt(self._resid2(side, idx, b, q)) / self._norms[self._offset(side) + idx]

    def _screen(self, side: str, idx: np.ndarray, other: np.ndarray
                ) -> tuple[np.ndarray, float, np.ndarray]:
        """The normal-equation screen of `_within` for neurons ``idx`` of ``side`` against
        span z_other, independent of eps and so kept for every later eps (an eps grid, a
        bisection and the simple-match searches repeat the same (idx, other) sets: the first
        round of Algorithm 1 is the same at every eps). Returns (rel2, band, exact): the
        screened squared relative distances, their rounding band, and the exact relative
        distances computed so far (NaN where not yet needed)."""
        key = (side, idx.tobytes(), other.tobytes())
        hit = self._screens.get(key)
        if hit is not None:
            return hit
        if len(self._screens) >= SCREEN_CACHE:
            self._screens.clear()
        exact = np.full(len(idx), np.nan)
        ov = self._offset(side) + idx
        ob = self._offset(_OTHER[side]) + other
        try:
            chol = np.linalg.cholesky(self._gram[np.ix_(ob, ob)])
        except np.linalg.LinAlgError:  # rank-deficient span: every neuron exactly
            chol = None
        if chol is not None:
            diag = np.diag(chol)
            cond = (diag.max() / diag.min()) ** 2
        if chol is None or cond > GRAM_COND_LIMIT:
            hit = (np.zeros(len(idx)), np.inf, exact)
        else:
            w = scipy.linalg.solve_triangular(chol, self._gram[np.ix_(ob, ov)], lower=True)
            rel2 = 1.0 - np.sum(w**2, axis=0) / self._norms[ov] ** 2
            hit = (rel2, 1e3 * np.finfo(float).eps * cond, exact)
        self._screens[key] = hit
        return hit

    def _within(self, side: str, idx: np.ndarray, other: np.ndarray, eps: float) -> np.ndarray:
        """Mask of the neurons ``idx`` of ``side`` within eps of span z_other.

        A screen through the normal equations on the precomputed Gram matrix (one Cholesky of
        |other| x |other|, no product over coordinates; `_screen`), with every neuron whose
        squared relative distance lies within the screen's rounding error of eps^2 (about
        machine epsilon x cond(Gram), Higham 2002, ch. 20, with a 1000x safety factor), and
        every ill-conditioned case, recomputed exactly by `_relative_distance`."""
        if len(other) == 0:
            return np.zeros(len(idx), dtype=bool)
        rel2, band, exact = self._screen(side, idx, other)
        out = rel2 <= eps**2
        unsure = np.abs(rel2 - eps**2) <= band
        if unsure.any():
            need = unsure & np.isnan(exact)
            if need.any():
                exact[need] = self._relative_distance(side, idx[need], other)
            out[unsure] = exact[unsure] <= eps
        return out

    @_small_space
    def distances(self, side: str = "x") -> np.ndarray:
        """Relative distance of every alive neuron of ``side`` to the other layer's full span
        (NaN for dead neurons)."""
        idx, other = ((self.alive_x, self.alive_y) if side == "x"
                      else (self.alive_y, self.alive_x))
        out = np.full(self.n_x if side == "x" else self.n_y, np.nan)
        out[idx] = self._relative_distance(side, idx, other)
        return out

    # -- Algorithm 1 ------------------------------------------------------------------------

    def _maximum(self, xs: np.ndarray, ys: np.ndarray, eps: float, start: str = "x",
                 watch: tuple[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Algorithm 1 from the sets (xs, ys). ``start="y"`` skips the first x-check, valid when
        every x of ``xs`` is known to be within eps of span(ys) (a match minus an x-neuron).
        With ``watch=(side, unit)`` it stops early, returning empty sets, once that unit is
        removed (the simple-match search only asks whether it survives)."""
        check_x = start == "x"
        while True:
            if check_x:
                xs_new = xs[self._within("x", xs, ys, eps)]
                if len(xs_new) == 0 or (watch and watch[0] == "x" and watch[1] not in xs_new):
                    return xs_new[:0], ys[:0]
            else:
                xs_new, check_x = xs, True
            ys_new = ys[self._within("y", ys, xs_new, eps)]
            if len(ys_new) == 0 or (watch and watch[0] == "y" and watch[1] not in ys_new):
                return xs_new[:0], ys_new[:0]
            if len(xs_new) == len(xs) and len(ys_new) == len(ys):
                return xs_new, ys_new
            xs, ys = xs_new, ys_new

    @_small_space
    def maximum_match(self, eps: float) -> MaximumMatch:
        """The maximum eps-match (Wang et al. 2018, Algorithm 1).

        Matches found at other eps are kept: the maximum match at eps' >= eps contains the
        one at eps (a match is a match at every larger eps), and Algorithm 1 from any superset
        of the maximum match ends at it (it never removes a member of a match inside the
        current sets), so the search starts from the match at the nearest larger eps; and
        when the matches at the nearest eps below and above have the same size, they are the
        same, and so is the one between."""
        _check_eps(eps)
        above = min((e for e in self._found if e >= eps), default=None)
        below = max((e for e in self._found if e <= eps), default=None)
        if above is not None and below is not None and (self._found[above].size
                                                        == self._found[below].size):
            return self._found[above]
        start = (self.alive_x, self.alive_y) if above is None else (self._found[above].x,
                                                                    self._found[above].y)
        xs, ys = self._maximum(*start, eps)
        xs.flags.writeable = ys.flags.writeable = False  # kept and handed out again
        match = self._found[eps] = MaximumMatch(xs, ys, self.n_x, self.n_y)
        return match

    @_small_space
    def similarity(self, eps: float | Sequence[float]) -> float | np.ndarray:
        """Maximum match similarity at ``eps`` (a number, or an array for a grid)."""
        if np.ndim(eps) == 0:
            return self.maximum_match(float(eps)).similarity
        return np.array([self.maximum_match(float(e)).similarity for e in eps])

    @_small_space
    def smallest_full_eps(self) -> float:
        """The smallest eps at which every alive neuron of both layers is matched: the largest
        relative distance of a neuron to the other layer's full span."""
        return float(np.nanmax(np.concatenate([self.distances("x"), self.distances("y")])))

    @_small_space
    def smallest_eps_for_size(self, size: int, tol: float = 1e-4) -> float:
        """Smallest eps (within ``tol``, by bisection) whose maximum match holds >= ``size``
        neurons. MMS is non-decreasing in eps."""
        if size > len(self.alive_x) + len(self.alive_y):
            raise ValueError(f"no match can hold {size} neurons: only "
                             f"{len(self.alive_x) + len(self.alive_y)} are alive")
        lo, hi = 0.0, min(self.smallest_full_eps(), 1 - 1e-12)
        if self.maximum_match(lo).size >= size:
            return lo
        while hi - lo > tol:
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if self.maximum_match(mid).size >= size else (mid, hi)
        return hi

    # -- Algorithm 2 ------------------------------------------------------------------------

    @_small_space
    def minimal_match(self, eps: float, unit: int, side: str = "x",
                      order: Sequence[tuple[str, int]] | None = None,
                      seed: int | None = None) -> MaximumMatch | None:
        """A ``unit``-minimal eps-match: start from the maximum match; delete the other neurons
        one at a time (in ``order``, or a random order from ``seed``, or index order), keeping
        a deletion when ``unit`` stays in the maximum match of what is left. None when the unit
        is in no match at this eps."""
        _check_eps(eps)
        if side not in ("x", "y"):
            raise ValueError(f"side must be 'x' or 'y', got {side!r}")
        mm = self.maximum_match(eps)
        xs, ys = mm.x, mm.y
        if unit not in (xs if side == "x" else ys):
            return None
        if order is None:
            order = [("x", int(i)) for i in xs] + [("y", int(j)) for j in ys]
            if seed is not None:
                perm = np.random.default_rng(seed).permutation(len(order))
                order = [order[k] for k in perm]
        state = _state(self, xs, ys)
        for s, w in order:
            if (s, w) == (side, unit) or w not in state.members[s]:
                continue
            if isinstance(state, _GramState):
                state = state.without(s, w, eps, (side, unit)) or state
                continue
            stay = state.try_delete(s, w, eps)
            if stay is None:  # the rest is still a match: the deletion is kept
                continue
            # Not a match: continue Algorithm 1 from the rest. The other side's check against
            # span(side minus w) is already done (``stay``); the next check is that of ``s``.
            o = _OTHER[s]
            rest = {s: state.members[s][state.members[s] != w], o: state.members[o][stay]}
            if len(rest[o]) == 0 or (o == side and unit not in rest[o]):
                continue
            nx, ny = self._maximum(rest["x"], rest["y"], eps, start=s, watch=(side, unit))
            if unit in (nx if side == "x" else ny):
                state = _state(self, nx, ny)
        xs, ys = state.members["x"], state.members["y"]
        return MaximumMatch(xs, ys, self.n_x, self.n_y)

    @_small_space
    def simple_match_sizes(self, eps: float, units: Sequence[tuple[str, int]] | None = None,
                           n_orders: int = 1, seed: int = 0) -> np.ndarray:
        """Sizes (|X'| + |Y'|) of v-minimal matches for each requested unit (default: every
        neuron in the maximum match) and ``n_orders`` random deletion orders."""
        mm = self.maximum_match(eps)
        if units is None:
            units = [("x", int(i)) for i in mm.x] + [("y", int(j)) for j in mm.y]
        sizes = []
        for k, (side, unit) in enumerate(units):
            for o in range(n_orders):
                m = self.minimal_match(eps, unit, side, seed=seed + 1000 * k + o)
                if m is not None:
                    sizes.append(m.size)
        return np.array(sizes, dtype=int)


class _GramState:
    """A current match (xs, ys) held through the inverse Gram matrix H = G^-1 of each side's
    members (G = A^T A, from the matcher's precomputed Gram matrix) and the squared residuals
    of each side's members to the other side's span. Deleting member k of side A removes the
    direction q = A H e_k / sqrt(H_kk), so a neuron u of the other side moves away by
    (q^T z_u)^2 = (H_k. A^T z_u)^2 / H_kk (Wang et al.'s Algorithm 2 with a rank-one downdate
    instead of a new least-squares problem per trial), and H of what is left is the downdate
    H_-k,-k - H_-k,k H_k,-k / H_kk: |A| (|A| + |other|) flops a deletion, where a new
    factorisation costs |A|^3. Algorithm 1 from a smaller set (:meth:`without`) is then a
    sequence of such deletions, one block downdate per round (`_drop`).

    Only for well-conditioned sides (:data:`GRAM_COND_LIMIT`; `_state` falls back to
    `_MatchState` otherwise). The inverse and the residuals are renewed from the Gram matrix
    every :data:`GRAM_REFRESH` deletions, and every decision within the rounding band of eps
    (machine epsilon x cond_1(G) x a 1000x safety factor, per deletion since the renewal) is
    recomputed exactly in the layer's coordinates. Arrays are replaced, never changed in place,
    so :meth:`copy` is shallow."""

    def __init__(self, m: SubspaceMatcher, xs: np.ndarray, ys: np.ndarray):
        self.m = m
        self.members = {"x": xs, "y": ys}
        self.inv: dict[str, np.ndarray] = {}
        # coef[side] = H_side A_side^T A_other: the other side's neurons' least-squares
        # coefficients on side's members; its row k is what deleting member k removes
        self.coef: dict[str, np.ndarray] = {}
        self.band: dict[str, float] = {}  # rounding band of the residuals to span(side)
        self.resid2: dict[str, np.ndarray] = {}  # of side's members to span(other side)
        self.since = {"x": 0, "y": 0}
        for s in ("x", "y"):
            self._renew(s)

    def copy(self) -> _GramState:
        new = object.__new__(_GramState)
        new.m = self.m
        for name in ("members", "inv", "coef", "band", "resid2", "since"):
            setattr(new, name, dict(getattr(self, name)))
        return new

    def _stacked(self, side: str) -> np.ndarray:
        return self.m._offset(side) + self.members[side]

    def _renew(self, side: str) -> None:
        """H and coef of ``side`` from its Gram blocks, and the other side's residuals to its
        span; raises LinAlgError when the side is rank-deficient or ill-conditioned (a
        deletion cannot make it so: a principal submatrix of G is no worse conditioned)."""
        a, o = self._stacked(side), self._stacked(_OTHER[side])
        g = self.m._gram[np.ix_(a, a)]
        h = _inverse_spd(g)
        cond = np.abs(g).sum(0).max() * np.abs(h).sum(0).max()  # cond_1 >= cond_2
        if not np.isfinite(cond) or cond > GRAM_COND_LIMIT:
            raise np.linalg.LinAlgError(f"Gram matrix condition {cond:.3g}")
        cross = self.m._gram[np.ix_(a, o)]
        self.inv[side] = h
        self.coef[side] = h @ cross
        self.band[side] = 1e3 * np.finfo(float).eps * cond
        self.resid2[_OTHER[side]] = (self.m._norms[o] ** 2
                                     - np.sum(cross * self.coef[side], axis=0))
        self.since[side] = 0

    def _drop(self, side: str, ks: np.ndarray) -> None:
        """Delete the members at positions ``ks`` of ``side`` at once: with the block
        downdate H' = H_-K,-K - H_-K,K H_KK^-1 H_K,-K (the inverse of G_-K,-K), coef likewise
        (C' = C_-K - H_-K,K H_KK^-1 C_K), each neuron u of the other side moves away from
        the span by c_Ku^T H_KK^-1 c_Ku, and the other side's coef loses columns K."""
        other, h, c = _OTHER[side], self.inv[side], self.coef[side]
        keep = np.ones(len(h), dtype=bool)
        keep[ks] = False
        hk = h[ks]  # (|K|, |A|)
        if len(ks) == 1:  # the rank-one case, without a solve
            to_h, to_c = hk[:, keep] / hk[0, ks[0]], c[ks] / hk[0, ks[0]]
        else:
            solved = np.linalg.solve(hk[:, ks], np.hstack([hk[:, keep], c[ks]]))
            to_h, to_c = np.hsplit(solved, [int(keep.sum())])
        hmk = hk[:, keep].T  # H is symmetric: H_-K,K = H_K,-K^T
        self.inv[side] = h[keep][:, keep] - hmk @ to_h
        self.coef[side] = c[keep] - hmk @ to_c
        self.coef[other] = self.coef[other][:, keep]
        self.members[side] = self.members[side][keep]
        self.resid2[side] = self.resid2[side][keep]
        self.resid2[other] = self.resid2[other] + np.sum(c[ks] * to_c, axis=0)
        self.since[side] += len(ks)
        if self.since[side] >= GRAM_REFRESH:
            self._renew(side)

    def _within(self, side: str, eps: float) -> np.ndarray:
        """Mask of ``side``'s members within eps of the other side's span."""
        other = _OTHER[side]
        norms = self.m._norms[self._stacked(side)]
        rel2 = self.resid2[side] / norms**2
        out = rel2 <= eps**2
        unsure = np.abs(rel2 - eps**2) <= self.band[other] * (2 + self.since[other])
        if unsure.any():  # exactly, in the coordinates of span(other)
            q = _span(self.m._in[other, other][:, self.members[other]])[0]
            exact = self.m._resid2(side, self.members[side][unsure], other, q)
            out[unsure] = np.sqrt(exact) / norms[unsure] <= eps
        return out

    def without(self, side: str, w: int, eps: float, watch: tuple[str, int]
                ) -> _GramState | None:
        """The maximum match inside the current one minus neuron w of ``side`` (Algorithm 1
        from there, by deletions), or None when it loses the ``watch`` unit or a whole side.
        The current state is left as it was."""
        if len(self.members[side]) == 1:  # a match needs neurons on both sides
            return None
        new = self.copy()
        new._drop(side, np.flatnonzero(self.members[side] == w))
        check, clean = _OTHER[side], 0
        while clean < 2:  # until both sides pass a check in a row
            keep = new._within(check, eps)
            if keep.all():
                clean += 1
            else:
                if not keep.any() or (watch[0] == check
                                      and watch[1] not in new.members[check][keep]):
                    return None
                new._drop(check, np.flatnonzero(~keep))
                clean = 1  # what is left of this side is within eps of the unchanged other
            check = _OTHER[check]
        return new


def _state(m: SubspaceMatcher, xs: np.ndarray, ys: np.ndarray) -> _GramState | _MatchState:
    """The deletion-test state of a match: through inverse Gram matrices when both sides are
    well-conditioned, otherwise through rank-revealing factorisations."""
    try:
        return _GramState(m, xs, ys)
    except np.linalg.LinAlgError:
        return _MatchState(m, xs, ys)


class _MatchState:
    """A current match (xs, ys) with what makes a one-neuron deletion cheap to test: a
    rank-revealing factorisation of each side and the squared residuals of each side to the
    other side's span.

    Deleting column w of a side A either leaves span(A) unchanged (w lies in the span of the
    others: a null vector of A involves w) or removes one direction q, the normalised w-th
    column of pinv(A)^T; then every residual of the other side grows as
    r_new^2 = r^2 + (q^T y)^2 (Wang et al.'s Algorithm 2, with a rank-one downdate instead of
    a new least-squares problem per trial).
    """

    def __init__(self, m: SubspaceMatcher, xs: np.ndarray, ys: np.ndarray):
        self.m = m
        self.members = {"x": xs, "y": ys}
        self.factor = {s: self._factor(s) for s in ("x", "y")}
        self.resid2 = {s: self._initial_resid2(s) for s in ("x", "y")}

    def _factor(self, side: str) -> tuple[np.ndarray, ...]:
        """("qr", q, r, perm) of the pivoted QR a[:, perm] = q r when a has full column rank,
        otherwise ("svd", u, s, vt) over the numerical rank."""
        a = self.m._in[side, side][:, self.members[side]]
        q, r, perm, rank = _span(a)
        if rank == a.shape[1]:
            return "qr", q, r, perm
        return "svd", *_svd_basis(a)

    def _initial_resid2(self, side: str) -> np.ndarray:
        other = _OTHER[side]
        return self.m._resid2(side, self.members[side], other, self.factor[other][1])

    def _removed_direction(self, side: str, k: int) -> np.ndarray | None:
        """The unit direction that span(side) loses when its k-th member is deleted, or None
        when the span does not change."""
        kind, q, r_or_s, aux = self.factor[side]
        if kind == "qr":  # full column rank: the direction is q r^-T e_j, j = pivot of k
            e = np.zeros(len(aux))
            e[int(np.flatnonzero(aux == k)[0])] = 1.0
            z = q @ scipy.linalg.solve_triangular(r_or_s, e, trans="T")
        else:
            rank = q.shape[1]
            null = aux[rank:, k]
            if null.size and np.abs(null).max() > NULL_TOL:
                return None
            z = q @ (aux[:rank, k] / r_or_s)
        return z / np.linalg.norm(z)

    def try_delete(self, side: str, w: int, eps: float) -> np.ndarray | None:
        """Delete w from ``side`` if what remains is still a match and return None; otherwise
        change nothing and return the mask of the other side's members that stay within eps of
        span(side minus w)."""
        other = _OTHER[side]
        if len(self.members[side]) == 1:  # a match needs neurons on both sides
            return np.zeros(len(self.members[other]), dtype=bool)
        k = int(np.flatnonzero(self.members[side] == w)[0])
        q = self._removed_direction(side, k)
        if q is None:
            new_resid = self.resid2[other]  # w is redundant: span(side) does not change
        else:
            cols = self.m._in[side, other][:, self.members[other]]
            new_resid = self.resid2[other] + (q @ cols) ** 2
        norms = self.m._norms[self.m._offset(other) + self.members[other]]
        within = np.sqrt(new_resid) / norms <= eps
        if not within.all():
            return within
        keep = self.members[side] != w
        self.members[side] = self.members[side][keep]
        self.resid2[side] = self.resid2[side][keep]
        self.resid2[other] = new_resid
        self.factor[side] = self._factor(side)
        return None


#: Screens kept per matcher (`SubspaceMatcher._screen`; each is a few vectors of one layer's
#: length): the cache is emptied when full.
SCREEN_CACHE = 4096

#: Above this (estimated) condition number of a Gram matrix the normal-equation screen in
#: `SubspaceMatcher._within` is skipped for the exact computation.
GRAM_COND_LIMIT = 1e8

#: `_GramState` renews its inverse Gram matrices from the Gram matrix after this many
#: rank-one downdates (rounding grows with each).
GRAM_REFRESH = 64

#: A deleted neuron whose coefficient in a null vector of its side exceeds this is redundant
#: (in the span of the others): deleting it leaves the span unchanged.
NULL_TOL = 1e-8


def _coordinates(z: np.ndarray, method: str, device: str | None = None) -> np.ndarray:
    """Columns with the same inner products as those of z, in at most (units) dimensions.

    ``qr``: R of the thin QR z = Q R (backward stable). ``gram``: from the eigendecomposition
    z^T z = V L V^T, R = L^(1/2) V^T over the eigenvalues above the rounding level of a Gram
    matrix summed over d samples (d * machine epsilon * largest eigenvalue); about 3x faster
    when d >> units, distances exact to ~1e-7 relative, far below any eps of interest.
    With ``device``, the product over the d samples (the Gram matrix, or the QR) is computed
    there by torch, in float64.
    """
    if device is not None:
        import torch

        t = torch.as_tensor(z, dtype=torch.float64, device=device)
        if method == "qr":
            return torch.linalg.qr(t, mode="r")[1].cpu().numpy()
        gram = (t.T @ t).cpu().numpy()
    elif method == "qr":
        return np.linalg.qr(z, mode="r")
    else:
        gram = z.T @ z
    with _blas().limit(limits=1, user_api="blas"):  # units x units: see `_small_space`
        lam, v = np.linalg.eigh(gram)
    keep = lam > lam.max(initial=0.0) * len(z) * np.finfo(float).eps
    return np.sqrt(lam[keep])[:, None] * v[:, keep].T


def _inverse_spd(g: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix through its Cholesky factor (LAPACK
    potrf + potri, a third of the flops of solving against the identity); LinAlgError when
    g is not positive definite."""
    c, info = scipy.linalg.lapack.dpotrf(g, lower=1)
    if info == 0:
        c, info = scipy.linalg.lapack.dpotri(c, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("the Gram matrix is not positive definite")
    return np.tril(c) + np.tril(c, -1).T


def _span(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Rank-revealing (column-pivoted) QR a[:, perm] = q r: returns (q[:, :rank], r, perm,
    rank), with the numerical rank by the LAPACK convention (|r_jj| > |r_00| * max(shape) *
    machine epsilon, as numpy.linalg.matrix_rank with singular values)."""
    q, r, perm = scipy.linalg.qr(a, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > diag.max(initial=0.0) * max(a.shape) * np.finfo(float).eps))
    return q[:, :rank], r, perm, rank


def _svd_basis(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SVD a = u s vt cut to the numerical rank (LAPACK convention, as
    numpy.linalg.matrix_rank): (u[:, :rank], s[:rank], vt) with vt square, so that its rows
    beyond the rank span the whole null space of a, also when a has more columns than rows."""
    u, sv, vt = np.linalg.svd(a, full_matrices=True)
    rank = int(np.sum(sv > sv.max(initial=0.0) * max(a.shape) * np.finfo(float).eps))
    return u[:, :rank], sv[:rank], vt


def _check_eps(eps: float) -> None:
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1), got {eps}")


def maximum_match(x: np.ndarray, y: np.ndarray, eps: float, center: bool = False
                  ) -> MaximumMatch:
    """One-call convenience over :class:`SubspaceMatcher`."""
    _check_eps(eps)
    return SubspaceMatcher(x, y, center).maximum_match(eps)


def max_match_similarity(x: np.ndarray, y: np.ndarray, eps: float | Sequence[float],
                         center: bool = False) -> float | np.ndarray:
    """MMS at ``eps`` (number or grid)."""
    return SubspaceMatcher(x, y, center).similarity(eps)


def minimal_match(x: np.ndarray, y: np.ndarray, eps: float, unit: int, side: str = "x",
                  order: Sequence[tuple[str, int]] | None = None) -> MaximumMatch | None:
    """One-call convenience: the ``unit``-minimal eps-match."""
    return SubspaceMatcher(x, y).minimal_match(eps, unit, side, order)


def coordinate_draws(n_rows: int, d: int, n_draws: int, seed: int = 0) -> list[np.ndarray]:
    """``n_draws`` sorted random subsets of ``d`` rows (coordinates), the paper's subsampling of
    conv-layer vectors; all rows when ``d >= n_rows``."""
    if d >= n_rows:
        return [np.arange(n_rows)]
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n_rows, size=d, replace=False)) for _ in range(n_draws)]
