"""Approach 3 by variable projection: search the exponents, solve the coefficients (pure numpy/scipy).

For the Chinchilla family, ``L = s(R) * (E + A N^-alpha + B D^-beta)`` is linear in ``c = (E, A, B)`` once the
exponents (and the shape factor's ``eps``, ``gamma``) are fixed. `VarProFitter` therefore profiles the coefficients
out (Golub and Pereyra's variable projection; the Open-Athena (2026) proposal for scaling-law fits):

1. For every point ``phi`` of a grid over the nonlinear parameters, the best non-negative ``c`` for the Huber loss
   on log loss, found by iteratively reweighted non-negative least squares on relative residuals (``Xc / y - 1``,
   which equals ``log(Xc) - log y`` to first order): Huber weights ``min(1, delta / |r|)`` from the log residuals,
   then an exact 3-variable NNLS (every active set solved at once, the best feasible kept). All grid points are
   solved together, batched.
2. The joint optimum is polished by L-BFGS-B on the exact Huber objective of every parameter (the same objective as
   `HuberFitter`), from the best grid point and its profiled coefficients. (A Nelder-Mead refinement of the profiled
   objective in between changed no objective in its 9th digit on the bundled datasets and cost 3-4x the time.)

No starting points are needed for the coefficients, which are where the 4,500-start grid spends its starts; the
exponent grid is 2-D for ``chinchilla`` (16 x 16 points). A coefficient the data put at zero is started at a
small positive value for the polish (log space). Scikit-learn contract as `HuberFitter`, whose bootstrap refits it
shares.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from infscale.errors import InputError
from infscale.laws.fit import HuberFitter, _features, _scalar, huber_objective
from infscale.laws.fitted import FittedLaw
from infscale.laws.forms import ChinchillaFamily, Features, get_law
from infscale.laws.runs import Runs

_SUBSETS = [s for k in (1, 2, 3) for s in combinations(range(3), k)]


def _nnls3(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Non-negative ``c`` (G, 3) minimising ``sum_i w_gi (z_gi . c - 1)^2`` for each g, exactly: every active set's
    normal equations solved at once, the lowest feasible objective kept."""
    g = z.shape[0]
    best = np.zeros((g, 3))
    best_obj = np.full(g, np.inf)
    zw = z * w[..., None]
    gram = np.einsum("gni,gnj->gij", zw, z)  # (G, 3, 3)
    rhs = zw.sum(axis=1)  # (G, 3)
    for s in _SUBSETS:
        idx = np.array(s)
        m = gram[:, idx[:, None], idx[None, :]]
        v = rhs[:, idx]
        scale = np.maximum(np.abs(np.diagonal(m, axis1=1, axis2=2)), 1e-300)  # Jacobi scaling: columns differ by 1e10
        ms = m / np.sqrt(scale[:, :, None] * scale[:, None, :])
        with np.errstate(all="ignore"):
            sol = np.linalg.solve(ms + 1e-13 * np.eye(len(s)), (v / np.sqrt(scale))[..., None])[..., 0] / np.sqrt(scale)
        c = np.zeros((g, 3))
        c[:, idx] = sol
        resid = np.einsum("gni,gi->gn", z, c) - 1.0
        obj = (w * resid * resid).sum(axis=1)
        ok = (sol >= 0).all(axis=1) & np.isfinite(obj) & (obj < best_obj)
        best[ok], best_obj[ok] = c[ok], obj[ok]
    return best


