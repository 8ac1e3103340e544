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
from infscale.tts.core.record_files import read_run


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
class BestOfNRow:
    """One n of a sampling strategy's pool: the answer picked by the reward (best-of-n) against picks without it."""

    strategy: str
    strategy_label: str
    n: int
    best_of_n: float
    """The top-scored of n samples (exact expectation over n-subsets of the pool)."""
    majority_vote: float
    """The most frequent answer of n samples: no reward."""
    random_pick: float
    """One sample at random: no reward, no vote (pass@1)."""
    oracle: float
    """pass@n: some sample of the n is correct (what a perfect reward would reach)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardEval:
    run: str
    reward: str | None
    strategies: tuple[str, ...]
    quality: Any
    """`infscale.tts.analysis.reward_quality.RewardQuality` over every candidate of the run."""
    by_budget: tuple[BudgetQuality, ...] = ()
    """The same per (strategy, budget) that has scored candidates, in the order of the records."""
    best_of_n: tuple[BestOfNRow, ...] = ()
    """Each sampling strategy's largest pool at n = 1, 2, 4, ...: with and without the reward."""

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "reward": self.reward, "strategies": list(self.strategies), **self.quality.to_dict(),
                "by_budget": [b.to_dict() for b in self.by_budget], "best_of_n": [b.to_dict() for b in self.best_of_n]}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessBenchEval:
    """A reward model on a ProcessBench-format file: its earliest-error calls against the file's labels."""

    path: str
    reward: str
    score: Any
    """`infscale.tts.analysis.reward_quality.ProcessBenchScore`."""
    step_auc: float
    """Step AUC against the labels (steps before the earliest error good, from it on bad)."""
    n_steps: int
    reward_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reward": self.reward, **self.score.to_dict(), "step_auc": self.step_auc,
                "n_steps": self.n_steps, "reward_tokens": self.reward_tokens}


def scored_candidates(records: Sequence[Any], task: Any, problems: dict[str, Any] | None = None) -> list[Any]:
    """Every candidate of ``records`` with the task's exact step labels (``problems`` by id; default: rebuilt by
    ``task.load()``)."""
    from infscale.tts.analysis.reward_quality import ScoredCandidate  # lazy: numpy, scipy

    problems = problems if problems is not None else {p.problem_id: p for p in task.load()}
    out = []
    for r in records:
        if r.error is not None:
            continue
        problem = problems.get(r.problem_id)
        for c in r.candidates:
            labels: tuple[bool, ...] = ()
            if problem is not None and c.step_scores and task.step_checkable:  # else a one-step solution's
                # outcome verdict would pass for a step label
                steps = task.split_steps(c.text)
                verdict = task.verify_steps(problem, steps)
                if len(verdict) == len(steps) == len(c.step_scores):
                    labels = tuple(bool(v) for v in verdict)
            out.append(ScoredCandidate(problem_id=r.problem_id, score=c.score, correct=bool(c.correct),
                                       step_scores=tuple(c.step_scores), step_labels=labels))
    return out


def best_of_n_rows(records: Sequence[Any]) -> list[BestOfNRow]:
    """Best-of-n with the reward against majority vote and a random pick, at every n up to each sampling strategy's
    largest pool (the records of one run)."""
    from infscale.tts.analysis import accuracy_at_n, pools_from_records  # lazy: numpy

    rows: list[BestOfNRow] = []
    by_strategy: dict[str, list[Any]] = {}
    for r in records:
        if r.error is None and r.iid and r.candidates:
            by_strategy.setdefault(r.strategy, []).append(r)
    for strategy, recs in by_strategy.items():
        budget = max(r.budget for r in recs)
        pools = pools_from_records([r for r in recs if r.budget == budget])
        if not pools.has_scores:
            continue
        curves = accuracy_at_n(pools, aggregations=("best_of_n", "majority_vote", "pass"), n_bootstrap=1,
                               random_state=0)
        pick = float(curves["pass"].accuracy[0])
        for i, n in enumerate(curves["pass"].ns.tolist()):
            rows.append(BestOfNRow(strategy=strategy, strategy_label=recs[0].strategy_label, n=int(n),
                                   best_of_n=float(curves["best_of_n"].accuracy[i]),
                                   majority_vote=float(curves["majority_vote"].accuracy[i]), random_pick=pick,
                                   oracle=float(curves["pass"].accuracy[i])))
    return rows


