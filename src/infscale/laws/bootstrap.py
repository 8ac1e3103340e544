"""Bootstrap intervals for fitted laws: resample runs with replacement (as multinomial row weights), refit warm-started
from the optimum, report percentile intervals. Randomness only through `random_state`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infscale.laws.runs import Runs


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    param_names: tuple[str, ...]
    samples: np.ndarray
    """(K, p) refitted natural parameters, one row per bootstrap replicate."""
    level: float
    """Two-sided interval level, e.g. 0.95."""

    @property
    def low(self) -> dict[str, float]:
        q = np.nanpercentile(self.samples, 50 * (1 - self.level), axis=0)
        return dict(zip(self.param_names, map(float, q), strict=True))

    @property
    def high(self) -> dict[str, float]:
        q = np.nanpercentile(self.samples, 100 - 50 * (1 - self.level), axis=0)
        return dict(zip(self.param_names, map(float, q), strict=True))

    @property
    def std(self) -> dict[str, float]:
        return dict(zip(self.param_names, map(float, np.nanstd(self.samples, axis=0)), strict=True))


def bootstrap_weights(n_rows: int, n_boot: int, random_state: int | None = 0) -> np.ndarray:
    """(n_boot, n_rows) resampling counts: each row a multinomial draw of n_rows rows with replacement."""
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=n_boot).astype(float)


def bootstrap(fitter, runs: Runs, n_boot: int = 1000, *, level: float = 0.95,
              random_state: int | None = 0) -> BootstrapResult:
    """Percentile intervals from `n_boot` refits of a fitted `fitter` (HuberFitter or LeastSquaresFitter)."""
    if n_boot < 2:
        raise ValueError("n_boot must be at least 2")
    weights = bootstrap_weights(len(runs), n_boot, random_state)
    samples = fitter.refit_weighted(runs, weights)
    return BootstrapResult(tuple(fitter.form_.param_names), samples, level)
