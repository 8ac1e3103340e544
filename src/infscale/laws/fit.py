"""Fitters for the law forms, scikit-learn style (`fit` returns self; learned values end in `_`).

- `HuberFitter`: Hoffmann et al.'s approach 3 as replicated by Besiroglu et al. (2024): Huber loss (delta = 1e-3) on
  log loss, summed over runs, minimised by L-BFGS from a multi-start grid (4,500 starts for `chinchilla`). All starts run at
  once in a batched numpy L-BFGS with analytic gradients (`infscale.laws.lbfgs`); after a few iterations the worst starts are
  dropped (successive halving), the survivors run to convergence, and the best few are polished with scipy's L-BFGS-B at tight
  tolerance. The first, screening stage evaluates the law in float32: it only ranks the starts, and float64 exp and log have
  no SIMD path on AVX2-only CPUs (3x their float32 twins there); every later stage runs in float64. Bootstrap refits run
  batched too, each replicate warm-started from the optimum with multinomial row weights.
- `VarProFitter` (`infscale.laws.varpro`): the same objective by variable projection (exponents searched, coefficients
  solved), no multi-start grid.
- `LeastSquaresFitter`: Bian et al.'s method: plain least squares on raw loss (Levenberg-Marquardt from the all-ones start, as
  scipy's `curve_fit` in the paper's scripts), plus the form's extra starts; the lowest sum of squares wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infscale.errors import InputError
from infscale.laws.fitted import FittedLaw
from infscale.laws.forms import Features, LawForm, get_law
from infscale.laws.lbfgs import batched_lbfgs
from infscale.laws.runs import Runs
from infscale.registry import Registry


def _features(form: LawForm, runs: Runs) -> Features:
    r = runs.aspect_ratio
    if form.needs_aspect_ratio and r is None:
        raise InputError(f"{runs.source}: law {form.name!r} needs columns 'd_model' and 'n_layers' (aspect ratio R)")
    arch = runs.arch
    try:
        form.check_inputs(r, arch)  # the architecture columns a conditional law reads
    except ValueError as exc:
        raise InputError(f"{runs.source}: {exc}") from None
    return Features.of(runs.n_params, runs.n_tokens, r, arch)


def huber_objective(form: LawForm, x: Features, log_loss: np.ndarray, delta: float,
                    weights: np.ndarray | None = None, dtype: str = "float64"):
    """fg(theta (k, p), rows) -> (sum of Huber(log L_pred - log L) per member, its gradient); `weights` (B, n) per member.

    The law is evaluated in ``dtype`` (float32 for screening); objectives and gradients are returned in float64."""
    x = x.astype(dtype)
    log_loss = np.asarray(log_loss, dtype=dtype)
    weights = None if weights is None else np.asarray(weights, dtype=dtype)

    def fg(theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _fg(np.asarray(theta, dtype=dtype), rows)

    def _fg(theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lp, vjp = form.log_predict_vjp(theta, x)
        r = lp - log_loss
        dh = np.clip(r, -delta, delta)  # Huber'(r)
        h = np.multiply(dh, -0.5)  # Huber(r) = dh (r - dh/2): r^2/2 inside [-delta, delta], delta (|r| - delta/2) outside
        h += r
        h *= dh
        if weights is not None:
            w = weights[rows]
            h *= w
            dh *= w
        f = h.sum(axis=1, dtype=np.float64)
        g = vjp(dh).astype(np.float64, copy=False)
        bad = ~np.isfinite(f) | ~np.isfinite(g).all(axis=1)
        f[bad] = np.inf
        return f, g

    return fg


def _scalar(fg):
    """Adapt a batched fg to scipy's (f, grad) for one point."""
    row = np.zeros(1, dtype=int)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fg(theta[None, :], row)
        return float(f[0]), g[0]

    return fun


@dataclass(frozen=True, slots=True)
class Stage:
    max_iter: int
    keep: float | None
    """fraction of members kept after this stage (None: keep all)."""
    dtype: str = "float64"
    """precision the law is evaluated in during this stage."""


