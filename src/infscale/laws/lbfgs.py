"""Batched L-BFGS in numpy: minimise B independent smooth objectives at once.

`fg(x, rows)` returns the objectives (k,) and gradients (k, p) of the batch members `rows` at points x (k, p), so that one call
evaluates every start (or every bootstrap replicate) with a few large array operations instead of B Python-level optimiser
loops. Each member keeps its own memory of m curvature pairs (two-loop recursion, Nocedal & Wright alg. 7.4) and its own
backtracking (Armijo) step, contracted by 0.5 four times, then by 0.1; members stop independently when the relative
decrease or the gradient falls below tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ObjGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class BatchResult:
    x: np.ndarray
    """(B, p) final points."""
    fun: np.ndarray
    """(B,) final objectives."""
    n_iter: np.ndarray
    """(B,) iterations each member ran."""
    converged: np.ndarray
    """(B,) whether each member met a tolerance (rather than running out of iterations)."""


def batched_lbfgs(fg: ObjGrad, x0: np.ndarray, *, max_iter: int = 200, memory: int = 10, ftol: float = 1e-12,
                  gtol: float = 1e-10, c1: float = 1e-4, max_backtrack: int = 16) -> BatchResult:
    x = np.array(x0, dtype=float, copy=True)
    n_batch, p = x.shape
    all_rows = np.arange(n_batch)
    f, g = fg(x, all_rows)
    f, g = np.array(f, dtype=float), np.array(g, dtype=float)
    s_mem = np.zeros((memory, n_batch, p))
    y_mem = np.zeros((memory, n_batch, p))
    rho = np.zeros((memory, n_batch))
    n_iter = np.zeros(n_batch, dtype=int)
    converged = np.zeros(n_batch, dtype=bool)
    active = np.flatnonzero(np.isfinite(f))
    for it in range(max_iter):
        if active.size == 0:
            break
        xa, fa, ga = x[active], f[active], g[active]
        # two-loop recursion over the stored pairs (slot it % memory is the newest); empty slots have rho = 0
        q = ga.copy()
        order = [(it - 1 - j) % memory for j in range(min(it, memory))]
        alphas = []
        for j in order:
            a_j = rho[j, active] * np.einsum("bp,bp->b", s_mem[j, active], q)
            q -= a_j[:, None] * y_mem[j, active]
            alphas.append(a_j)
        if order:
            newest = order[0]
            yy = np.einsum("bp,bp->b", y_mem[newest, active], y_mem[newest, active])
            sy = np.einsum("bp,bp->b", s_mem[newest, active], y_mem[newest, active])
            scale = np.where((yy > 0) & (sy > 0), sy / np.where(yy > 0, yy, 1.0), 1.0)
        else:
            scale = 1.0 / np.maximum(np.abs(ga).max(axis=1), 1e-300)  # first step: unit-length move
            scale = np.minimum(scale, 1.0)
        r = q * (scale[:, None] if np.ndim(scale) else scale)
        for j, a_j in zip(reversed(order), reversed(alphas), strict=True):
            b_j = rho[j, active] * np.einsum("bp,bp->b", y_mem[j, active], r)
            r += s_mem[j, active] * (a_j - b_j)[:, None]
        d = -r
        slope = np.einsum("bp,bp->b", ga, d)
        bad = ~(slope < 0) | ~np.isfinite(slope)
        if bad.any():  # not a descent direction: restart that member from steepest descent
            d[bad] = -ga[bad] / np.maximum(np.abs(ga[bad]).max(axis=1, keepdims=True), 1e-300)
            slope[bad] = np.einsum("bp,bp->b", ga[bad], d[bad])
            rho[:, active[bad]] = 0.0
        # backtracking line search, evaluating only the members whose step is not yet accepted
        t = np.ones(active.size)
        f_new = np.full(active.size, np.inf)
        g_new = np.zeros_like(ga)
        pending = np.arange(active.size)
        for k in range(max_backtrack):
            x_try = xa[pending] + t[pending, None] * d[pending]
            f_try, g_try = fg(x_try, active[pending])
            ok = np.isfinite(f_try) & (f_try <= fa[pending] + c1 * t[pending] * slope[pending])
            f_new[pending[ok]] = f_try[ok]
            g_new[pending[ok]] = g_try[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            # halve the first few times, then shrink tenfold: a member far from an acceptable step (a flat or
            # overflowing region) gets there, or gives up at t ~ 1e-13, in a few calls instead of thirty
            t[pending] *= 0.5 if k < 4 else 0.1
        moved = np.isfinite(f_new)
        step = t[:, None] * d
        x_new = np.where(moved[:, None], xa + step, xa)
        f_new = np.where(moved, f_new, fa)
        g_new = np.where(moved[:, None], g_new, ga)
        slot = it % memory
        s_vec, y_vec = x_new - xa, g_new - ga
        sy = np.einsum("bp,bp->b", s_vec, y_vec)
        good = moved & (sy > 1e-300)
        s_mem[slot, active] = np.where(good[:, None], s_vec, 0.0)
        y_mem[slot, active] = np.where(good[:, None], y_vec, 0.0)
        rho[slot, active] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        x[active], f[active], g[active] = x_new, f_new, g_new
        n_iter[active] += 1
        small_f = np.abs(fa - f_new) <= ftol * np.maximum(np.abs(fa), 1e-300)
        small_g = np.abs(g_new).max(axis=1) <= gtol
        done = small_g | (small_f & moved) | ~moved
        converged[active[done & (small_g | small_f)]] = True
        active = active[~done]
    return BatchResult(x=x, fun=f, n_iter=n_iter, converged=converged)
