"""Bian et al.'s model selection as a workflow (Bian et al. 2025, §1 of docs/references.md).

    candidates -> predicted loss (law) and latency (profile or measurements) -> keep those under the latency limit
    -> rank by predicted loss -> shortlist the top k -> train them through the trainer -> evaluate (validation loss,
    and downstream metrics when ``downstream`` names tasks) -> choose (by ``choose_by``: validation loss by default),
    reporting the rank correlation between the predicted and the achieved order for every metric.

Ranking, not the loss value, is what the law is trusted for: Bian et al. found loss-to-accuracy mappings too noisy to pick a
model by predicted loss alone, so the shortlist is trained and the achieved order decides.

Files in the output directory (append-only where it matters, so an interrupted selection resumes):
- ``config.json``      the resolved selection config;
- ``candidates.json``  every feasible candidate in predicted order (label, shape, N, D, predicted loss and latency);
- ``sweep.yaml``, ``records.jsonl``, ``runs/<run_id>/``  the trainer's sweep of the shortlist (group ``r<rank>`` per
  candidate): one record line per finished run, checkpoints that make a half-finished run resume;
- ``report.json``      the choice, the shortlist with predicted and achieved losses (and downstream metrics), and the
  Spearman correlations.

Downstream tasks (`infscale.train.downstream.DOWNSTREAM_TASKS`, e.g. ``cloze``, ``next_line``) are scored by the trainer at the
end of each run, on the held-out split, while the model is in memory; their metrics land in the run records.

The shortlist is trained by the trainer's sweep runner with any of its executors (local, ray); torch is imported only
when training starts.
Unlike the rest of `infscale.plan` this module does file I/O (it is the workflow layer); the package does not import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infscale.configio import (
    Strict,
    check_output_dir,
    default_out,
    load_yaml,
    resolve_recipe,
    save_config,
    validate_config,
)
from infscale.errors import InputError
from infscale.extrapolation import FitRange, law_quantities, point_warnings
from infscale.jsonsafe import finite
from infscale.latency.model import Workload
from infscale.laws.fitted import FittedLaw, physical_problems
from infscale.laws.io import load_fit
from infscale.laws.validate import spearman
from infscale.notices import Notice, notice_kind
from infscale.plan.adapters import latency_from_profile, loss_from_law, memory_from_workload, resolve_profile
from infscale.plan.optimum import PlanConstraints, PlanResult, plan_shapes
from infscale.plan.shapes import ShapeRules, enumerate_shapes, get_family
from infscale.train.config import parse_sweep
from infscale.train.downstream import metric_directions, validate_tasks
from infscale.train.sweep import EXECUTORS, run_sweep

__all__ = [
    "SelectConfig",
    "ShortlistEntry",
    "SelectionReport",
    "shortlist",
    "parse_select",
    "run_selection",
]


class InlineLaw(Strict):
    """A law given inline: its registered form and parameters."""

    law: str = Field(description="Registered law form, e.g. inference_aware.")
    params: dict[str, float] = Field(description="Fitted parameters of the form.")
    fit_range: dict[str, Any] | None = Field(
        default=None, description="Where the law was fitted (n_runs and [low, high] of n_params, n_tokens, "
                                  "tokens_per_param, loss, aspect_ratio; infscale.extrapolation.FitRange): the "
                                  "shortlist is checked against it. Without it, extrapolation is unchecked.")

    @field_validator("fit_range")
    @classmethod
    def _range(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else FitRange.from_dict(value).to_dict()


class WorkloadSpec(Strict):
    """The request whose latency is limited (Bian et al.: batch 1, 128 in / 256 out)."""

    batch: int = Field(default=1, gt=0)
    input_len: int = Field(default=128, gt=0)
    output_len: int = Field(default=256, gt=0)
    dtype: str = Field(default="fp32", description="bf16 | fp16 | fp32 (CPU inference runs in fp32).")


class SelectConfig(Strict):
    """A model-selection run. ``train`` holds the trainer fields shared by every candidate (not model or tokens)."""

    law: str | InlineLaw = Field(description="Fitted law: a FIT.json path (relative to the config) or inline.")
    family: str = Field(default="llama", description="Shape family the rules start from (bian2025 | llama | gpt).")
    rules: dict[str, Any] = Field(default_factory=dict, description="ShapeRules fields overriding the family's.")
    min_params: float = Field(gt=0, description="Smallest candidate N (exact, embeddings included).")
    max_params: float = Field(gt=0, description="Largest candidate N.")
    tokens: int = Field(gt=0, description="Training tokens D of every candidate.")
    hardware: str = Field(default="generic-cpu", description="Hardware profile for predicted latency.")
    workload: WorkloadSpec = WorkloadSpec()
    max_latency_s: float | None = Field(default=None, gt=0, description="Latency limit per request, seconds.")
    measured: str | None = Field(default=None, description="CSV of measured latencies overriding predictions.")
    latency_source: Literal["predicted", "measured"] = Field(
        default="predicted", description="'measured': time candidates on this machine (Bian et al.'s method), lazily.")
    measure: dict[str, Any] = Field(default_factory=dict,
                                    description="infscale.latency.measure.MeasureSettings fields (warmup, repeats).")
    shortlist: int = Field(default=3, gt=0, description="How many top-ranked candidates to train.")
    executor: str = Field(default="local", description="Trainer executor name (infscale.train.sweep.EXECUTORS).")
    workers: int = Field(default=1, gt=0, description="Concurrent training runs.")
    model: dict[str, Any] = Field(default_factory=dict,
                                  description="ModelConfig fields shared by every run (context_length, tied_embeddings).")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields shared by every run.")
    downstream: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Downstream tasks scored on every trained run (names, or name -> settings; "
                                          "infscale.train.downstream.DOWNSTREAM_TASKS).")
    choose_by: str = Field(default="val_loss", description="What decides the choice: val_loss or a downstream metric "
                                                           "of the named tasks (e.g. cloze_acc).")

    @field_validator("downstream", mode="before")
    @classmethod
    def _tasks(cls, value: Any) -> dict[str, dict[str, Any]]:
        return validate_tasks(value)

    @field_validator("choose_by")
    @classmethod
    def _metric(cls, value: str, info: ValidationInfo) -> str:
        known = ["val_loss", *metric_directions(info.data.get("downstream") or {})]
        if value not in known:
            raise ValueError(f"unknown metric {value!r}; with these downstream tasks: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _range(self) -> SelectConfig:
        if self.min_params > self.max_params:
            raise ValueError(f"min_params {self.min_params:g} > max_params {self.max_params:g}")
        if "downstream" in self.train:
            raise ValueError("train.downstream: name the tasks in the top-level 'downstream' field")
        for key in ("model", "tokens", "tokens_per_param", "run_id"):
            if key in self.train:
                raise ValueError(f"train.{key} is set by the selection, remove it")
        for key in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff"):
            if key in self.model:
                raise ValueError(f"model.{key} is chosen by the selection, remove it")
        return self


def parse_select(data: dict[str, Any], source: str = "<config>") -> SelectConfig:
    """Validate a mapping into a `SelectConfig`; errors become one `InputError` line naming the field."""
    return validate_config(data, SelectConfig, source)


# ---- pure pieces -------------------------------------------------------------------------------------------------



@dataclass(frozen=True, slots=True, kw_only=True)
class ShortlistEntry:
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


def shortlist(result: PlanResult, k: int) -> list[ShortlistEntry]:
    """The k feasible candidates with the lowest predicted loss, as training jobs."""
    jobs = []
    for rank, i in enumerate(result.ranked()[:k], start=1):
        row = result.row(int(i))
        shape = {key: int(row[key]) for key in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff")}
        run_id = f"r{rank}-d{shape['d_model']}x{shape['n_layers']}h{shape['n_heads']}kv{shape['n_kv_heads']}"
        jobs.append(ShortlistEntry(rank=rank, run_id=run_id, shape=shape, n_params=int(row["n_params"]),
                        n_tokens=int(row["n_tokens"]), predicted_loss=float(row["loss"]),
                        predicted_latency_s=float(row["latency_s"])))
    return jobs


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionReport:
    """The outcome: every shortlisted run with its predicted and achieved loss, the choice, the rank correlation."""

    runs: list[dict[str, Any]]
    """Shortlist in predicted order with ``achieved_loss`` (validation loss) and ``achieved_rank`` (its rank by
    validation loss), and with downstream tasks ``downstream`` ({metric: value}) and ``downstream_rank`` ({metric:
    rank, 1 = best})."""
    chosen: dict[str, Any]
    """The best run by ``choose_by`` (ties: the better predicted rank)."""
    spearman: float
    """Rank correlation of predicted and achieved loss over the shortlist."""
    n_candidates: int
    n_feasible: int
    choose_by: str = "val_loss"
    spearman_downstream: dict[str, float] = field(default_factory=dict)
    """Per downstream metric, the rank correlation of the predicted order and the achieved order on that metric
    (+1: the law's order is the metric's order, best first)."""
    warnings: list[str] = field(default_factory=list)
    """Where the shortlist's predictions leave the law's fitted range, or its latencies rest on an uncalibrated
    profile (`infscale.extrapolation`); each run also carries its own ``warnings``."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


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


