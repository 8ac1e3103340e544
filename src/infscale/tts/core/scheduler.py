"""The scheduler: many units of work (one strategy on one problem at one budget) in flight at once.

Each unit runs its strategy's search function (`infscale.tts.core.search`), which yields requests. The scheduler
admits units while the batch limits allow, then repeats one *tick*: every pending generator request of every unit
goes to the generator together (one call per sampling setting, cut into calls of at most ``max_rows`` sequences),
every unit advances with its results; then every pending reward request goes to the reward model in one batched
call. So sampling strategies send many problems' samples in one call, and tree searches run step-synchronously
across problems: one generator call per depth with every active node of every problem, one reward call per depth.

A unit's randomness never depends on its batch: its k-th generator request is seeded ``derive_seed(unit seed, k)``,
prompt i of it ``derive_seed(that, i)``, and the backends draw each sample from its own stream
(`infscale.tts.core.generation`). A finished unit becomes a `ProblemRecord` at once (``on_record``); one whose
strategy raised, or whose batched call failed, is recorded with its error and the others go on. A generator that has
no endpoint left (`EndpointsDownError`) stops the run: nothing of the units in flight is written, and a resumed run
redoes them.

Batch limits (`BatchLimits`): ``max_rows`` sequences per generator call, ``max_kv_bytes`` of K/V for the units in
flight (each unit's rows at its prompt plus ``max_tokens``, priced by `TransformerShape.kv_cache_bytes`), and
``max_units`` in flight (1: one problem at a time). Unset limits take the generator's defaults (``max_batch_rows``,
``kv_budget_bytes``), which fill its device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from infscale.errors import STOPS_A_RUN
from infscale.tts.core.aggregation import answers
from infscale.tts.core.config import BatchLimits, SearchSettings
from infscale.tts.core.generation import Completion, Generator, derive_seed
from infscale.tts.core.ledger import LedgerBuilder
from infscale.tts.core.records import Candidate, ProblemRecord
from infscale.tts.core.rewards import Reward, StepScores, score_batch
from infscale.tts.core.search import Generate, Score, SearchContext
from infscale.tts.core.spec import StrategySpec, get_strategy
from infscale.tts.core.tasks import Problem, Task

__all__ = ["DEFAULT_MAX_ROWS", "Engine", "Limits", "Scheduler", "UnitJob", "resolve_limits"]

DEFAULT_MAX_ROWS = 256
"""Sequences per generator call for a generator that does not say (``max_batch_rows``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitJob:
    """One unit of work: a strategy on a problem at a budget, with the seed that keys all its randomness."""

    strategy: str
    budget: int
    problem: Problem
    seed: int | None

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.strategy, self.budget, self.problem.problem_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Batch limits with every default resolved."""

    max_rows: int
    max_kv_bytes: float | None
    max_units: int | None


def resolve_limits(limits: BatchLimits, generator: Generator) -> Limits:
    """``limits`` with the generator's defaults where unset (`DEFAULT_MAX_ROWS`; no K/V limit unless it says)."""
    rows = limits.max_rows or int(getattr(generator, "max_batch_rows", DEFAULT_MAX_ROWS))
    kv = limits.max_kv_bytes if limits.max_kv_bytes is not None else getattr(generator, "kv_budget_bytes", None)
    return Limits(max_rows=rows, max_kv_bytes=None if kv is None else float(kv), max_units=limits.max_units)


@dataclass(eq=False)
class _Unit:
    job: UnitJob
    spec: StrategySpec
    ctx: SearchContext
    search: Iterator[Any]
    ledger: LedgerBuilder
    rows: int
    kv_bytes: float
    t0: float = field(default_factory=time.perf_counter)
    pending: Generate | Score | None = None
    calls: int = 0
    generation_s: float = 0.0
    scoring_s: float = 0.0
    candidates: list[Candidate] | None = None
    error: str | None = None


class Scheduler:
    """Runs units of one (task, generator, reward) with many in flight; see the module docstring."""

    def __init__(self, task: Task, generator: Generator, reward: Reward | None, settings: SearchSettings,
                 options: dict[str, Any] | None = None, limits: BatchLimits | None = None, *, run_name: str = "",
                 model_name: str = "", reward_name: str | None = None) -> None:
        self.task, self.generator, self.reward, self.settings = task, generator, reward, settings
        self.options = dict(options or {})
        """The validated settings of each strategy (by name); a strategy missing here runs with its defaults."""
        self.limits = resolve_limits(limits or BatchLimits(), generator)
        self.run_name, self.model_name, self.reward_name = run_name, model_name or generator.name, reward_name
        ctx = getattr(generator.shape, "context_length", None)
        self.context_tokens = int(ctx) if ctx else None
        self.tokens = 0
        """Tokens generated so far (every unit, every call)."""
        self.on_tokens: Callable[[int], None] | None = None
        self._seen_specs: dict[str, StrategySpec] = {}

    # ----- units ------------------------------------------------------------------------------------------------
    def _spec(self, name: str) -> StrategySpec:
        spec = self._seen_specs.get(name)
        if spec is None:
            spec = self._seen_specs[name] = get_strategy(name)
            if self.reward is None:  # a missing reward model; the outcome-only rule is the run's (`tts run`)
                spec.check(None, self.task)
            if name not in self.options:
                self.options[name] = spec.options(None)
        return spec

    def _start(self, job: UnitJob) -> _Unit:
        spec = self._spec(job.strategy)
        options = self.options[job.strategy]
        ctx = SearchContext(task=self.task, problem=job.problem, budget=job.budget, settings=self.settings,
                            options=options, count_tokens=self.generator.count_tokens,
                            context_tokens=self.context_tokens, seed=job.seed if job.seed is not None else 0)
        rows = spec.rows(job.budget, options)
        unit = _Unit(job=job, spec=spec, ctx=ctx, search=spec.search(ctx),
                     ledger=LedgerBuilder(self.generator.shape, getattr(self.reward, "shape", None)), rows=rows,
                     kv_bytes=self._kv_bytes(ctx, rows))
        self._advance(unit, None)
        return unit

    def _kv_bytes(self, ctx: SearchContext, rows: int) -> float:
        """K/V bytes of ``rows`` sequences of the unit's prompt + ``max_tokens`` (counted only under a K/V limit:
        the prompt's tokens may cost a request to a server)."""
        if self.limits.max_kv_bytes is None:
            return 0.0
        length = ctx.n_prompt + self.settings.max_tokens
        if self.context_tokens:
            length = min(length, self.context_tokens)
        return self.generator.shape.kv_cache_bytes(length, rows, float(getattr(self.generator, "kv_bytes_per_elem", 2.0)))

    def _advance(self, unit: _Unit, value: Any) -> None:
        """Send ``value`` into the unit's search until it asks for real work or ends. A reward request without a
        reward model is answered here (no scores)."""
        try:
            request = unit.search.send(value) if unit.pending is not None or value is not None else next(unit.search)
            while isinstance(request, Score) and self.reward is None:
                request = unit.search.send([() for _ in request.paths])
        except StopIteration as stop:
            unit.pending, unit.candidates = None, list(stop.value or [])
            return
        except STOPS_A_RUN:
            raise
        except Exception as exc:  # the strategy failed on this problem: recorded, the run goes on
            _fail([unit], exc)
            return
        if not isinstance(request, Generate | Score):
            unit.pending, unit.error = None, (f"TypeError: strategy {unit.job.strategy!r} yielded "
                                              f"{type(request).__name__}, not Generate or Score")
            return
        unit.pending = request

    def _fits(self, inflight: Sequence[_Unit], unit: _Unit) -> bool:
        lim = self.limits
        if not inflight:
            return True
        if lim.max_units is not None and len(inflight) >= lim.max_units:
            return False
        if sum(u.rows for u in inflight) + unit.rows > lim.max_rows:
            return False
        return lim.max_kv_bytes is None or sum(u.kv_bytes for u in inflight) + unit.kv_bytes <= lim.max_kv_bytes

    # ----- the loop ---------------------------------------------------------------------------------------------
    def run(self, jobs: Iterable[UnitJob], on_record: Callable[[ProblemRecord], None]) -> None:
        """Run every job; ``on_record`` gets each unit's record as soon as it finishes (in finishing order)."""
        queue = iter(jobs)
        waiting: _Unit | None = None
        inflight: list[_Unit] = []
        while True:
            while True:  # admit
                if waiting is None:
                    job = next(queue, None)
                    if job is None:
                        break
                    waiting = self._start(job)
                if waiting.pending is None:  # finished (or failed) before asking for anything
                    on_record(self._record(waiting))
                    waiting = None
                    continue
                if not self._fits(inflight, waiting):
                    break
                inflight.append(waiting)
                waiting = None
            if not inflight:
                return
            self._generate([u for u in inflight if isinstance(u.pending, Generate)])
            self._score([u for u in inflight if isinstance(u.pending, Score)])
            for u in [u for u in inflight if u.pending is None]:
                inflight.remove(u)
                on_record(self._record(u))

    def _generate(self, units: list[_Unit]) -> None:
        groups: dict[Any, list[_Unit]] = {}
        for u in units:
            groups.setdefault(u.pending.params, []).append(u)  # type: ignore[union-attr]
        for params, members in groups.items():
            for chunk in _chunks(members, self.limits.max_rows):
                prompts: list[str] = []
                counts: list[int] = []
                seeds: list[int] = []
                for u in chunk:
                    req = u.pending
                    assert isinstance(req, Generate)
                    call = derive_seed(u.job.seed, u.calls) if u.job.seed is not None else None
                    u.calls += 1
                    prompts += req.prompts
                    counts += req.n
                    seeds += [derive_seed(call, i) if call is not None else 0 for i in range(len(req.prompts))]
                unseeded = any(u.job.seed is None for u in chunk)
                t0 = time.perf_counter()
                try:
                    out = self.generator.generate(prompts, counts, params, None if unseeded else seeds)
                except STOPS_A_RUN:  # bad input, or no endpoint left: the run stops, nothing in flight is written
                    raise
                except Exception as exc:
                    _fail(chunk, exc)
                    continue
                elapsed = time.perf_counter() - t0
                pos = 0
                results: list[list[list[Completion]]] = []
                for u in chunk:
                    k = len(u.pending.prompts)  # type: ignore[union-attr]
                    results.append(out[pos:pos + k])
                    pos += k
                made = [sum(c.completion_tokens for row in r for c in row) for r in results]
                self.tokens += sum(made)
                if self.on_tokens is not None:
                    self.on_tokens(sum(made))
                for u, r, share in zip(chunk, results, _shares(elapsed, made), strict=True):
                    u.generation_s += share
                    for comps, cached in zip(r, u.pending.cached, strict=True):  # type: ignore[union-attr]
                        u.ledger.add_request(comps, cached)
                    self._advance(u, r)

    def _score(self, units: list[_Unit]) -> None:
        if not units:
            return
        assert self.reward is not None
        items = [(u.job.problem, u.ctx.prompt, [list(p) for p in u.pending.paths]) for u in units]  # type: ignore[union-attr]
        t0 = time.perf_counter()
        try:
            scored: list[list[StepScores]] = score_batch(self.reward, items)
        except STOPS_A_RUN:
            raise
        except Exception as exc:
            _fail(units, exc)
            return
        elapsed = time.perf_counter() - t0
        read = [sum(s.n_tokens for s in ss) for ss in scored]
        for u, ss, share in zip(units, scored, _shares(elapsed, read), strict=True):
            u.scoring_s += share
            u.ledger.add_reward([s.n_tokens for s in ss])
            self._advance(u, [s.scores for s in ss])

    def _record(self, u: _Unit) -> ProblemRecord:
        job, spec = u.job, u.spec
        common = dict(run=self.run_name, model=self.model_name, n_params=self.generator.shape.n_params,
                      strategy=job.strategy, budget=job.budget, problem_id=job.problem.problem_id,
                      gold=job.problem.gold, reward=self.reward_name, iid=spec.iid, reward_steers=spec.reward_steers,
                      strategy_label=spec.label, groups=dict(job.problem.groups))
        if u.error is not None:
            return ProblemRecord(**common, candidates=(), error=u.error)  # type: ignore[arg-type]
        cands = u.candidates or []
        chosen = answers(cands, greedy=spec.reports == "greedy")
        correct = {}
        if job.problem.gold is not None:
            correct = {k: bool(self.task.is_correct(a, job.problem.gold)) for k, a in chosen.items()}
        return ProblemRecord(**common, candidates=tuple(cands), answers=chosen, correct=correct,  # type: ignore[arg-type]
                             ledger=u.ledger.freeze(), wall_s=time.perf_counter() - u.t0,
                             generation_s=u.generation_s, scoring_s=u.scoring_s)


def _fail(units: Iterable[_Unit], exc: Exception) -> None:
    """The units end with ``exc`` as their recorded error (their strategy, or the batched call they were in, failed)."""
    for u in units:
        u.pending, u.error = None, f"{type(exc).__name__}: {exc}"


def _shares(elapsed: float, weights: Sequence[int]) -> list[float]:
    """A batched call's time split among its units in proportion to their tokens (evenly when none)."""
    total = sum(weights)
    return [elapsed * (w / total if total else 1.0 / len(weights)) for w in weights]


def _chunks(units: list[_Unit], max_rows: int) -> Iterator[list[_Unit]]:
    """Consecutive groups of whole requests with at most ``max_rows`` sequences (a larger request goes alone)."""
    chunk: list[_Unit] = []
    rows = 0
    for u in units:
        r = u.pending.rows  # type: ignore[union-attr]
        if chunk and rows + r > max_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(u)
        rows += r
    if chunk:
        yield chunk


class Engine:
    """One (task, generator, reward) and the shared search settings: runs a strategy on a problem, or many units
    through a `Scheduler`. ``options`` holds each strategy's own settings by name (defaults otherwise)."""

    def __init__(self, task: Task, generator: Generator, reward: Reward | None = None,
                 settings: SearchSettings | None = None, options: dict[str, Any] | None = None,
                 limits: BatchLimits | None = None) -> None:
        self.task, self.generator, self.reward = task, generator, reward
        self.settings = settings or SearchSettings()
        self.options = {name: get_strategy(name).options(value) for name, value in (options or {}).items()}
        self.limits = limits

    def scheduler(self, *, run_name: str = "", model_name: str = "", reward_name: str | None = None) -> Scheduler:
        return Scheduler(self.task, self.generator, self.reward, self.settings, self.options, self.limits,
                         run_name=run_name, model_name=model_name, reward_name=reward_name)

    def run(self, strategy: str, problem: Problem, budget: int, *, seed: int | None = None, run_name: str = "",
            model_name: str = "", reward_name: str | None = None) -> ProblemRecord:
        """One unit of work. With ``seed`` all its randomness is keyed by it; without, the generator's own stream
        runs on."""
        out: list[ProblemRecord] = []
        self.scheduler(run_name=run_name, model_name=model_name, reward_name=reward_name).run(
            [UnitJob(strategy=strategy, budget=budget, problem=problem, seed=seed)], out.append)
        return out[0]
