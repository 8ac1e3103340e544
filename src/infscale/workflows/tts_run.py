"""`infscale tts run` as a workflow: the run directory, its resolved config, its records and progress, the
executor, and a typed summary per (strategy, budget).

Every (strategy, budget, problem) is one unit of work and one appended `ProblemRecord` (in ``records.jsonl``, or
``records.shard-I-of-K.jsonl`` for shard I of a Slurm-style array run). Resumable: units already recorded without an
error are skipped; a unit that failed is recorded with its error and retried on the next run. A unit's randomness is
keyed by (seed, model, strategy, budget, problem id), so the records do not depend on batch sizes, executors, shards
or interruptions (timings aside). Units run through the scheduler (`infscale.tts.core.scheduler`) locally, or in
shards on Ray actors (``executor: ray``). A generator with no endpoint left stops the run with one line; what was
written stays, and the same command finishes it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infscale.configio import check_output_dir, resolve_recipe, save_config
from infscale.errors import InputError, RunFailed
from infscale.progress import Progress
from infscale.records import RecordWriter
from infscale.tts.core.config import RunConfig, load_config
from infscale.tts.core.executors import TTS_EXECUTORS, Built, default_threads, strategy_options
from infscale.tts.core.generation import derive_seed
from infscale.tts.core.record_files import read_problem_records, shard_file
from infscale.tts.core.records import ProblemRecord
from infscale.tts.core.rewards import reward_label
from infscale.tts.core.scheduler import UnitJob
from infscale.tts.core.spec import get_strategy
from infscale.tts.core.tasks import make_task

__all__ = ["StrategyRow", "TtsRunResult", "load_run_config", "parse_shard", "run_tts", "summarise"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyRow:
    """One (strategy, budget) of a run: its accuracy and mean cost per problem."""

    strategy: str
    label: str
    budget: int
    problems: int
    failed: int
    majority_accuracy: float | None
    weighted_accuracy: float | None
    tokens_per_problem: float
    policy_flops_per_problem: float
    reward_flops_per_problem: float
    wu2025_flops_per_problem: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TtsRunResult:
    run: str
    run_dir: str
    records_path: str
    written: int
    skipped: int
    failed: int
    reward: str
    """The reward as users should read it (``verifier (outcome only)``)."""
    executor: str
    shard: str | None
    units: int
    generated_tokens: int
    wall_s: float
    rows: tuple[StrategyRow, ...]
    records: tuple[ProblemRecord, ...] = field(default=(), repr=False)
    """Every record of this records file after the run (resumed ones included)."""

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "records"}
        d["tokens_per_s"] = self.tokens_per_s
        return d


def load_run_config(config: str | Path) -> RunConfig:
    """A run config by path or bundled recipe name (``tts_arith_own``)."""
    return load_config(resolve_recipe(config))


def parse_shard(text: str) -> tuple[int, int]:
    """``I/K`` -> (I, K), 1 <= I <= K."""
    left, sep, right = text.partition("/")
    try:
        index, count = int(left), int(right)
    except ValueError:
        index = count = 0
    if not sep or not 1 <= index <= count:
        raise InputError(f"--shard {text!r}: expected I/K with 1 <= I <= K (e.g. 3/8)")
    return index, count


def summarise(records: Sequence[ProblemRecord]) -> tuple[StrategyRow, ...]:
    """A row per (strategy, budget): accuracies over the problems that did not fail, mean tokens and FLOPs."""
    groups: dict[tuple[str, int], list[ProblemRecord]] = {}
    for r in records:
        groups.setdefault((r.strategy, r.budget), []).append(r)
    rows = []
    for (strategy, budget), rs in sorted(groups.items()):
        ok = [r for r in rs if r.error is None]

        def acc(key: str, ok: list[ProblemRecord] = ok) -> float | None:
            vals = [r.correct[key] for r in ok if key in r.correct]
            return sum(vals) / len(vals) if vals else None

        def mean(fn: Any, ok: list[ProblemRecord] = ok) -> float:
            return sum(fn(r) for r in ok) / len(ok) if ok else 0.0

        rows.append(StrategyRow(
            strategy=strategy, label=ok[0].strategy_label if ok else strategy, budget=budget, problems=len(ok),
            failed=len(rs) - len(ok), majority_accuracy=acc("majority_vote"), weighted_accuracy=acc("weighted_vote"),
            tokens_per_problem=mean(lambda r: r.ledger.generated_tokens),
            policy_flops_per_problem=mean(lambda r: r.ledger.policy_prefill_flops + r.ledger.policy_decode_flops),
            reward_flops_per_problem=mean(lambda r: r.ledger.reward_flops),
            wu2025_flops_per_problem=mean(lambda r: r.ledger.wu2025_flops)))
    return tuple(rows)


def _jobs(cfg: RunConfig, problems: list[Any], model: str, shard: tuple[int, int]) -> list[Any]:
    jobs = [UnitJob(strategy=s.name, budget=b, problem=p, seed=derive_seed(cfg.seed, model, s.name, b, p.problem_id))
            for s in cfg.strategies for b in get_strategy(s.name).budgets(s.budgets) for p in problems]
    index, count = shard
    return jobs[index - 1::count]


def _problems(task: Any, cfg: RunConfig) -> list[Any]:
    problems = task.load()[: cfg.max_problems]
    if not problems:
        raise InputError(f"task {cfg.task.name!r}: no problems to run")
    dup = sorted(pid for pid, c in Counter(p.problem_id for p in problems).items() if c > 1)
    if dup:
        raise InputError(f"task {cfg.task.name!r}: duplicate problem ids {dup[:5]}{' ...' if len(dup) > 5 else ''} "
                         "(a resumed run would drop all but the first)")
    return problems


def run_tts(cfg: RunConfig, *, out: str | Path | None = None, shard: tuple[int, int] = (1, 1),
            quiet: bool = False) -> TtsRunResult:
    """Run every pending unit of ``cfg`` into ``out`` (default ``<out_dir>/<run>``); see the module docstring.
    Every name, setting and the output directory are checked before anything is written. Locally, torch runs with
    ``cfg.threads`` (default `default_threads`) for the run and the caller's thread count is restored after it."""
    if cfg.executor != "local":
        return _run(cfg, out, shard, quiet)
    import torch  # lazy: torch

    before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or default_threads())
    try:
        return _run(cfg, out, shard, quiet)
    finally:
        torch.set_num_threads(before)


