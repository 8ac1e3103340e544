"""Seed A's model selection as a workflow (Bian et al. 2025, §1 of REFERENCE.md).

    candidates -> predicted loss (law) and latency (profile or measurements) -> keep those under the latency limit
    -> rank by predicted loss -> shortlist the top k -> train them through the trainer -> evaluate (validation loss)
    -> choose, reporting the rank correlation between the predicted and the achieved order.

Ranking, not the loss value, is what the law is trusted for: seed A found loss-to-accuracy mappings too noisy to pick a
model by predicted loss alone, so the shortlist is trained and the achieved order decides.

Files in the output directory (append-only where it matters, so an interrupted selection resumes):
- ``config.json``      the resolved selection config;
- ``candidates.json``  every feasible candidate in predicted order (label, shape, N, D, predicted loss and latency);
- ``records.jsonl``    one line per finished training run (the trainer's record + rank and predictions);
- ``runs/<run_id>/``   the trainer's run directories (checkpoints make a half-finished run resume);
- ``report.json``      the choice, the shortlist with predicted and achieved losses, and the Spearman correlation.

The trainer is called through an executor looked up by name (`EXECUTORS`); torch is imported only when a run starts.
Unlike the rest of `infscale.plan` this module does file I/O (it is the workflow layer); the package does not import it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infscale.errors import InputError
from infscale.plan.adapters import latency_from_profile, loss_from_law
from infscale.plan.optimum import PlanConstraints, PlanResult, plan_shapes
from infscale.plan.shapes import ShapeRules, enumerate_shapes, get_family

__all__ = [
    "SelectConfig",
    "Job",
    "SelectionReport",
    "EXECUTORS",
    "spearman",
    "shortlist",
    "parse_select",
    "run_selection",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LawSpec(_Strict):
    """A law given inline: its registered form and parameters."""

    law: str = Field(description="Registered law form, e.g. inference_aware.")
    params: dict[str, float] = Field(description="Fitted parameters of the form.")


class WorkloadSpec(_Strict):
    """The request whose latency is limited (seed A: batch 1, 128 in / 256 out)."""

    batch: int = Field(default=1, gt=0)
    input_len: int = Field(default=128, gt=0)
    output_len: int = Field(default=256, gt=0)
    dtype: str = Field(default="fp32", description="bf16 | fp16 | fp32 (CPU inference runs in fp32).")


class SelectConfig(_Strict):
    """A model-selection run. ``train`` holds the trainer fields shared by every candidate (not model or tokens)."""

    law: str | LawSpec = Field(description="Fitted law: a FIT.json path (relative to the config) or inline.")
    family: str = Field(default="llama", description="Shape family the rules start from (seed-a | llama | gpt).")
    rules: dict[str, Any] = Field(default_factory=dict, description="ShapeRules fields overriding the family's.")
    min_params: float = Field(gt=0, description="Smallest candidate N (exact, embeddings included).")
    max_params: float = Field(gt=0, description="Largest candidate N.")
    tokens: int = Field(gt=0, description="Training tokens D of every candidate.")
    hardware: str = Field(default="generic-cpu", description="Hardware profile for predicted latency.")
    workload: WorkloadSpec = WorkloadSpec()
    max_latency_s: float | None = Field(default=None, gt=0, description="Latency limit per request, seconds.")
    measured: str | None = Field(default=None, description="CSV of measured latencies overriding predictions.")
    shortlist: int = Field(default=3, gt=0, description="How many top-ranked candidates to train.")
    executor: str = Field(default="local", description="Executor name (see EXECUTORS).")
    model: dict[str, Any] = Field(default_factory=dict,
                                  description="ModelConfig fields shared by every run (context_length, tied_embeddings).")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields shared by every run.")

    @model_validator(mode="after")
    def _range(self) -> SelectConfig:
        if self.min_params > self.max_params:
            raise ValueError(f"min_params {self.min_params:g} > max_params {self.max_params:g}")
        for key in ("model", "tokens", "tokens_per_param", "run_id"):
            if key in self.train:
                raise ValueError(f"train.{key} is set by the selection, remove it")
        for key in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
            if key in self.model:
                raise ValueError(f"model.{key} is chosen by the selection, remove it")
        return self


def parse_select(data: dict[str, Any], source: str = "<config>") -> SelectConfig:
    """Validate a mapping into a `SelectConfig`; errors become one `InputError` line naming the field."""
    try:
        return SelectConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise InputError(f"{source}: field {loc}: {err['msg']}") from None


# ---- pure pieces -------------------------------------------------------------------------------------------------
def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN with fewer than two points or a constant side."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 2:
        return float("nan")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(v.size)
        r[order] = np.arange(v.size, dtype=np.float64)
        for value in np.unique(v):  # average the ranks of ties
            tie = v == value
            r[tie] = r[tie].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One shortlisted candidate to train."""

    rank: int
    """1-based position in the predicted order."""
    run_id: str
    shape: dict[str, int]
    """``d_model, n_layers, n_heads, n_kv_heads, d_ff``."""
    n_params: int
    n_tokens: int
    predicted_loss: float
    predicted_latency_s: float


