"""Hoffmann et al.'s approach 2: IsoFLOP profiles (pure numpy).

Runs of (about) equal training compute form one budget; at each budget the loss is fitted by a parabola in log N
and its minimum is that budget's compute-optimal size ``N_opt(C)``. Across budgets, ``N_opt = k_N C^a`` and
``D_opt = C / (6 N_opt) = k_D C^b`` (so ``b = 1 - a``) are fitted by least squares in log-log. Intervals come from a
residual bootstrap: every budget keeps its runs' N, its losses are redrawn as its parabola plus residuals drawn from
all budgets, and everything is refitted (the parabolas, then the power law).

- Budgets: a run's compute is its FLOPs column where the data have one, else ``6 N D``; runs whose compute lies within
  ``rel_tol`` of a budget's first run (sorted by compute) join it. A budget needs ``min_runs`` runs of distinct N.
- A budget whose parabola opens downwards (no minimum) is left out with a warning; one whose minimum lies outside
  its sampled N range is listed, flagged, and left out of the power law (its N_opt extrapolates the parabola).
- Fewer than two budgets with a bracketed minimum: `InputError` naming what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infscale.errors import InputError
from infscale.laws.compute_optimal import ComputeOptimalFit


@dataclass(frozen=True, slots=True, kw_only=True)
class IsoFlopProfile:
    """One budget's parabola ``loss = c2 (ln N)^2 + c1 ln N + c0`` and its minimum."""

    flops: float
    """The budget: the geometric mean of its runs' compute."""
    n_runs: int
    n_min: float
    n_max: float
    coef: tuple[float, float, float]
    """(c2, c1, c0)."""
    n_opt: float
    n_opt_low: float
    n_opt_high: float
    loss_opt: float
    inside: bool
    """Whether the minimum lies within the sampled N range."""

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True, kw_only=True)
class IsoFlopFit(ComputeOptimalFit):
    """Approach 2's result: the budgets' minima and the power laws through them, with bootstrap intervals."""

    profiles: tuple[IsoFlopProfile, ...]
    n_boot: int

    def to_dict(self) -> dict[str, object]:
        return {"method": "isoflop", **self.exponents(), "n_boot": self.n_boot,
                "budgets": [p.to_dict() for p in self.profiles], "warnings": list(self.warnings)}


def group_budgets(flops: np.ndarray, n_params: np.ndarray, rel_tol: float = 0.05,
                  min_runs: int = 3) -> list[np.ndarray]:
    """Indices of the runs of each budget (compute within ``rel_tol`` of the budget's smallest), keeping budgets with
    at least ``min_runs`` distinct N."""
    order = np.argsort(flops)
    groups: list[list[int]] = []
    for i in order:
        if groups and flops[i] <= flops[groups[-1][0]] * (1.0 + rel_tol):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [np.array(g) for g in groups if len(np.unique(n_params[g])) >= min_runs]


