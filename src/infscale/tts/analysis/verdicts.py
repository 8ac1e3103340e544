"""Wu et al.'s comparison as verdicts (pure): does a smaller model with one strategy match or beat a larger model with
another at no more FLOPs, under an accounting; and the PRM-quality crossover, the same verdicts at rewards of set
quality (`infscale.workflows.tts_mini` runs the study, this judges its points)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infscale.tts.analysis.accuracy import ACCOUNTINGS, OperatingPoint

__all__ = ["OUTCOMES", "Verdict", "verdicts", "crossover_rows"]

OUTCOMES = ("small", "tie", "large", "none")
"""Verdict outcomes: the smaller model is more accurate, equally accurate, less accurate (the larger one wins), or has
no point within the larger one's FLOPs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """One larger model's point with ``large_strategy`` against one smaller model's best ``small_strategy`` point
    that costs no more FLOPs (under ``accounting``)."""

    accounting: str
    large: str
    large_n_params: int
    large_n: int
    large_flops: float
    large_accuracy: float
    small: str
    small_n_params: int
    small_n: int | None
    small_flops: float | None
    small_accuracy: float | None
    outcome: str
    """``small`` (more accurate), ``tie``, ``large`` (the larger model is more accurate) or ``none`` (no smaller
    point within the FLOPs)."""


def verdicts(points: Sequence[OperatingPoint], accounting: str, small_strategy: str, large_strategy: str) -> list[Verdict]:
    """For every larger model's ``large_strategy`` point and every smaller model: the smaller model's most accurate
    ``small_strategy`` point with at most the larger one's FLOPs (ties: the cheaper), and who wins."""
    sizes = {p.model: p.n_params for p in points}
    out = []
    for large in sorted(sizes, key=sizes.__getitem__):
        bigs = sorted((p for p in points if p.model == large and p.strategy == large_strategy), key=lambda p: p.n)
        for big in bigs:
            budget = big.flops_for(accounting)
            for small in sorted((m for m in sizes if sizes[m] < sizes[large]), key=sizes.__getitem__):
                fits = [p for p in points if p.model == small and p.strategy == small_strategy
                        and p.flops_for(accounting) <= budget]
                best = max(fits, key=lambda p: (p.accuracy, -p.flops_for(accounting)), default=None)
                if best is None:
                    outcome = "none"
                else:
                    outcome = ("small" if best.accuracy > big.accuracy else
                               "tie" if best.accuracy == big.accuracy else "large")
                out.append(Verdict(
                    accounting=accounting, large=large, large_n_params=sizes[large], large_n=big.n,
                    large_flops=budget, large_accuracy=big.accuracy, small=small, small_n_params=sizes[small],
                    small_n=None if best is None else best.n,
                    small_flops=None if best is None else best.flops_for(accounting),
                    small_accuracy=None if best is None else best.accuracy, outcome=outcome))
    return out


def crossover_rows(points: Sequence[OperatingPoint], by_auc: Mapping[float, Sequence[OperatingPoint]],
                   small_s: str, large_s: str) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """Verdicts at every reward AUC under every accounting: the smaller models' ``small_s`` points of that AUC
    (``by_auc``) against the larger models' ``large_s`` points of the main run (``points``). Returns the rows (verdict
    counts and the mean accuracy gap in points per AUC and accounting) and, per accounting, the least AUC from which
    on the smaller model wins most decided verdicts (``None``: at no AUC tried)."""
    large_pts = [p for p in points if p.strategy == large_s]
    rows, at = [], {}
    for acc in ACCOUNTINGS:
        wins_from: float | None = None
        for auc in sorted(by_auc):
            vs = verdicts([*large_pts, *(p for p in by_auc[auc] if p.strategy == small_s)], acc, small_s, large_s)
            counts = {o: sum(v.outcome == o for v in vs) for o in OUTCOMES}
            decided = [v for v in vs if v.outcome != "none"]
            gap = (100 * sum(v.small_accuracy - v.large_accuracy for v in decided) / len(decided)  # type: ignore[operator]
                   if decided else None)
            won = counts["small"] > (counts["tie"] + counts["large"])
            rows.append({"reward_auc": auc, "accounting": acc, **counts, "decided": len(decided),
                         "small_share": counts["small"] / len(decided) if decided else None, "mean_gap_points": gap})
            wins_from = (auc if wins_from is None else wins_from) if won else None
        at[acc] = wins_from
    return rows, at