class VarProFitter(HuberFitter):
    """Approach 3 (Huber on log loss) by variable projection; see the module docstring. Learned values as
    `HuberFitter` (``theta_``, ``objective_``, ``params_``, ``law_``), plus ``n_profiled_`` (profiled objective
    evaluations)."""

    def __init__(self, law: str = "chinchilla", *, delta: float = 1e-3, grid_size: int = 16, irls_steps: int = 6,
                 memory: int = 10):
        super().__init__(law, delta=delta, memory=memory)
        self.grid_size, self.irls_steps = grid_size, irls_steps

    # -- the nonlinear parameters and the design matrix ------------------------------------------------------
    def _nonlinear_grid(self, form: ChinchillaFamily) -> np.ndarray:
        exps = np.linspace(0.02, 1.9, self.grid_size)
        axes = [exps] + ([] if form.tie_beta else [exps])
        if form.shape:
            axes.append(np.array([-12.0, -9.0, -6.0, -3.0]))
            if not form.tie_gamma:
                axes.append(np.array([0.5, 1.0, 1.5]))
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    @staticmethod
    def _design(form: ChinchillaFamily, phi: np.ndarray, x: Features) -> np.ndarray:
        """(G, n, 3) columns ``s * [1, N^-alpha, D^-beta]`` for the nonlinear points ``phi`` (G, q)."""
        alpha = phi[:, :1]
        k = 1 if form.tie_beta else 2
        beta = alpha if form.tie_beta else phi[:, 1:2]
        cols = [np.ones((phi.shape[0], x.log_n.size)), np.exp(-alpha * x.log_n), np.exp(-beta * x.log_d)]
        out = np.stack(cols, axis=-1)
        if form.shape:
            gamma = alpha if form.tie_gamma else phi[:, k + 1:k + 2]
            out = out * (1.0 + np.exp(phi[:, k:k + 1] + gamma * x.log_r))[..., None]
        return out

    def _profile(self, form: ChinchillaFamily, phi: np.ndarray, x: Features, y: np.ndarray,
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(profiled Huber objective (G,), coefficients (G, 3) as (E, A, B)) at the nonlinear points ``phi``."""
        design = self._design(form, phi, x)
        z = design / y[None, :, None]
        w = np.ones(z.shape[:2])
        d = self.delta
        for _ in range(self.irls_steps):
            c = _nnls3(z, w)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.log(np.einsum("gni,gi->gn", design, c)) - np.log(y)[None, :]
            a = np.abs(r)
            w = np.where(a <= d, 1.0, d / np.where(a > 0, a, 1.0))
            w = np.where(np.isfinite(w), w, 0.0)
        h = np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))
        obj = np.where(np.isfinite(h).all(axis=1), h.sum(axis=1), np.inf)
        return obj, c

    def _theta(self, form: ChinchillaFamily, phi: np.ndarray, c: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log-space parameters (the Huber objective's) from a nonlinear point and its coefficients."""
        floor = 1e-9 * float(np.min(y))  # a coefficient at zero starts tiny, in log space
        e, a, b = (np.log(max(float(v), floor)) for v in c)
        theta = [a, b, e, phi[0]] + ([] if form.tie_beta else [phi[1]])
        k = 1 if form.tie_beta else 2
        if form.shape:
            theta.append(phi[k])
            if not form.tie_gamma:
                theta.append(phi[k + 1])
        return np.asarray(theta, dtype=float)

    def fit(self, runs: Runs) -> VarProFitter:
        from scipy.optimize import minimize  # lazy: scipy

        form = get_law(self.law)
        if not isinstance(form, ChinchillaFamily):
            raise InputError(f"fitter 'varpro' needs a law linear in (E, A, B) once its exponents are fixed (the "
                             f"Chinchilla family: chinchilla, chinchilla_tied, inference_aware...), not {self.law!r}")
        x = _features(form, runs)
        y = np.asarray(runs.loss, dtype=float)
        grid = self._nonlinear_grid(form)
        obj, coef = self._profile(form, grid, x, y)
        n_eval = grid.shape[0]
        i = int(np.argmin(obj))

        phi, c = grid[i], coef[i:i + 1]
        theta0 = self._theta(form, phi, c[0], y)
        fun = _scalar(huber_objective(form, x, np.log(y), self.delta))
        polish = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                          options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000, "maxcor": 20})
        f0 = fun(theta0)[0]
        best_theta, best_f = (polish.x, float(polish.fun)) if np.isfinite(polish.fun) and polish.fun <= f0 \
            else (theta0, float(f0))
        self.form_ = form
        self.theta_ = np.asarray(best_theta, dtype=float)
        self.objective_ = best_f
        self.n_starts_ = 0
        self.n_profiled_ = n_eval
        self.params_ = dict(zip(form.param_names, map(float, form.from_log(self.theta_)), strict=True))
        self.law_ = FittedLaw(form, self.params_, {"fitter": "varpro", "delta": self.delta, "objective": best_f,
                                                   "n_profiled": n_eval})
        return self