def _run(cfg: RunConfig, out: str | Path | None, shard: tuple[int, int], quiet: bool) -> TtsRunResult:
    run_dir = check_output_dir(Path(out) if out is not None else Path(cfg.out_dir) / cfg.run,
                               "--out" if out is not None else f"run directory (out_dir {cfg.out_dir})")
    executor_cls = TTS_EXECUTORS.get(cfg.executor)
    model = cfg.model_name or cfg.generator.name
    built = None
    task = make_task(cfg.task.name, **cfg.task.params)
    problems = _problems(task, cfg)  # a bad problem file is refused before any model loads
    if cfg.executor == "local":
        built = Built(cfg, task)  # every name and setting checked, models loaded
        reward_text = reward_label(built.reward)
        for s in cfg.strategies:
            get_strategy(s.name).check(built.reward, task)
    else:  # the actors build the models; the names and settings are checked here
        strategy_options(cfg)
        if cfg.reward is None:  # a reward's own checks need it built: the actors do that
            for s in cfg.strategies:
                get_strategy(s.name).check(None, task)
        reward_text = "none" if cfg.reward is None else cfg.reward.name
    jobs = _jobs(cfg, problems, model, shard)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(run_dir / "config.yaml", cfg)
    path = run_dir / shard_file(*shard)
    shard_text = None if shard == (1, 1) else f"{shard[0]}/{shard[1]}"
    label = f"tts run {cfg.run}" + (f" shard {shard_text}" if shard_text else "")
    bar = Progress(label, len(jobs), "units", enabled=not quiet,
                   about="a unit: one problem under one strategy at one budget; many run at once")
    counts = {"written": 0, "failed": 0, "tokens": 0}
    t0 = time.perf_counter()
    with RecordWriter(path) as writer, bar:
        kept = {(r.strategy, r.budget, r.problem_id): r for r in read_problem_records(path) if r.error is None}
        todo = [j for j in jobs if j.key not in kept]
        if len(todo) < len(jobs):
            bar.advance(len(jobs) - len(todo), resumed=True, note=f"{len(jobs) - len(todo)} units already recorded")
        fresh: dict[tuple[str, int, str], ProblemRecord] = {}

        def on_record(rec: ProblemRecord) -> None:
            writer.append(rec.to_json())
            fresh[(rec.strategy, rec.budget, rec.problem_id)] = rec
            counts["written"] += 1
            counts["failed"] += rec.error is not None
            rate = counts["tokens"] / max(time.perf_counter() - t0, 1e-9)
            bar.advance(note=f"{rec.strategy} n={rec.budget} {rec.problem_id}{' failed' if rec.error else ''}, "
                             f"{rate:,.0f} tokens/s")

        def on_tokens(n: int) -> None:
            counts["tokens"] += n

        if todo:
            try:
                executor_cls(cfg, built).run(todo, on_record, on_tokens)
            except RunFailed as exc:
                raise RunFailed(f"{exc}; {counts['written']} units of this run are in {path}: run the same "
                                "command again to finish it") from None
    wall = time.perf_counter() - t0
    everything = {**kept, **fresh}
    records = tuple(everything[j.key] for j in jobs if j.key in everything)
    return TtsRunResult(run=cfg.run, run_dir=str(run_dir), records_path=str(path), written=counts["written"],
                        skipped=len(jobs) - len(todo), failed=counts["failed"], reward=reward_text,
                        executor=cfg.executor, shard=shard_text, units=len(jobs), generated_tokens=counts["tokens"],
                        wall_s=wall, rows=summarise(records), records=records)