DEFAULT_STAGES = (Stage(12, 0.05, "float32"), Stage(40, 0.25), Stage(500, None))


class HuberFitter:
    """Huber loss on log loss, multi-start L-BFGS (batched), polished with scipy. See the module docstring."""

    def __init__(self, law: str = "chinchilla", *, delta: float = 1e-3, grid: np.ndarray | None = None,
                 stages: tuple[Stage, ...] = DEFAULT_STAGES, n_polish: int = 4, memory: int = 10):
        self.law = law
        self.delta = delta
        self.grid = grid
        self.stages = stages
        self.n_polish = n_polish
        self.memory = memory

    def fit(self, runs: Runs) -> HuberFitter:
        from scipy.optimize import minimize  # lazy: scipy

        form = get_law(self.law)
        x = _features(form, runs)
        log_y = np.log(runs.loss)
        fg = huber_objective(form, x, log_y, self.delta)
        starts = form.huber_grid() if self.grid is None else np.asarray(self.grid, dtype=float)
        theta = starts
        f = None
        for stage in self.stages:
            stage_fg = fg if stage.dtype == "float64" else huber_objective(form, x, log_y, self.delta, dtype=stage.dtype)
            res = batched_lbfgs(stage_fg, theta, max_iter=stage.max_iter, memory=self.memory)
            theta, f = res.x, res.fun
            if stage.keep is not None:
                n_keep = max(self.n_polish, int(np.ceil(stage.keep * theta.shape[0])))
                order = np.argsort(np.where(np.isfinite(f), f, np.inf))[:n_keep]
                theta, f = theta[order], f[order]
        order = np.argsort(np.where(np.isfinite(f), f, np.inf))
        fun = _scalar(fg)
        best_theta, best_f = theta[order[0]], float(f[order[0]])
        polished: list[np.ndarray] = []
        for i in order:
            if len(polished) >= self.n_polish:
                break
            if any(np.allclose(theta[i], p, rtol=1e-4, atol=1e-6) for p in polished):
                continue
            polished.append(theta[i])
            r = minimize(fun, theta[i], jac=True, method="L-BFGS-B",
                         options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000, "maxcor": 20})
            if np.isfinite(r.fun) and r.fun <= best_f:
                best_theta, best_f = r.x, float(r.fun)
        self.form_ = form
        self.theta_ = np.asarray(best_theta, dtype=float)
        self.objective_ = best_f
        self.n_starts_ = int(starts.shape[0])
        self.params_ = dict(zip(form.param_names, map(float, form.from_log(self.theta_)), strict=True))
        self.law_ = FittedLaw(form, self.params_, {"fitter": "huber", "delta": self.delta, "objective": best_f,
                                                   "n_starts": self.n_starts_})
        return self

    def predict(self, n_params, n_tokens, aspect_ratio=None, arch=None) -> np.ndarray:
        return self.law_.predict(n_params, n_tokens, aspect_ratio, arch)

    def refit_weighted(self, runs: Runs, weights: np.ndarray, max_iter: int = 300) -> np.ndarray:
        """Refit once per row of `weights` (K, n), warm-started at the optimum, all K at once -> (K, p) natural params."""
        form = self.form_
        x = _features(form, runs)
        fg = huber_objective(form, x, np.log(runs.loss), self.delta, weights=np.asarray(weights, dtype=float))
        x0 = np.tile(self.theta_, (weights.shape[0], 1))
        res = batched_lbfgs(fg, x0, max_iter=max_iter, memory=self.memory)
        return form.from_log(res.x)


