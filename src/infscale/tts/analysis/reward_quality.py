"""How well a reward model ranks the policy's own solutions (pure numpy).

Search and weighted voting are only as good as the reward that steers them, so the figures here are measured on the
candidates a run actually produced:

- **outcome AUC**: the probability that a correct solution's score is above a wrong one's (ties count a half), over
  every finished candidate with a score;
- **step AUC**: the same over steps, each labelled by the task's exact step checker (a step is good when every step up
  to it is right); only tasks that can check steps have it;
- **top-1 when solvable**: over problems with at least one correct candidate, how often the top-scored candidate of
  the problem's pool (ties share the credit) is correct; a random scorer gets the fraction of correct candidates;
- **position bias**: the Spearman correlation between a correct step's index and its score. A reward that learned
  length or position instead of correctness scores later correct steps lower (strongly negative); an unbiased one is
  near 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata, spearmanr


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredCandidate:
    """One candidate as the reward saw it."""

    problem_id: str
    score: float | None
    """The aggregated score best-of-n and weighted voting use; ``None`` when unscored."""
    correct: bool
    step_scores: tuple[float, ...] = ()
    step_labels: tuple[bool, ...] = ()
    """The task's exact verdict per step (empty when the task cannot check steps or the counts differ)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardQuality:
    outcome_auc: float
    step_auc: float | None
    top1_when_solvable: float
    top1_random: float
    """What a random scorer's top-1 would be: the mean fraction of correct candidates over the solvable problems."""
    position_bias: float | None
    n_candidates: int
    n_correct: int
    n_steps: int
    n_problems: int
    n_solvable: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties a half (Mann-Whitney U)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks: ties count a half
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _top1(cands: Sequence[ScoredCandidate]) -> tuple[float, float]:
    """(expected correctness of the top-scored candidate, fraction correct) of one problem's scored pool."""
    scores = np.array([c.score for c in cands], dtype=float)
    correct = np.array([c.correct for c in cands], dtype=bool)
    best = scores == scores.max()
    return float(correct[best].mean()), float(correct.mean())


def reward_quality(candidates: Sequence[ScoredCandidate]) -> RewardQuality:
    scored = [c for c in candidates if c.score is not None and np.isfinite(c.score)]
    if not scored:
        raise ValueError("no scored candidate: run the strategies with a reward model")
    outcome = auc([c.score for c in scored], [c.correct for c in scored])
    step_s, step_y, pos_i, pos_s = [], [], [], []
    for c in candidates:
        if c.step_labels and len(c.step_labels) == len(c.step_scores):
            step_s.extend(c.step_scores)
            step_y.extend(c.step_labels)
            for i, (s, ok) in enumerate(zip(c.step_scores, c.step_labels, strict=True)):
                if ok:
                    pos_i.append(i)
                    pos_s.append(s)
    step = auc(step_s, step_y) if step_s else None
    bias = None
    if len(set(pos_i)) > 1 and len(set(pos_s)) > 1:
        bias = float(spearmanr(pos_i, pos_s).statistic)
    pools: dict[str, list[ScoredCandidate]] = {}
    for c in scored:
        pools.setdefault(c.problem_id, []).append(c)
    solvable = [_top1(p) for p in pools.values() if any(c.correct for c in p)]
    return RewardQuality(
        outcome_auc=outcome, step_auc=step,
        top1_when_solvable=float(np.mean([t for t, _ in solvable])) if solvable else float("nan"),
        top1_random=float(np.mean([r for _, r in solvable])) if solvable else float("nan"),
        position_bias=bias, n_candidates=len(scored), n_correct=sum(c.correct for c in scored), n_steps=len(step_s),
        n_problems=len(pools), n_solvable=len(solvable))
