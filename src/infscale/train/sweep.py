"""Sweeps: expand a YAML grid into runs, execute them by a named executor, keep one append-only record file.

Layout of a sweep directory ``out``:
- ``sweep.yaml``     the resolved sweep (every run's full config);
- ``runs/<run_id>/`` one run directory per run (see `infscale.train.trainer`);
- ``records.jsonl``  one line per finished run, appended by this (single-writer) process under a file lock.

Idempotent and resumable: a run whose id is already in ``records.jsonl`` is skipped; a run with ``runs/<id>/record.json``
but no line (killed between the two writes) gets its line without training again; an interrupted run resumes from its
``ckpt.pt``. Executors run the pending runs and hand records back; only the parent appends, after re-reading the file
under the lock, so no record is ever duplicated even when two sweeps share a directory.

Executors (registry `EXECUTORS`, looked up by name): ``local`` (in-process one at a time, or a process pool with
``workers > 1``, fed the runs longest first by training FLOPs) and ``ray`` (local ``ray.init()`` or a cluster
``address``; one GPU per trial when GPUs exist).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from infscale import records as store
from infscale.arch import TransformerShape
from infscale.configio import check_output_dir, load_yaml, save_config
from infscale.errors import InputError
from infscale.progress import Progress
from infscale.records import RecordWriter, latest
from infscale.registry import Registry
from infscale.train.config import NearSpec, SweepConfig, TrainConfig, parse_train
from infscale.train.data import open_token_data, prepare_data
from infscale.train.trainer import plan_tokens, resolve_shape, train


@dataclass(frozen=True, slots=True)
class Job:
    """One run of a sweep: its id, its full train config (as a dict) and where its data and outputs live."""

    run_id: str
    config: dict[str, Any]
    run_dir: str
    data_dir: str


# ----- grid expansion -----------------------------------------------------------------------------------------------
def shapes_near(spec: NearSpec, vocab_size: int, tied: bool, context_length: int) -> list[dict[str, int]]:
    """Shapes (d_model x n_layers, heads of ``head_dim``) whose exact N is within ``rel_tol`` of ``n_params``,
    closest first, at most ``max_shapes``."""
    found = []
    for d in spec.d_model:
        if d % spec.head_dim:
            continue
        d_ff = None if spec.d_ff_ratio is None else max(1, round(spec.d_ff_ratio * d))
        for L in spec.n_layers:
            shape = TransformerShape(d_model=d, n_layers=L, n_heads=d // spec.head_dim, d_ff=d_ff,
                                     vocab_size=vocab_size, tied_embeddings=tied, context_length=context_length)
            err = abs(shape.n_params - spec.n_params) / spec.n_params
            if err <= spec.rel_tol:
                entry = {"d_model": d, "n_layers": L, "n_heads": d // spec.head_dim}
                if d_ff is not None:
                    entry["d_ff"] = d_ff
                found.append((err, entry))
    found.sort(key=lambda t: t[0])
    return [e for _, e in found[: spec.max_shapes]]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def expand(sweep: SweepConfig, vocab_size: int, source: str = "<sweep>") -> list[tuple[str, TrainConfig]]:
    """(run_id, TrainConfig) for every group x shape x tokens-per-param, in order. Run ids are unique."""
    base_model = dict(sweep.base.get("model", {}))
    tied = bool(base_model.get("tied_embeddings", True))
    ctx = int(base_model.get("context_length", 128))
    runs: list[tuple[str, TrainConfig]] = []
    for group in sweep.groups:
        shapes = [s.model_dump(exclude_none=True) for s in group.shapes]
        if group.near is not None:
            near = shapes_near(group.near, vocab_size, tied, ctx)
            if not near:
                raise InputError(f"{source}: group {group.name!r}: no shape within {group.near.rel_tol:.0%} of "
                                 f"N={group.near.n_params:,}")
            shapes += near
        for s in shapes:
            tag = s.pop("tag", "") or ""
            for m in group.tokens_per_param:
                for seed in group.seeds or [None]:
                    run_id = f"{group.name}-d{s['d_model']}xL{s['n_layers']}h{s['n_heads']}{tag}-m{m:g}" + (
                        f"-s{seed}" if seed else "")
                    budget = {"tokens_per_param": m} if group.n_params is None else {
                        "tokens": round(m * group.n_params)}
                    over = {"model": s, "group": group.name, "run_id": run_id} | budget
                    data = _merge(sweep.base, over | ({} if seed is None else {"seed": seed}))
                    data.pop("tokens" if group.n_params is None else "tokens_per_param", None)
                    runs.append((run_id, parse_train(data, f"{source}: run {run_id}")))
    ids = [r for r, _ in runs]
    dup = {r for r in ids if ids.count(r) > 1}
    if dup:
        raise InputError(f"{source}: duplicate runs {sorted(dup)}")
    return runs


# ----- the record file (infscale.records: one writer, fsynced lines, one torn-tail rule) ---------------------------
def read_run_records(path: str | Path) -> list[dict[str, Any]]:
    """One record per run of a ``records.jsonl`` (the latest line of a run id wins; a torn last line is skipped); a
    line that is not a training run's record (no ``run_id``: a tts run's records, say) is an `InputError`."""
    rows = store.read_records(path, missing_ok=True)
    for i, r in enumerate(rows, start=1):
        if "run_id" not in r:
            what = " (a tts run's records: `infscale tts analyze` reads them)" if "problem_id" in r else ""
            raise InputError(f"{path}: record {i} is not a training run's record: no field 'run_id'{what}")
    return latest(rows, key=lambda r: r.get("run_id"))


def append_record(path: str | Path, record: dict[str, Any]) -> bool:
    """Append ``record`` unless its ``run_id`` is already there; True when written (a writer holding the file is
    refused in one line)."""
    with RecordWriter(path) as writer:
        if any(r.get("run_id") == record["run_id"] for r in writer.records()):
            return False
        writer.append(record)
    return True


# ----- executors --------------------------------------------------------------------------------------------------
def run_job(job: Job) -> dict[str, Any]:
    """Execute one job (in whatever process the executor chose) and return its record."""

    cfg = TrainConfig.model_validate(job.config)
    record = train(cfg, job.run_dir, data=open_token_data(job.data_dir))
    assert record is not None
    return record


class LocalExecutor:
    """Runs jobs in this process one after another, or in a process pool of ``workers``."""

    def __init__(self, workers: int = 1, **_: Any) -> None:
        self.workers = workers

    def map(self, fn: Callable[[Job], dict[str, Any]], jobs: list[Job]) -> Iterator[dict[str, Any]]:
        if self.workers <= 1:
            for job in jobs:
                yield fn(job)
            return

        _quiet_resource_tracker()
        with ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(fn, job) for job in jobs]
            for fut in as_completed(futures):
                yield fut.result()


_PARENT_POLL_S = 1.0


def _die_with_parent(parent_pid: int) -> None:
    """A pool worker's initializer: exit as soon as the sweep that started it is gone (a sweep killed with -9 would
    otherwise leave its workers training on, orphaned, beside the resumed sweep)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker without its "leaked semaphore objects" warning: after a kill -9 of
    the sweep it unlinks the pool's semaphores (its job) and says so once per kill in the user's terminal (noise)."""

    old = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [old, "ignore::UserWarning:multiprocessing.resource_tracker"]))
    try:
        resource_tracker.ensure_running()
    finally:
        if old is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = old


class RayExecutor:
    """Runs jobs as Ray tasks: one GPU per trial when the cluster has GPUs, otherwise ``threads`` CPUs each."""

    def __init__(self, workers: int = 1, address: str | None = None, threads: int = 1, **_: Any) -> None:
        self.workers, self.address, self.threads = workers, address, threads

    def map(self, fn: Callable[[Job], dict[str, Any]], jobs: list[Job]) -> Iterator[dict[str, Any]]:
        try:
            import ray  # lazy: ray
        except ImportError:
            raise InputError("executor 'ray' needs the ray package: pip install 'infscale[ray]'") from None
        started = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address)
            else:
                ray.init(num_cpus=self.workers * self.threads, include_dashboard=False, log_to_driver=False)
            started = True
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=self.threads, max_retries=0)(fn)
            pending = [task.remote(job) for job in jobs]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            if started:
                ray.shutdown()


EXECUTORS: Registry[type] = Registry("executor")
EXECUTORS.register("local", LocalExecutor)
EXECUTORS.register("ray", RayExecutor)


def get_executor(name: str, **settings: Any):
    """An executor instance by name; unknown names are an `InputError` listing the known ones."""
    return EXECUTORS.get(name)(**settings)


# ----- the sweep ----------------------------------------------------------------------------------------------------
def _train_flops(cfg: TrainConfig, vocab_size: int) -> float:
    """Planned training FLOPs of a run (the exact per-token count times its tokens)."""

    shape = resolve_shape(cfg, vocab_size)
    return shape.flops_train_token(cfg.model.context_length) * plan_tokens(cfg, shape.n_params)[1]


def run_sweep(sweep: SweepConfig, out_dir: str | Path, executor: str | None = None, workers: int | None = None,
              source: str = "<sweep>", on_record: Callable[[dict[str, Any], bool], None] | None = None
              ) -> list[dict[str, Any]]:
    """Run every pending run of ``sweep`` into ``out_dir``; returns the records of all its runs (old and new).

    ``on_record(record, new)`` is called for each run as it is settled (``new`` False for skipped runs). Progress: a
    bar, or one line per run with its ETA, on standard error (`infscale.progress`), beside each run's own
    per-interval lines from the trainer.
    """
    check_output_dir(out_dir)

    name = executor or sweep.executor
    workers = workers or sweep.workers
    exe = get_executor(name, workers=workers, address=sweep.address,
                       threads=max(1, (os.cpu_count() or 1) // workers))
    out = Path(out_dir)
    base = parse_train(_merge(sweep.base, {"model": {"d_model": 1, "n_layers": 1, "n_heads": 1},
                                           "tokens_per_param": 1}), f"{source}: base")
    d = base.data
    data = prepare_data(d.corpus, d.vocab_size, d.val_fraction, d.cache_dir, d.max_bytes)
    runs = expand(sweep, data.vocab_size, source)
    out.mkdir(parents=True, exist_ok=True)
    resolved = sweep.model_dump(mode="json") | {"runs": {rid: cfg.model_dump(mode="json") for rid, cfg in runs}}
    save_config(out / "sweep.yaml", resolved)

    bar = Progress(f"sweep {out.name}", len(runs), "runs")
    with RecordWriter(out / "records.jsonl") as writer, bar:
        done = {r.get("run_id"): r for r in latest(writer.records(), key=lambda r: r.get("run_id"))}
        jobs: list[Job] = []
        for run_id, cfg in runs:
            run_dir = out / "runs" / run_id
            if run_id in done:
                bar.advance(resumed=True)
                if on_record:
                    on_record(done[run_id], False)
                continue
            finished = run_dir / "record.json"
            if finished.exists():  # trained, but killed before its line was appended
                rec = json.loads(finished.read_text())
                writer.append(rec)
                done[run_id] = rec
                bar.advance(resumed=True)
                if on_record:
                    on_record(rec, False)
                continue
            config = cfg.model_dump(mode="json")
            if config["threads"] is None and workers > 1:  # a pool shares the cores
                config["threads"] = max(1, (os.cpu_count() or 1) // workers)
            jobs.append(Job(run_id, config, str(run_dir), str(data.directory)))
        if workers > 1:  # longest first (by training FLOPs): no worker is left alone with a long run at the end
            jobs.sort(key=lambda job: _train_flops(dict(runs)[job.run_id], data.vocab_size), reverse=True)
        if jobs:
            bar.note(f"{len(jobs)} runs to train ({name} executor, {workers} worker{'s' if workers > 1 else ''})")
        for rec in exe.map(run_job, jobs):
            new = rec["run_id"] not in done
            if new:
                writer.append(rec)
            done[rec["run_id"]] = rec
            bar.advance(note=f"{rec['run_id']}: val loss {rec['loss']:.4f}, {rec['wall_s']:.0f} s")
            if on_record:
                on_record(rec, new)
    return [done[rid] for rid, _ in runs if rid in done]


def runs_in_progress(directory: str | Path, finished: set[str]) -> list[dict[str, Any]]:
    """The runs of a sweep/train directory that have started but have no record yet (a sweep still running, or one
    that was stopped): ``run_id``, ``step`` reached (from its ``metrics.jsonl``), planned ``steps``, latest
    ``loss_smoothed``, ``checkpoint`` (whether it resumes from one) and ``active`` (whether a trainer holds it now)."""

    runs_dir = Path(directory) / "runs"
    out = []
    for run_dir in sorted(p for p in runs_dir.glob("*") if p.is_dir()) if runs_dir.is_dir() else []:
        if run_dir.name in finished or (run_dir / "record.json").exists() or not (run_dir / "config.yaml").exists() \
                or (run_dir / "records.jsonl").exists():  # a finished training run, not one, or a tts run
            continue
        planned = (load_yaml(run_dir / "config.yaml", what="run config").get("resolved") or {}).get("steps")
        rows = store.read_records(run_dir / "metrics.jsonl", missing_ok=True)
        last = next((r for r in reversed(rows) if "loss_smoothed" in r), {})
        out.append({"run_id": run_dir.name, "step": int(last.get("step", 0)), "steps": planned,
                    "loss_smoothed": last.get("loss_smoothed"), "checkpoint": (run_dir / "ckpt.pt").exists(),
                    "active": store.held(run_dir / "metrics.jsonl")})
    return out