def _measure_in_rank_order(cfg: SelectConfig, grid: Any, law: Any, latency_fn: Any, workload: Any,
                           out: Path) -> dict[tuple[int, int, int, int], float]:
    """Bian et al.'s measured latencies, taken lazily: walk the candidates by predicted loss and time each on this machine
    (records appended to ``latency.jsonl``, so a re-run measures nothing twice) until ``shortlist`` of them meet the
    limit. Every candidate ranked above the last one kept has been measured, so the shortlist is exact."""
    from infscale.latency.measure import MeasureSettings, measure_sweep  # lazy: scipy, torch

    try:
        settings = MeasureSettings(**cfg.measure)
    except (TypeError, ValueError) as exc:
        raise InputError(f"field measure: {exc}") from None
    loose = plan_shapes(grid, loss_from_law(law), PlanConstraints(n_tokens=float(cfg.tokens)), latency_fn)
    found: dict[tuple[int, int, int, int], float] = {}
    kept = 0
    for i in loose.ranked():
        shape = grid.shape(int(i))
        rec = measure_sweep([shape], workload, out / "latency.jsonl", settings=settings)[0]
        key = (shape.d_model, shape.n_layers, shape.n_heads, shape.kv_heads)
        found[key] = float(rec["total_s"])
        kept += cfg.max_latency_s is None or found[key] <= cfg.max_latency_s
        if kept >= cfg.shortlist:
            break
    return found