def _parabola(log_n: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """(c2, c1, c0) of the least-squares parabola in ln N."""
    return np.polyfit(log_n, loss, 2)


def _power_law(log_c: np.ndarray, log_n: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(log_c, log_n, 1)
    return float(slope), float(intercept)


def isoflop_fit(n_params: np.ndarray, n_tokens: np.ndarray, loss: np.ndarray, flops: np.ndarray | None = None, *,
                rel_tol: float = 0.05, min_runs: int = 3, n_boot: int = 200, level: float = 0.95,
                random_state: int | None = 0, source: str = "runs") -> IsoFlopFit:
    """Approach 2 on the runs (see the module docstring)."""
    n = np.asarray(n_params, dtype=float)
    d = np.asarray(n_tokens, dtype=float)
    y = np.asarray(loss, dtype=float)
    c = 6.0 * n * d if flops is None else np.asarray(flops, dtype=float)
    groups = group_budgets(c, n, rel_tol, min_runs)
    warnings: list[str] = []
    usable, fits = [], []
    for g in groups:
        coef = _parabola(np.log(n[g]), y[g])
        budget = float(np.exp(np.mean(np.log(c[g]))))
        if coef[0] <= 0:
            warnings.append(f"budget {budget:.3g} FLOPs ({len(g)} runs): the loss has no minimum in N there (the "
                            "parabola opens downwards); left out")
            continue
        usable.append(g)
        fits.append((budget, coef))
    if len(usable) < 2:
        sizes = sorted((len(np.unique(n[g])) for g in group_budgets(c, n, rel_tol, 1)), reverse=True)[:3]
        raise InputError(f"{source}: approach 2 (IsoFLOP) needs at least 2 compute budgets with >= {min_runs} runs "
                         f"of different N within {rel_tol:.0%} of each other's FLOPs ({'the FLOPs column' if flops is not None else '6 N D'}), "
                         f"each with a minimum in N; found {len(usable)} (the largest groups hold {sizes} distinct N)")
    log_c = np.log([b for b, _ in fits])
    log_nopt = np.array([-coef[1] / (2 * coef[0]) for _, coef in fits])
    bracketed = np.array([n[g].min() <= np.exp(x) <= n[g].max() for g, x in zip(usable, log_nopt, strict=True)])
    if bracketed.sum() < 2:
        raise InputError(f"{source}: approach 2 (IsoFLOP) needs at least 2 compute budgets whose runs bracket their "
                         f"minimum in N; {int(bracketed.sum())} of {len(usable)} budgets with a minimum do (the runs "
                         "sit on one side of each optimum)")
    a, log_k = _power_law(log_c[bracketed], log_nopt[bracketed])

    # residual bootstrap: every budget keeps its N, its losses are its parabola's plus residuals drawn from all
    # budgets' (a budget of 3 runs has none of its own, and resampling its rows would often leave < 3 distinct N)
    rng = np.random.default_rng(random_state)
    fitted = [np.polyval(coef, np.log(n[g])) for (_, coef), g in zip(fits, usable, strict=True)]
    resid = np.concatenate([y[g] - f for g, f in zip(usable, fitted, strict=True)])
    boot_nopt = np.full((n_boot, len(usable)), np.nan)
    for j, (g, f) in enumerate(zip(usable, fitted, strict=True)):
        draws = f[None, :] + resid[rng.integers(0, resid.size, size=(n_boot, len(g)))]
        x = np.log(n[g])
        design = np.stack([x * x, x, np.ones_like(x)], axis=1)
        coefs = np.linalg.lstsq(design, draws.T, rcond=None)[0]  # (3, n_boot)
        good = coefs[0] > 0
        boot_nopt[good, j] = -coefs[1, good] / (2 * coefs[0, good])
    finite = np.isfinite(boot_nopt)
    use = finite & bracketed[None, :]  # a budget whose redrawn parabola has no minimum sits out that replicate
    ok = use.sum(axis=1) >= 2
    slopes = np.array([_power_law(log_c[m], row[m])[0] for row, m in zip(boot_nopt[ok], use[ok], strict=True)])
    q = (1 - level) / 2
    a_low, a_high = (float(np.quantile(slopes, q)), float(np.quantile(slopes, 1 - q))) if slopes.size else (a, a)
    lost = 1.0 - float(finite.mean())
    if lost > 0.05:
        warnings.append(f"{lost:.0%} of the budgets' bootstrap redraws had no minimum in N (flat parabolas: budgets of "
                        "few runs, or runs far from their optimum); those budgets sat out those replicates")
    if not a_low <= a <= a_high:
        warnings.append(f"approach 2's exponent a = {a:.3f} lies outside its own bootstrap interval [{a_low:.3f}, "
                        f"{a_high:.3f}]: the budgets' minima are unstable on these runs (see the budgets above)")
    profiles = []
    for j, ((budget, coef), g) in enumerate(zip(fits, usable, strict=True)):
        col = boot_nopt[:, j]
        col = col[np.isfinite(col)]
        lo, hi = (np.quantile(col, q), np.quantile(col, 1 - q)) if col.size else (log_nopt[j], log_nopt[j])
        n_opt = float(np.exp(log_nopt[j]))
        inside = bool(n[g].min() <= n_opt <= n[g].max())
        if not inside:
            warnings.append(f"budget {budget:.3g} FLOPs: its minimum N {n_opt:.3g} lies outside the sampled "
                            f"{n[g].min():.3g}-{n[g].max():.3g} (the parabola extrapolates); left out of the power law")
        profiles.append(IsoFlopProfile(
            flops=budget, n_runs=len(g), n_min=float(n[g].min()), n_max=float(n[g].max()),
            coef=(float(coef[0]), float(coef[1]), float(coef[2])), n_opt=n_opt, n_opt_low=float(np.exp(lo)),
            n_opt_high=float(np.exp(hi)), loss_opt=float(np.polyval(coef, log_nopt[j])), inside=inside))
    return IsoFlopFit(profiles=tuple(profiles), a=a, a_low=a_low, a_high=a_high, log_k_n=log_k, level=level,
                      n_boot=n_boot, warnings=tuple(warnings))


def approach3_exponents(alpha: float, beta: float) -> tuple[float, float]:
    """Approach 3's ``N_opt ~ C^a``, ``D_opt ~ C^b`` from a fitted Chinchilla law: ``a = beta / (alpha + beta)``,
    ``b = alpha / (alpha + beta)``."""
    return beta / (alpha + beta), alpha / (alpha + beta)
