"""`infscale tts eval-reward RUNS...`: how well each run's reward ranked the policy's own candidates.

A run directory holds its records and its resolved config; the config rebuilds the task, whose exact checker labels
every candidate's steps, and `infscale.tts.analysis.reward_quality` turns scores and labels into outcome AUC, step
AUC, top-1 when solvable and the position bias (see that module): over the whole run, and for each strategy and
budget apart (pooling every candidate of a problem across strategies and budgets mixes pools of different sizes and
makers: the bundled PRM's pooled top-1 read 0.371 against a random 0.398 while its best-of-16 top-1 was 0.833).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infscale.errors import InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetQuality:
    """The reward's quality on the candidates of one strategy at one budget."""

    strategy: str
    strategy_label: str
    budget: int
    quality: Any

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "strategy_label": self.strategy_label, "budget": self.budget,
                **self.quality.to_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardEval:
    run: str
    reward: str | None
    strategies: tuple[str, ...]
    quality: Any
    """`infscale.tts.analysis.reward_quality.RewardQuality` over every candidate of the run."""
    by_budget: tuple[BudgetQuality, ...] = ()
    """The same per (strategy, budget) that has scored candidates, in the order of the records."""

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "reward": self.reward, "strategies": list(self.strategies), **self.quality.to_dict(),
                "by_budget": [b.to_dict() for b in self.by_budget]}


def scored_candidates(records: Sequence[Any], task: Any) -> list[Any]:
    """Every candidate of ``records`` with the task's exact step labels (problems rebuilt by ``task.load()``)."""
    from infscale.tts.analysis.reward_quality import ScoredCandidate

    problems = {p.problem_id: p for p in task.load()}
    out = []
    for r in records:
        if r.error is not None:
            continue
        problem = problems.get(r.problem_id)
        for c in r.candidates:
            labels: tuple[bool, ...] = ()
            if problem is not None and c.step_scores:
                steps = task.split_steps(c.text)
                verdict = task.verify_steps(problem, steps)
                if len(verdict) == len(steps) == len(c.step_scores):
                    labels = tuple(bool(v) for v in verdict)
            out.append(ScoredCandidate(problem_id=r.problem_id, score=c.score, correct=bool(c.correct),
                                       step_scores=tuple(c.step_scores), step_labels=labels))
    return out


def evaluate_runs(runs: Sequence[Path]) -> list[RewardEval]:
    from infscale.tts.analysis.reward_quality import reward_quality
    from infscale.tts.core.config import load_config
    from infscale.tts.core.record_files import read_run
    from infscale.tts.core.tasks import make_task

    if not runs:
        raise InputError("give run directories (each holding records.jsonl and config.yaml)")
    out = []
    for run in runs:
        if not run.is_dir():
            raise InputError(f"{run}: not a run directory (records.jsonl and config.yaml from `infscale tts run`)")
        cfg = load_config(run / "config.yaml")
        records = read_run(run)
        if not records:
            raise InputError(f"{run}: no records")
        task = make_task(cfg.task.name, **cfg.task.params)
        try:
            quality = reward_quality(scored_candidates(records, task))
        except ValueError as exc:
            raise InputError(f"{run}: {exc}") from None
        groups: dict[tuple[str, int], list[Any]] = {}
        for r in records:
            groups.setdefault((r.strategy, r.budget), []).append(r)
        by_budget = []
        for (strategy, budget), recs in groups.items():
            cands = scored_candidates(recs, task)
            if not any(c.score is not None and math.isfinite(c.score) for c in cands):
                continue  # a strategy the reward never scored (greedy)
            by_budget.append(BudgetQuality(strategy=strategy, strategy_label=recs[0].strategy_label, budget=budget,
                                           quality=reward_quality(cands)))
        out.append(RewardEval(run=str(run), reward=None if cfg.reward is None else cfg.reward.name,
                              strategies=tuple(sorted({r.strategy for r in records})), quality=quality,
                              by_budget=tuple(by_budget)))
    return out