def run_selection(cfg: SelectConfig, out_dir: str | Path, *, law: Any, profile: Any = None,
                  measured: dict[tuple[int, int, int, int], float] | None = None,
                  source: str = "<select>") -> SelectionReport:
    """Run (or resume) the selection and return its report.

    ``law`` is the fitted law (``predict(N, D, aspect_ratio)``), ``profile`` the hardware profile for predicted latency
    (a `HardwareProfile` or a preset name; default ``cfg.hardware``). The shortlist is trained as a sweep of the
    trainer (`infscale.train.sweep.run_sweep`, executor ``cfg.executor``): one group ``r<rank>`` per candidate, so
    finished runs are skipped and a half-finished run resumes from its checkpoint.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
    if cfg.executor not in EXECUTORS:
        raise InputError(f"field executor: unknown {cfg.executor!r}; known: {', '.join(EXECUTORS)}")
    grid, result, hw, measured = _plan_candidates(cfg, out, law, profile, measured)
    jobs = shortlist(result, cfg.shortlist)
    records = _train_shortlist(cfg, jobs, out, source)
    higher = metric_directions(cfg.downstream)
    runs = _achieved(cfg, jobs, records, higher, out, source)
    achieved = np.array([r["achieved_loss"] for r in runs])
    predicted = [r["predicted_loss"] for r in runs]
    # every metric as a cost (lower is better), so ranks, correlations and the choice read the same way
    costs = {"val_loss": achieved} | {m: np.array([(-1.0 if up else 1.0) * r["downstream"][m] for r in runs])
                                      for m, up in higher.items()}
    for pos, r in enumerate(np.argsort(achieved, kind="stable"), start=1):
        runs[int(r)]["achieved_rank"] = pos
    for m in higher:
        for pos, r in enumerate(np.argsort(costs[m], kind="stable"), start=1):
            runs[int(r)].setdefault("downstream_rank", {})[m] = pos
    latency_profile = hw if cfg.latency_source == "predicted" and measured is None else None
    chosen = runs[int(np.argmin(costs[cfg.choose_by]))]
    report = SelectionReport(runs=runs, chosen=chosen, spearman=spearman(predicted, achieved),
                             n_candidates=len(grid), n_feasible=int(result.feasible.sum()), choose_by=cfg.choose_by,
                             spearman_downstream={m: spearman(predicted, costs[m]) for m in higher},
                             warnings=_run_warnings(runs, law, latency_profile))
    (out / "report.json").write_text(json.dumps(finite(report.to_dict()), indent=2))  # NaN correlations: null
    return report


def _plan_candidates(cfg: SelectConfig, out: Path, law: Any, profile: Any,
                     measured: dict[tuple[int, int, int, int], float] | None) -> tuple[Any, Any, Any, Any]:
    """Every shape of the family ranked by the law under the latency limit (predicted, or measured in rank order),
    written to candidates.json: the grid, the plan, the hardware profile and the measured latencies used."""
    grid = enumerate_shapes(_rules(cfg), cfg.min_params, cfg.max_params)
    w = cfg.workload
    try:
        workload = Workload(batch=w.batch, input_len=w.input_len, output_len=w.output_len, dtype=w.dtype)
    except ValueError as exc:
        raise InputError(f"field workload: {exc}") from None
    hw = resolve_profile(profile if profile is not None else cfg.hardware)
    latency_fn = latency_from_profile(hw, workload)
    constraints = PlanConstraints(max_latency_s=cfg.max_latency_s, n_tokens=float(cfg.tokens),
                                  max_memory_bytes=hw.memory_bytes)
    if cfg.latency_source == "measured":
        measured = {**(measured or {}), **_measure_in_rank_order(cfg, grid, law, latency_fn, workload, out)}
    result = plan_shapes(grid, loss_from_law(law), constraints, latency_fn, measured=measured,
                         memory_fn=memory_from_workload(workload) if hw.memory_bytes else None)
    (out / "candidates.json").write_text(json.dumps([{"rank": k + 1, **result.row(int(i))}
                                                     for k, i in enumerate(result.ranked())], indent=1))
    return grid, result, hw, measured


def _train_shortlist(cfg: SelectConfig, jobs: list[Any], out: Path, source: str) -> dict[str, dict[str, Any]]:
    """The shortlist trained as one sweep (group ``r<rank>`` per candidate, resumable): each group's record."""
    groups = [{"name": f"r{j.rank}", "shapes": [j.shape], "tokens_per_param": [j.n_tokens / j.n_params]}
              for j in jobs]
    base = {**cfg.train, "model": dict(cfg.model)} | ({"downstream": cfg.downstream} if cfg.downstream else {})
    sweep = parse_sweep({"base": base, "groups": groups, "executor": cfg.executor, "workers": cfg.workers}, source)
    by_group: dict[str, dict[str, Any]] = {}

    def on_record(record: dict[str, Any], new: bool) -> None:
        by_group[str(record.get("group"))] = record

    run_sweep(sweep, out, source=source, on_record=on_record)
    missing = [j.run_id for j in jobs if f"r{j.rank}" not in by_group]
    if missing:
        raise InputError(f"{source}: the trainer returned no record for {', '.join(missing)}")
    return by_group