def shortlist(result: PlanResult, k: int) -> list[Job]:
    """The k feasible candidates with the lowest predicted loss, as training jobs."""
    jobs = []
    for rank, i in enumerate(result.ranked()[:k], start=1):
        row = result.row(int(i))
        shape = {key: int(row[key]) for key in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff")}
        run_id = f"r{rank}-d{shape['d_model']}x{shape['n_layers']}h{shape['n_heads']}kv{shape['n_kv_heads']}"
        jobs.append(Job(rank=rank, run_id=run_id, shape=shape, n_params=int(row["n_params"]),
                        n_tokens=int(row["n_tokens"]), predicted_loss=float(row["loss"]),
                        predicted_latency_s=float(row["latency_s"])))
    return jobs


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionReport:
    """The outcome: every shortlisted run with its predicted and achieved loss, the choice, the rank correlation."""

    runs: list[dict[str, Any]]
    """Shortlist in predicted order with ``achieved_loss`` (validation loss) and ``achieved_rank``."""
    chosen: dict[str, Any]
    """The run with the lowest achieved loss."""
    spearman: float
    """Rank correlation of predicted and achieved loss over the shortlist."""
    n_candidates: int
    n_feasible: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---- executors -----------------------------------------------------------------------------------------------------
TrainFn = Callable[[dict[str, Any], Path], dict[str, Any]]
"""``train(train_config_mapping, run_dir) -> record`` (the trainer's record with at least ``loss``, ``N``, ``D``)."""


def _trainer(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    from infscale.train.config import parse_train
    from infscale.train.trainer import train

    return train(parse_train(config, f"select run {run_dir.name}"), run_dir)


def _local(jobs: list[tuple[Job, dict[str, Any], Path]], train_fn: TrainFn,
           on_done: Callable[[Job, dict[str, Any]], None]) -> None:
    """Runs one after another in this process (the trainer itself resumes a run from its checkpoint)."""
    for job, config, run_dir in jobs:
        on_done(job, train_fn(config, run_dir))


def _ray(jobs: list[tuple[Job, dict[str, Any], Path]], train_fn: TrainFn,
         on_done: Callable[[Job, dict[str, Any]], None]) -> None:
    """Runs as Ray tasks (a local cluster unless RAY_ADDRESS is set); records are written as tasks finish."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(train_fn)
    pending = {remote.remote(config, run_dir): job for job, config, run_dir in jobs}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(done[0])
        on_done(job, ray.get(done[0]))


EXECUTORS: dict[str, Callable[..., None]] = {"local": _local, "ray": _ray}


# ---- the workflow --------------------------------------------------------------------------------------------------
def _rules(cfg: SelectConfig) -> ShapeRules:
    try:
        base = get_family(cfg.family)
    except KeyError as exc:
        raise InputError(f"field family: {exc.args[0]}") from None
    data = cfg.train.get("data", {}) if isinstance(cfg.train.get("data", {}), dict) else {}
    model = cfg.model
    overrides = dict(cfg.rules)
    # the trainer's vocabulary and tying decide N, so the candidates are counted the same way
    overrides.setdefault("vocab_size", int(data.get("vocab_size", 512)))
    overrides.setdefault("tied_embeddings", bool(model.get("tied_embeddings", True)))
    for key in ("n_heads", "head_dims", "kv_heads"):
        if isinstance(overrides.get(key), list):
            overrides[key] = tuple(overrides[key])
    try:
        return replace(base, **overrides)
    except (TypeError, ValueError) as exc:
        raise InputError(f"field rules: {exc}") from None


def _read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Finished runs by run_id; a truncated last line (a killed write) is ignored, other bad lines are errors."""
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    lines = path.read_text().splitlines()
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if no == len(lines):
                break
            raise InputError(f"{path}: line {no}: not JSON") from None
        out[rec["run_id"]] = rec
    return out


def run_selection(cfg: SelectConfig, out_dir: str | Path, *, law: Any, profile: Any = None,
                  measured: dict[tuple[int, int, int, int], float] | None = None,
                  train_fn: TrainFn | None = None, max_runs: int | None = None) -> SelectionReport | None:
    """Run (or resume) the selection; returns None when ``max_runs`` stopped it before every run finished.

    ``law`` is the fitted law (``predict(N, D, aspect_ratio)``), ``profile`` the hardware profile for predicted latency
    (a `HardwareProfile` or a preset name; default ``cfg.hardware``).
    """
    from infscale.latency.model import Workload

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
    rules = _rules(cfg)
    grid = enumerate_shapes(rules, cfg.min_params, cfg.max_params)
    w = cfg.workload
    try:
        workload = Workload(batch=w.batch, input_len=w.input_len, output_len=w.output_len, dtype=w.dtype)
    except ValueError as exc:
        raise InputError(f"field workload: {exc}") from None
    latency_fn = latency_from_profile(profile if profile is not None else cfg.hardware, workload)
    constraints = PlanConstraints(max_latency_s=cfg.max_latency_s, n_tokens=float(cfg.tokens))
    result = plan_shapes(grid, loss_from_law(law), constraints, latency_fn, measured=measured)
    ranked = result.ranked()
    (out / "candidates.json").write_text(json.dumps([result.row(int(i)) for i in ranked], indent=1))
    jobs = shortlist(result, cfg.shortlist)

    records_path = out / "records.jsonl"
    finished = _read_records(records_path)
    todo = [j for j in jobs if j.run_id not in finished]
    if max_runs is not None:
        todo = todo[:max_runs]
    work = []
    for job in todo:
        config = {**cfg.train, "model": {**cfg.model, **job.shape}, "tokens": job.n_tokens, "run_id": job.run_id}
        work.append((job, config, out / "runs" / job.run_id))

    def on_done(job: Job, record: dict[str, Any]) -> None:
        line = {"run_id": job.run_id, "rank": job.rank, "predicted_loss": job.predicted_loss,
                "predicted_latency_s": job.predicted_latency_s, "planned_n_params": job.n_params,
                **{k: v for k, v in record.items() if k not in ("run_id", "config")}}
        with records_path.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
            fh.flush()
        finished[job.run_id] = line

    try:
        executor = EXECUTORS[cfg.executor]
    except KeyError:
        raise InputError(f"field executor: unknown {cfg.executor!r}; known: {', '.join(sorted(EXECUTORS))}") from None
    executor(work, train_fn or _trainer, on_done)
    if any(j.run_id not in finished for j in jobs):
        return None

    runs = []
    for job in jobs:
        rec = finished[job.run_id]
        runs.append({"rank": job.rank, "run_id": job.run_id, **job.shape, "n_params": int(rec.get("N", job.n_params)),
                     "n_tokens": int(rec.get("D", job.n_tokens)), "predicted_loss": job.predicted_loss,
                     "predicted_latency_s": job.predicted_latency_s, "achieved_loss": float(rec["loss"])})
    achieved = np.array([r["achieved_loss"] for r in runs])
    for pos, r in enumerate(np.argsort(achieved, kind="stable"), start=1):
        runs[int(r)]["achieved_rank"] = pos
    chosen = runs[int(np.argmin(achieved))]
    report = SelectionReport(runs=runs, chosen=chosen,
                             spearman=spearman([r["predicted_loss"] for r in runs], achieved),
                             n_candidates=len(grid), n_feasible=int(result.feasible.sum()))
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report
