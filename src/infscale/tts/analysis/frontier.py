"""The Pareto frontier of accuracy vs FLOPs and the compute-optimal point per budget (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from infscale.plan.optimum import pareto_frontier
from infscale.tts.analysis.accuracy import OperatingPoint

__all__ = ["frontier_points", "compute_optimal", "compute_optimal_sizes"]


# ---------------------------------------------------------------------------------------- Pareto and compute-optimal
def frontier_points(points: Sequence[OperatingPoint], *, accounting: str = "ours") -> list[OperatingPoint]:
    """The points no other point beats (no more FLOPs under ``accounting`` and higher accuracy), by increasing FLOPs."""
    f = [p.flops_for(accounting) for p in points]
    return [points[int(i)] for i in pareto_frontier(f, [-p.accuracy for p in points])]


def compute_optimal(points: Sequence[OperatingPoint], budgets: Sequence[float], *, accounting: str = "ours"
                    ) -> list[OperatingPoint | None]:
    """For each FLOPs budget, the most accurate point that fits in it (``None`` when none fits)."""
    f = np.array([p.flops_for(accounting) for p in points])
    a = np.array([p.accuracy for p in points])
    front = pareto_frontier(f, -a)
    ff = f[front]
    out: list[OperatingPoint | None] = []
    for c in budgets:
        k = int(np.searchsorted(ff, c, side="right")) - 1
        out.append(points[int(front[k])] if k >= 0 else None)
    return out


def compute_optimal_sizes(points: Sequence[OperatingPoint], budgets: Sequence[float], *, accounting: str = "ours"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(budgets, N_opt) pairs: the parameter count of the compute-optimal point at each budget that any point fits."""
    best = compute_optimal(points, budgets, accounting=accounting)
    c = np.array([b for b, p in zip(budgets, best, strict=True) if p is not None], dtype=np.float64)
    n = np.array([p.n_params for p in best if p is not None], dtype=np.float64)
    return c, n