def _achieved(cfg: SelectConfig, jobs: list[Any], records: dict[str, dict[str, Any]], higher: dict[str, bool],
              out: Path, source: str) -> list[dict[str, Any]]:
    """Each shortlisted run's prediction beside what its training achieved (loss, downstream scores)."""
    runs = []
    for job in jobs:
        rec = records[f"r{job.rank}"]
        scores = rec.get("downstream") or {}
        if higher and (rec.get("config") or {}).get("downstream") != cfg.downstream:
            had = ", ".join(scores) or "no downstream metrics"
            raise InputError(f"{source}: run {rec['run_id']} was scored with other downstream tasks or settings ({had}; "
                             f"its record predates this config): use another --out, or delete "
                             f"{out / 'runs' / rec['run_id']} and its line in {out / 'records.jsonl'}")
        runs.append({"rank": job.rank, "run_id": rec["run_id"], **job.shape, "n_params": int(rec["N"]),
                     "planned_n_params": job.n_params, "n_tokens": int(rec["D"]),
                     "predicted_loss": job.predicted_loss, "predicted_latency_s": job.predicted_latency_s,
                     "achieved_loss": float(rec["loss"])}
                    | ({"downstream": {m: float(scores[m]) for m in higher}} if higher else {}))
    return runs


def _run_warnings(runs: list[dict[str, Any]], law: Any, latency_profile: Any) -> list[str]:
    """Each run's own warnings (set on the run), and the report's: one line for the runs whose predictions leave the
    law's range, then every other kind once."""
    for r in runs:
        r["warnings"] = point_warnings(law.meta, {**r, "n_params": r["planned_n_params"], "loss": r["predicted_loss"],
                                                  "aspect_ratio": r["d_model"] / r["n_layers"]},
                                       shape_aware=law.law.needs_aspect_ratio, profile=latency_profile)
    flagged = list(dict.fromkeys(w for r in runs for w in r["warnings"] if notice_kind(w) != "extrapolation"))
    symbols = law_quantities([w for r in runs for w in r["warnings"]])
    if symbols:
        n_out = sum(bool(law_quantities(r["warnings"])) for r in runs)
        flagged.insert(0, Notice("extrapolation", f"the predictions of {n_out} of {len(runs)} shortlisted runs leave "
                                 f"the law's fitted range in {', '.join(symbols)} (each run's warnings say how far)",
                                 quantity=", ".join(symbols), source="shortlist"))
    return flagged


