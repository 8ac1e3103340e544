"""Aggregation: how one answer is chosen from a strategy's candidates, and how a solution's score is made from the
scores of its steps. A *strategy* (`infscale.tts.core.spec`) decides which candidates exist; an aggregation only
reads them.

- score aggregations (registry `SCORE_AGGREGATIONS`): a solution's score from its step scores, ``last`` (Wu et al.'s
  default), ``min``, ``mean``, ``prod``;
- answer aggregations: ``majority_vote`` (most frequent finished answer), ``best_of_n`` (the answer of the
  best-scored finished candidate), ``weighted_vote`` (the answer with the largest total score), and ``greedy`` (the
  answer of the one temperature-0 candidate). Ties go to the answer seen first (`records.TIE_RULE`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from infscale.registry import Registry
from infscale.tts.core.records import Candidate

__all__ = ["SCORE_AGGREGATIONS", "aggregate", "answers", "best_of_n", "majority_vote",
           "weighted_vote"]

SCORE_AGGREGATIONS: Registry[Callable[[Sequence[float]], float]] = Registry("score aggregation")
SCORE_AGGREGATIONS.register("last", lambda s: s[-1])
SCORE_AGGREGATIONS.register("min", min)
SCORE_AGGREGATIONS.register("mean", lambda s: sum(s) / len(s))
SCORE_AGGREGATIONS.register("prod", lambda s: math.prod(s))


def aggregate(step_scores: Sequence[float], how: str = "last") -> float | None:
    """Per-solution score from its step scores (Wu et al.: last by default; min, mean, prod)."""
    return SCORE_AGGREGATIONS.get(how)(step_scores) if step_scores else None


def majority_vote(candidates: Sequence[Candidate]) -> str | None:
    """Most frequent answer among finished candidates (ties: the answer seen first)."""
    votes = Counter(c.answer for c in candidates if c.finished and c.answer is not None)
    if not votes:
        return None
    order = {a: i for i, a in reversed(list(enumerate(c.answer for c in candidates)))}
    return max(votes, key=lambda a: (votes[a], -order[a]))


def best_of_n(candidates: Sequence[Candidate]) -> str | None:
    """Answer of the highest-scoring finished candidate."""
    pool = [c for c in candidates if c.finished and c.answer is not None and c.score is not None]
    return max(pool, key=lambda c: c.score).answer if pool else None  # type: ignore[arg-type,return-value]


def weighted_vote(candidates: Sequence[Candidate]) -> str | None:
    """Answer with the largest total score over finished candidates (reward-weighted majority)."""
    totals: dict[str, float] = defaultdict(float)
    for c in candidates:
        if c.finished and c.answer is not None and c.score is not None:
            totals[c.answer] += c.score
    return max(totals, key=totals.__getitem__) if totals else None


def answers(candidates: Sequence[Candidate], *, greedy: bool = False) -> dict[str, str | None]:
    """The answer of every aggregation the candidates allow: ``greedy`` (for a greedy strategy), ``majority_vote``,
    and ``best_of_n`` / ``weighted_vote`` when some candidate is scored."""
    out: dict[str, str | None] = {}
    if greedy:
        out["greedy"] = candidates[0].answer if candidates else None
    out["majority_vote"] = majority_vote(candidates)
    if any(c.score is not None for c in candidates):
        out["best_of_n"] = best_of_n(candidates)
        out["weighted_vote"] = weighted_vote(candidates)
    return out
