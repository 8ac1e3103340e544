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
- **ProcessBench F1** (Zheng et al. 2024, "ProcessBench: Identifying Process Errors in Mathematical Reasoning"): the
  reward names a solution's earliest wrong step (the first step scored below ``threshold``, or "no error"); the
  accuracy of that call on the solutions with an error and on those without, and their harmonic mean. On a run, the
  truth is the task's exact step checker (tasks that can check steps); on a ProcessBench-format file, its labels.
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
class ProcessBenchScore:
    """ProcessBench's metric: the earliest-error call's accuracy on erroneous and on correct solutions, and F1."""

    error_accuracy: float
    correct_accuracy: float
    f1: float
    n_erroneous: int
    n_correct: int
    threshold: float

    def to_dict(self) -> dict[str, float | int]:
        return {f"processbench_{k}": getattr(self, k) for k in self.__dataclass_fields__}


def earliest_error(step_labels: Sequence[bool]) -> int:
    """The index of the first wrong step, ``-1`` when every step is right (ProcessBench's ``label``)."""
    return next((i for i, ok in enumerate(step_labels) if not ok), -1)


def predicted_error(step_scores: Sequence[float], threshold: float = 0.5) -> int:
    """The reward's call: the first step scored below ``threshold``, ``-1`` when none is."""
    return next((i for i, s in enumerate(step_scores) if s < threshold), -1)


def processbench_score(predicted: Sequence[int], labels: Sequence[int], threshold: float = 0.5) -> ProcessBenchScore:
    """F1 of the accuracies on erroneous (``label >= 0``: the exact step must be named) and correct solutions
    (``label = -1``: "no error" must be said); an empty side's accuracy is nan, and so is F1."""
    pred, lab = np.asarray(predicted, dtype=int), np.asarray(labels, dtype=int)
    if pred.shape != lab.shape:
        raise ValueError(f"{pred.size} predictions but {lab.size} labels")
    err, ok = lab >= 0, lab < 0
    acc_err = float((pred[err] == lab[err]).mean()) if err.any() else float("nan")
    acc_ok = float((pred[ok] == -1).mean()) if ok.any() else float("nan")
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else (
        0.0 if np.isfinite(acc_err + acc_ok) else float("nan"))
    return ProcessBenchScore(error_accuracy=acc_err, correct_accuracy=acc_ok, f1=float(f1), n_erroneous=int(err.sum()),
                             n_correct=int(ok.sum()), threshold=threshold)


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
    processbench: ProcessBenchScore | None = None
    """On the candidates whose every step the task labelled (``None`` when it labels none)."""

    def to_dict(self) -> dict[str, float | int | None]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "processbench"}
        if self.processbench is not None:
            out.update(self.processbench.to_dict())
        return out


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


def reward_quality(candidates: Sequence[ScoredCandidate], threshold: float = 0.5) -> RewardQuality:
    scored = [c for c in candidates if c.score is not None and np.isfinite(c.score)]
    if not scored:
        raise ValueError("no scored candidate: run the strategies with a reward model")
    outcome = auc([c.score for c in scored], [c.correct for c in scored])
    step_s, step_y, pos_i, pos_s = [], [], [], []
    calls, truth = [], []
    for c in candidates:
        if c.step_labels and len(c.step_labels) == len(c.step_scores):
            calls.append(predicted_error(c.step_scores, threshold))
            truth.append(earliest_error(c.step_labels))
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
        n_problems=len(pools), n_solvable=len(solvable),
        processbench=processbench_score(calls, truth, threshold) if calls else None)