def select_from_file(config: str | Path, out_dir: str | Path | None = None) -> tuple[SelectionReport, Path]:
    """`infscale select CONFIG`: load the YAML (or a bundled recipe name), resolve its law, profile and measured
    latencies (paths relative to the config), store the resolved config and run (or resume) the selection.
    Returns the report and the output directory (default ``infscale-out/select-<config name>``)."""
    from infscale.latency.io import get_profile, load_measured  # lazy: scipy

    path = resolve_recipe(config)
    cfg = parse_select(load_yaml(path, what="selection config"), str(path))

    def near(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else path.parent / p

    if isinstance(cfg.law, InlineLaw):
        problems = physical_problems(dict(cfg.law.params))
        if problems:
            raise InputError(f"{path}: law: {problems[0]}")
        try:
            law = FittedLaw.from_dict(cfg.law.law, cfg.law.params, {"source": str(path)}
                                      | ({"fit_range": cfg.law.fit_range} if cfg.law.fit_range else {}))
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: field law: {exc}") from None
    else:
        law = load_fit(near(cfg.law))
    measured = load_measured(near(cfg.measured)) if cfg.measured is not None else None
    out = check_output_dir(Path(out_dir) if out_dir is not None else default_out("select", path.stem))
    save_config(out / "config.yaml", cfg)
    report = run_selection(cfg, out, law=law, profile=get_profile(cfg.hardware), measured=measured, source=str(path))
    return report, out