class LeastSquaresFitter:
    """Plain least squares on raw loss (Bian et al.'s `curve_fit`): Levenberg-Marquardt from all-ones plus the form's starts."""

    def __init__(self, law: str = "inference_aware", *, starts: list[tuple[float, ...]] | None = None,
                 max_nfev: int = 100_000):
        self.law = law
        self.starts = starts
        self.max_nfev = max_nfev

    def _solve(self, form: LawForm, runs: Runs, x0: np.ndarray, weights: np.ndarray | None = None):
        from scipy.optimize import least_squares  # lazy: scipy

        n, d, r, y, arch = runs.n_params, runs.n_tokens, runs.aspect_ratio, runs.loss, runs.arch
        sw = None if weights is None else np.sqrt(weights)

        def resid(p: np.ndarray) -> np.ndarray:
            out = form.predict(p, n, d, r, arch) - y
            return out if sw is None else out * sw

        with np.errstate(all="ignore"):
            return least_squares(resid, x0, method="lm", x_scale="jac", ftol=1e-14, xtol=1e-14, gtol=1e-14,
                                 max_nfev=self.max_nfev)

    def fit(self, runs: Runs) -> LeastSquaresFitter:
        form = get_law(self.law)
        _features(form, runs)  # checks that the shape columns exist when needed
        p = len(form.param_names)
        starts = self.starts if self.starts is not None else [(1.0,) * p, *form.ls_starts]
        best = None
        for s in starts:
            res = self._solve(form, runs, np.asarray(s, dtype=float))
            sse = float(np.sum(res.fun ** 2))
            if np.isfinite(sse) and (best is None or sse < best[1]):
                best = (res.x, sse)
        if best is None:
            raise ValueError(f"least squares for law {self.law!r} diverged from every start")
        self.form_ = form
        self.coef_ = np.asarray(best[0], dtype=float)
        self.sse_ = best[1]
        self.objective_ = best[1]
        self.params_ = dict(zip(form.param_names, map(float, self.coef_), strict=True))
        self.law_ = FittedLaw(form, self.params_, {"fitter": "least_squares", "sse": self.sse_,
                                                   "fit_mse": self.sse_ / len(runs)})
        return self

    def predict(self, n_params, n_tokens, aspect_ratio=None, arch=None) -> np.ndarray:
        return self.law_.predict(n_params, n_tokens, aspect_ratio, arch)

    def refit_weighted(self, runs: Runs, weights: np.ndarray, max_iter: int | None = None) -> np.ndarray:
        """One warm-started weighted least-squares refit per row of `weights` (K, n) -> (K, p)."""
        out = np.empty((weights.shape[0], self.coef_.size))
        for k, w in enumerate(np.asarray(weights, dtype=float)):
            out[k] = self._solve(self.form_, runs, self.coef_, w).x
        return out


FITTERS: Registry[type] = Registry("fitter")
FITTERS.register("huber", HuberFitter)
FITTERS.register("least_squares", LeastSquaresFitter)
FITTERS.register("varpro", "infscale.laws.varpro:VarProFitter")


def make_fitter(name: str, law: str):
    """A fitter by name (``huber``, ``least_squares``, ``varpro``) for the law ``law``; unknown names are
    `InputError`s."""
    return FITTERS.get(name)(law)


def scipy_loop_huber(law: str, runs: Runs, starts: np.ndarray | None = None, delta: float = 1e-3,
                     options: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: scipy L-BFGS-B (analytic gradient, default tolerances) run from every start in a plain Python loop.

    Returns ((K, p) final log-space points, (K,) objectives). Used by the benchmark and the optimum test."""
    from scipy.optimize import minimize  # lazy: scipy

    form = get_law(law)
    fun = _scalar(huber_objective(form, _features(form, runs), np.log(runs.loss), delta))
    starts = form.huber_grid() if starts is None else np.asarray(starts, dtype=float)
    xs, fs = np.empty_like(starts), np.empty(starts.shape[0])
    with np.errstate(all="ignore"):
        for i, s in enumerate(starts):
            r = minimize(fun, s, jac=True, method="L-BFGS-B", options=options)
            xs[i], fs[i] = r.x, r.fun if np.isfinite(r.fun) else np.inf
    return xs, fs
