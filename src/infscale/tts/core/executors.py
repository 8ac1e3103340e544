"""Where a tts run's units execute (registry `TTS_EXECUTORS`): ``local`` (this process, one `Scheduler`) and ``ray``
(shards of units to Ray actors, each owning one generator: one GPU each when the cluster has GPUs, a vLLM engine per
actor with the vllm generator). Either way each unit's record reaches the caller's one writer as the unit (local) or
its shard (ray) finishes, and a unit's record does not depend on where it ran: its randomness is keyed by its seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from infscale.errors import STOPS_A_RUN, InputError
from infscale.registry import Registry
from infscale.tts.core.config import RunConfig
from infscale.tts.core.generation import GENERATORS
from infscale.tts.core.records import ProblemRecord
from infscale.tts.core.rewards import make_reward
from infscale.tts.core.scheduler import Scheduler, UnitJob
from infscale.tts.core.spec import get_strategy
from infscale.tts.core.tasks import make_task

__all__ = ["TTS_EXECUTORS", "Built", "default_threads", "strategy_options"]

OnRecord = Callable[[ProblemRecord], None]


def default_threads(workers: int = 1) -> int:
    """Torch threads per worker: the cores not already busy (the 1-minute load average, this process not yet
    counted), shared among the workers, at least 1. A 2-core machine beside a busy process runs at 1 thread, which
    is what makes it fast there (oversubscribed threads wait on each other)."""
    cores = os.cpu_count() or 1
    try:
        busy = min(cores - 1, int(round(os.getloadavg()[0])))
    except OSError:
        busy = 0
    return max(1, (cores - busy) // max(1, workers))


def strategy_options(cfg: RunConfig) -> dict[str, Any]:
    """Each configured strategy's own settings, validated by its spec (an error names the config entry)."""

    options: dict[str, Any] = {}
    for i, s in enumerate(cfg.strategies):
        spec = get_strategy(s.name)
        value = spec.options(s.settings, f"strategies.{i}.settings ({s.name})")
        if s.name in options and options[s.name] != value:
            raise InputError(f"strategies.{i}: strategy {s.name!r} is listed twice with different settings; give "
                             "each setting its own run")
        options[s.name] = value
    return options


class Built:
    """A run's task, generator and reward, built from its config (every name and parameter checked)."""

    def __init__(self, cfg: RunConfig, task: Any = None) -> None:
        self.task = task if task is not None else make_task(cfg.task.name, **cfg.task.params)
        try:
            self.generator = GENERATORS.get(cfg.generator.name)(**cfg.generator.params)
        except TypeError as exc:
            raise InputError(f"generator {cfg.generator.name!r}: bad parameters ({exc})") from None
        self.reward = None if cfg.reward is None else make_reward(cfg.reward.name, self.task, **cfg.reward.params)
        self.options = strategy_options(cfg)

    def scheduler(self, cfg: RunConfig) -> Scheduler:
        return Scheduler(self.task, self.generator, self.reward, cfg.search, self.options, cfg.batch,
                         run_name=cfg.run, model_name=cfg.model_name or cfg.generator.name,
                         reward_name=None if cfg.reward is None else cfg.reward.name)


TTS_EXECUTORS: Registry[type] = Registry("tts executor")


@TTS_EXECUTORS.register("local")
class LocalExecutor:
    """Every unit in this process, through one `Scheduler` (many units in flight)."""

    def __init__(self, cfg: RunConfig, built: Built | None = None) -> None:
        self.cfg = cfg
        self.built = built or Built(cfg)

    def run(self, jobs: Sequence[UnitJob], on_record: OnRecord, on_tokens: Callable[[int], None] | None = None) -> None:
        scheduler = self.built.scheduler(self.cfg)
        scheduler.on_tokens = on_tokens
        scheduler.run(jobs, on_record)


class _Worker:
    """A Ray actor: builds the run's generator and reward once, then runs shards of units."""

    def __init__(self, cfg_json: dict[str, Any], threads: int) -> None:
        import torch  # lazy: torch

        torch.set_num_threads(threads)
        self.cfg = RunConfig.model_validate(cfg_json)
        self.built = Built(self.cfg)

    def run(self, jobs: list[UnitJob]) -> tuple[list[dict[str, Any]], int]:
        out: list[dict[str, Any]] = []
        scheduler = self.built.scheduler(self.cfg)
        scheduler.run(jobs, lambda rec: out.append(rec.to_json()))
        return out, scheduler.tokens


@TTS_EXECUTORS.register("ray")
class RayExecutor:
    """Shards of units to ``cfg.workers`` Ray actors (``cfg.address`` for a cluster, else a local Ray). A shard is a
    few scheduler batches of units; each actor holds two shards at a time, so it never waits for the parent."""

    def __init__(self, cfg: RunConfig, built: Built | None = None) -> None:
        try:
            # lazy: ray
            import ray  # noqa: F401
        except ImportError:
            raise InputError("executor 'ray' needs the ray package: pip install 'infscale[ray]'") from None
        self.cfg = cfg

    def run(self, jobs: Sequence[UnitJob], on_record: OnRecord, on_tokens: Callable[[int], None] | None = None) -> None:
        import ray  # lazy: ray

        cfg = self.cfg
        threads = cfg.threads or default_threads(cfg.workers)
        started = not ray.is_initialized()
        if started:
            if cfg.address:
                ray.init(address=cfg.address, log_to_driver=False)
            else:
                ray.init(num_cpus=cfg.workers * threads, include_dashboard=False, log_to_driver=False)
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=threads, max_restarts=0)(_Worker)
            workers = [actor.remote(cfg.model_dump(mode="json"), threads) for _ in range(cfg.workers)]
            size = max(1, min(64, -(-len(jobs) // (4 * cfg.workers))))
            shards = [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]
            pending: dict[Any, Any] = {}
            for w in workers * 2:
                if shards:
                    pending[w.run.remote(shards.pop(0))] = w
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                w = pending.pop(ref)
                try:
                    records, tokens = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, STOPS_A_RUN):
                        raise type(cause)(str(cause)) from None
                    raise
                for data in records:
                    on_record(ProblemRecord.from_json(data))
                if on_tokens is not None:
                    on_tokens(tokens)
                if shards:
                    pending[w.run.remote(shards.pop(0))] = w
        finally:
            if started:
                ray.shutdown()
