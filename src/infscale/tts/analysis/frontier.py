"""The Pareto frontier of accuracy vs FLOPs and the compute-optimal point per budget (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infscale.plan.optimum import pareto_frontier
from infscale.tts.analysis.accuracy import OperatingPoint
from infscale.tts.core.records import SAMPLING_NAMES

__all__ = ["frontier_points", "compute_optimal", "compute_optimal_sizes", "MatchedFlops", "matched_accuracy_flops"]


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


# ---------------------------------------------------------------------------------------- search vs sampling
def is_sampling(p: OperatingPoint) -> bool:
    """Whether a point is independent sampling's: its records said so (``method_label`` ``sampling``), or, for a
    point that carries no label (a paper table's), its strategy is one of the sampling names."""
    if p.method_label:
        return p.method_label == "sampling"
    return p.strategy.partition("+")[0] in SAMPLING_NAMES


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchedFlops:
    """Wu et al.'s Table 1 comparison on one model: sampling's best accuracy (over its aggregations and n) and the
    FLOPs it took, against the cheapest measured point of a search strategy that reaches it."""

    model: str
    accounting: str
    search: str
    target_accuracy: float
    """Sampling's best accuracy: the bar the search must reach."""
    baseline: OperatingPoint
    """The cheapest sampling point at that accuracy."""
    reached: OperatingPoint | None
    """The cheapest search point at or above it (``None``: the search never got there)."""

    @property
    def flops_ratio(self) -> float | None:
        """Sampling's FLOPs over the search's (> 1: the search needs fewer)."""
        if self.reached is None:
            return None
        return self.baseline.flops_for(self.accounting) / self.reached.flops_for(self.accounting)


def matched_accuracy_flops(points: Sequence[OperatingPoint], *, search: str = "rebase+weighted_vote",
                           accounting: str = "ours") -> list[MatchedFlops]:
    """Per model with both ``search`` points and sampling points: `MatchedFlops` from measured points only (no
    interpolation between budgets, so the ratio is what was run)."""
    out = []
    for model in sorted({p.model for p in points}):
        mine = [p for p in points if p.model == model]
        base = [p for p in mine if is_sampling(p)]
        tree = [p for p in mine if p.strategy == search]
        if not base or not tree:
            continue
        best = max(p.accuracy for p in base)
        baseline = min((p for p in base if p.accuracy == best), key=lambda p: p.flops_for(accounting))
        reached = min((p for p in tree if p.accuracy >= best), key=lambda p: p.flops_for(accounting), default=None)
        out.append(MatchedFlops(model=model, accounting=accounting, search=search, target_accuracy=best,
                                baseline=baseline, reached=reached))
    return out
