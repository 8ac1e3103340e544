"""Hoffmann et al.'s approach 1: the envelope of training curves (pure numpy).

Every run contributes its training curve as points ``(C = 6 N t, loss)`` at the tokens ``t`` it had seen. Over
compute bins spaced evenly in log C, the envelope is the lowest loss any run reaches in the bin, and the run that
reaches it gives ``N_opt(C)``; ``N_opt ~ C^a`` is then fitted by least squares in log-log (``D_opt = C / (6 N_opt)``,
``b = 1 - a``). Intervals: a bootstrap over runs (the envelope redrawn from runs resampled with replacement).

A bin counts only where at least two runs of different N reach it, and the envelope's N must change across bins (one
run winning everywhere measures nothing). A curve point before ``min_fraction`` of its run's tokens is left out:
under a decaying learning-rate schedule a run is far from its best early on (Hoffmann et al. varied the schedule
length for this reason; here it is the caller's choice of runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infscale.errors import InputError
from infscale.laws.compute_optimal import ComputeOptimalFit


@dataclass(frozen=True, slots=True, kw_only=True)
class Curve:
    """One run's training curve."""

    run_id: str
    n_params: float
    tokens: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeFit(ComputeOptimalFit):
    flops: np.ndarray
    """The bins' compute (geometric centres) where the envelope is defined."""
    bin_n_opt: np.ndarray
    """The N of the run on the envelope in each bin."""
    loss: np.ndarray
    n_runs: int

    def to_dict(self) -> dict[str, object]:
        return {"method": "envelope", **self.exponents(), "n_runs": self.n_runs,
                "bins": [{"flops": float(c), "n_opt": float(n), "loss": float(y)}
                         for c, n, y in zip(self.flops, self.bin_n_opt, self.loss, strict=True)],
                "warnings": list(self.warnings)}


def _envelope(curves: Sequence[Curve], edges: np.ndarray, min_fraction: float) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
    """(N of the winner, its loss, number of distinct N reaching the bin) per bin."""
    k = len(edges) - 1
    best_loss = np.full(k, np.inf)
    best_n = np.full(k, np.nan)
    reach: list[set[float]] = [set() for _ in range(k)]
    for cv in curves:
        keep = cv.tokens >= min_fraction * cv.tokens.max()
        c = 6.0 * cv.n_params * cv.tokens[keep]
        bins = np.searchsorted(edges, c, side="right") - 1
        for b, y in zip(bins, cv.loss[keep], strict=True):
            if 0 <= b < k:
                reach[b].add(cv.n_params)
                if y < best_loss[b]:
                    best_loss[b], best_n[b] = y, cv.n_params
    return best_n, best_loss, np.array([len(r) for r in reach])


def envelope_fit(curves: Sequence[Curve], *, n_bins: int = 24, min_fraction: float = 0.25, n_boot: int = 200,
                 level: float = 0.95, random_state: int | None = 0, source: str = "runs") -> EnvelopeFit:
    """Approach 1 on ``curves`` (see the module docstring)."""
    if len({cv.n_params for cv in curves}) < 2:
        raise InputError(f"{source}: approach 1 (the training-curve envelope) needs curves of at least 2 model sizes; "
                         f"found {len({cv.n_params for cv in curves})}")
    c_all = np.concatenate([6.0 * cv.n_params * cv.tokens for cv in curves])
    edges = np.geomspace(c_all[c_all > 0].min(), c_all.max() * (1 + 1e-12), n_bins + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    n_opt, loss, reach = _envelope(curves, edges, min_fraction)
    use = (reach >= 2) & np.isfinite(n_opt)
    if use.sum() < 3 or len(np.unique(n_opt[use])) < 2:
        raise InputError(f"{source}: approach 1 needs the envelope to change model size over at least 3 compute bins "
                         f"reached by 2+ sizes; {int(use.sum())} bins are reached by 2+ sizes and "
                         f"{len(np.unique(n_opt[use]))} size(s) win them (train more sizes, or longer)")
    a, log_k = np.polyfit(np.log(centres[use]), np.log(n_opt[use]), 1)
    rng = np.random.default_rng(random_state)
    slopes = []
    for _ in range(n_boot):
        pick = [curves[i] for i in rng.integers(0, len(curves), len(curves))]
        bn, _, br = _envelope(pick, edges, min_fraction)
        m = (br >= 2) & np.isfinite(bn)
        if m.sum() >= 3 and len(np.unique(bn[m])) >= 2:
            slopes.append(np.polyfit(np.log(centres[m]), np.log(bn[m]), 1)[0])
    q = (1 - level) / 2
    lo, hi = (float(np.quantile(slopes, q)), float(np.quantile(slopes, 1 - q))) if slopes else (a, a)
    warnings = []
    if len(slopes) < 0.9 * n_boot:
        warnings.append(f"{n_boot - len(slopes)} of {n_boot} bootstrap resamples of the runs left no envelope to fit "
                        "(too few sizes): the interval is over the rest")
    sizes = len(np.unique(n_opt[use]))
    if sizes < 4:
        warnings.append(f"only {sizes} model sizes win the envelope: N_opt(C) is a staircase of {sizes} steps and its "
                        "slope is poorly determined")
    return EnvelopeFit(flops=centres[use], bin_n_opt=n_opt[use], loss=loss[use], a=float(a), a_low=lo, a_high=hi,
                       log_k_n=float(log_k), level=level, n_runs=len(curves), warnings=tuple(warnings))