def evaluate_runs(runs: Sequence[Path], threshold: float = 0.5) -> list[RewardEval]:
    from infscale.tts.analysis.reward_quality import reward_quality  # lazy: numpy, scipy
    from infscale.tts.core.config import load_config  # lazy: pydantic
    from infscale.tts.core.tasks import make_task  # lazy: pydantic

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
        problems = {p.problem_id: p for p in task.load()}
        labelled = [scored_candidates([r], task, problems) for r in records]  # each candidate labelled once
        try:
            quality = reward_quality([c for cs in labelled for c in cs], threshold)
        except ValueError as exc:
            raise InputError(f"{run}: {exc}") from None
        groups: dict[tuple[str, int], list[int]] = {}
        for i, r in enumerate(records):
            groups.setdefault((r.strategy, r.budget), []).append(i)
        by_budget = []
        for (strategy, budget), rows in groups.items():
            recs = [records[i] for i in rows]
            cands = [c for i in rows for c in labelled[i]]
            if not any(c.score is not None and math.isfinite(c.score) for c in cands):
                continue  # a strategy the reward never scored (greedy)
            by_budget.append(BudgetQuality(strategy=strategy, strategy_label=recs[0].strategy_label, budget=budget,
                                           quality=reward_quality(cands, threshold)))
        out.append(RewardEval(run=str(run), reward=None if cfg.reward is None else cfg.reward.name,
                              strategies=tuple(sorted({r.strategy for r in records})), quality=quality,
                              by_budget=tuple(by_budget), best_of_n=tuple(best_of_n_rows(records))))
    return out


def read_processbench(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Rows of a ProcessBench-format JSONL or Parquet file (``problem``, ``steps`` as a list of strings, ``label``:
    the earliest wrong step's index or -1); a bad row is one error naming file and row."""
    from infscale.tts.core.tasks import read_problem_file  # lazy: pydantic

    rows = read_problem_file(path, ("problem",))
    for where, row in rows:
        steps = row.get("steps")
        if not isinstance(steps, list) or not steps or not all(isinstance(x, str) for x in steps):
            raise InputError(f"{where}: field 'steps' must be a non-empty list of strings")
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
            raise InputError(f"{where}: field 'label' must be -1 or a step index below {len(steps)}, got {label!r}")
    return rows


def evaluate_processbench(path: Path, reward_name: str, params: dict[str, Any] | None = None,
                          threshold: float = 0.5) -> ProcessBenchEval:
    """Score every solution of a ProcessBench-format file with a reward model (one batched call) and compare its
    earliest-error calls with the labels."""
    from infscale.tts.analysis.reward_quality import (  # lazy: numpy, scipy
        auc,
        predicted_error,
        processbench_score,
    )
    from infscale.tts.core.rewards import make_reward, score_batch  # lazy: numpy, pydantic
    from infscale.tts.core.tasks import MathTask, Problem  # lazy: pydantic

    if not 0.0 < threshold < 1.0:
        raise InputError(f"--threshold must be in (0, 1), got {threshold}")
    rows = read_processbench(path)
    reward = make_reward(reward_name, MathTask(), **(params or {}))
    items = [(Problem(problem_id=str(row.get("id", where)), question=row["problem"], gold=None),
              row["problem"] + "\n", [[step.strip() + "\n\n" for step in row["steps"]]]) for where, row in rows]
    scored = score_batch(reward, items)
    calls, labels, step_s, step_y, tokens = [], [], [], [], 0
    for (where, row), (s,) in zip(rows, scored, strict=True):
        if len(s.scores) != len(row["steps"]):
            raise InputError(f"{where}: reward {reward_name!r} gave {len(s.scores)} scores for {len(row['steps'])} "
                             "steps (a process reward model scores every step)")
        calls.append(predicted_error(s.scores, threshold))
        labels.append(row["label"])
        step_s.extend(s.scores)
        step_y.extend(row["label"] < 0 or k < row["label"] for k in range(len(s.scores)))
        tokens += s.n_tokens
    return ProcessBenchEval(path=str(path), reward=reward_name, score=processbench_score(calls, labels, threshold),
                            step_auc=auc(step_s, step_y), n_steps=len(step_s), reward_tokens=tokens)


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` settings, each value read as YAML (``8`` an int, ``true`` a bool, text a string)."""
    import yaml  # lazy: yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--reward-param {pair!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value) if value else ""
    return out
