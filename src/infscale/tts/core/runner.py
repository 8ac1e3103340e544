"""Run a test-time compute config: every (strategy, budget, problem) becomes one appended JSONL `ProblemRecord`.

Resumable: records already in the file are skipped (keyed by strategy, budget and problem id); a problem that raises
is recorded with its ``error`` and the run continues (and is retried on resume). Nothing already written is ever
rewritten. Each unit's randomness is keyed by (``seed``, model, strategy, budget, problem id), so a resumed run writes
the records an uninterrupted one would (timings aside).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from infscale import records as store
from infscale.configio import check_output_dir, save_config
from infscale.errors import InputError
from infscale.progress import Progress
from infscale.records import RecordWriter, latest
from infscale.tts.core.config import RunConfig
from infscale.tts.core.generation import derive_seed
from infscale.tts.core.records import ProblemRecord

RECORDS = "records.jsonl"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    records_path: str
    written: int
    skipped: int
    failed: int
    reward: str = "none"
    """The reward as users should read it (`infscale.tts.core.rewards.reward_label`), e.g. ``verifier (outcome
    only)``."""


def read_records(path: Path) -> Iterator[ProblemRecord]:
    """The records of a run's JSONL file, one per (model, strategy, budget, problem): the latest written wins, so a
    failed then retried problem counts once. A torn last line (an interrupted write) is skipped."""
    parsed = []
    for line, data in store.read_numbered(path, missing_ok=True):
        try:
            parsed.append(ProblemRecord.from_json(data))
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"{path}:{line}: not a tts record ({exc.__class__.__name__}: {exc})") from None
    yield from latest(parsed, key=lambda r: (r.model, r.strategy, r.budget, r.problem_id))


def _key(strategy: str, budget: int, problem_id: str) -> tuple[str, int, str]:
    return (strategy, budget, problem_id)


def build(cfg: RunConfig):  # -> tuple[Task, Generator, Reward | None, Engine]
    from infscale.tts.core.generation import GENERATORS
    from infscale.tts.core.rewards import make_reward
    from infscale.tts.core.strategies import NEEDS_REWARD, STEP_SCORED, STRATEGIES, Engine
    from infscale.tts.core.tasks import make_task

    for s in cfg.strategies:
        STRATEGIES.get(s.name)  # budgets are bounded by the config model
        if s.name in NEEDS_REWARD and cfg.reward is None:
            raise InputError(f"strategy {s.name!r} needs a reward model: set `reward:` in the config")
    task = make_task(cfg.task.name, **cfg.task.params)
    try:
        generator = GENERATORS.get(cfg.generator.name)(**cfg.generator.params)
    except TypeError as exc:
        raise InputError(f"generator {cfg.generator.name!r}: bad parameters ({exc})") from None
    reward = None if cfg.reward is None else make_reward(cfg.reward.name, task, **cfg.reward.params)
    blind = [s.name for s in cfg.strategies if s.name in STEP_SCORED]
    if reward is not None and reward.outcome_only and blind:
        raise InputError(f"strategy {blind[0]!r} steers by the reward of each step, but reward {reward.name!r} on task "
                         f"{task.name!r} scores finished solutions only (every unfinished path would score alike): "
                         "use a process reward model (torch_prm, hf_prm) or an outcome strategy (best_of_n, "
                         "weighted_vote)")
    return task, generator, reward, Engine(task, generator, reward, cfg.search)


def run(cfg: RunConfig, progress: Callable[[int, int], None] | None = None) -> RunSummary:
    """Execute ``cfg``; ``progress(done, total)`` is called after every unit (one problem under one strategy at one
    budget); a bar or one line per unit goes to standard error (`infscale.progress`)."""

    out = check_output_dir(Path(cfg.out_dir) / cfg.run, f"run directory (out_dir {cfg.out_dir})")
    task, generator, reward, engine = build(cfg)  # every name and setting checked before anything is written
    problems = task.load()[: cfg.max_problems]
    if not problems:
        raise InputError(f"task {cfg.task.name!r}: no problems to run")
    dup = sorted(pid for pid, c in Counter(p.problem_id for p in problems).items() if c > 1)
    if dup:
        raise InputError(f"task {cfg.task.name!r}: duplicate problem ids {dup[:5]}{' ...' if len(dup) > 5 else ''} "
                         "(a resumed run would drop all but the first)")
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / "config.yaml", cfg)
    path = out / RECORDS
    model = cfg.model_name or cfg.generator.name
    jobs = [(s.name, b, p) for s in cfg.strategies for b in ([1] if s.name == "greedy" else s.budgets)
            for p in problems]
    written = skipped = failed = 0
    bar = Progress(f"tts run {cfg.run}", len(jobs), "units", about="a unit: one problem under one strategy at one "
                   "budget")
    with RecordWriter(path) as writer, bar:
        done = {_key(r.strategy, r.budget, r.problem_id) for r in read_records(path) if r.error is None}
        for i, (strategy, budget, problem) in enumerate(jobs, start=1):
            if _key(strategy, budget, problem.problem_id) in done:
                skipped += 1
                bar.advance(resumed=True)
            else:
                try:
                    rec = engine.run(strategy, problem, budget, run_name=cfg.run, model_name=model,
                                     reward_name=None if cfg.reward is None else cfg.reward.name,
                                     seed=derive_seed(cfg.seed, model, strategy, budget, problem.problem_id))
                except InputError:
                    raise
                except Exception as exc:  # recorded, and the run goes on
                    failed += 1
                    rec = ProblemRecord(run=cfg.run, model=model, n_params=generator.shape.n_params,
                                        strategy=strategy, budget=budget, problem_id=problem.problem_id,
                                        gold=problem.gold, candidates=(), error=f"{type(exc).__name__}: {exc}")
                writer.append(rec.to_json())
                written += 1
                bar.advance(note=f"{strategy} n={budget} {problem.problem_id}"
                            + (" failed" if rec.error else ""))
            if progress:
                progress(i, len(jobs))
    from infscale.tts.core.rewards import reward_label

    return RunSummary(records_path=str(path), written=written, skipped=skipped, failed=failed,
                      reward=reward_label(reward))
