"""The test-time compute analysis pipeline, shared by `infscale tts analyze` and the demo: records -> operating
points (accuracy at n with intervals) -> Pareto frontier -> compute-optimal choice per budget -> size law and
error-vs-compute fits -> saturation (Wu et al.'s Theorems 1-2) -> CSV/JSON/PNG files.

`analyse_records` is the one path; `analyse_runs` reads run directories first, `analyse_wu2025` re-derives Wu et al.'s
statements and frontiers from its bundled tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_number, check_output_dir, write_csv, write_json
from infscale.errors import InputError
from infscale.memory import available_bytes
from infscale.renames import current_name
from infscale.report.tts_plots import plot_accuracy_vs_flops, plot_saturation
from infscale.tts.analysis import (
    ComputeOptimalSizeFit,
    ErrorComputeFit,
    compute_optimal,
    compute_optimal_sizes,
    frontier_points,
    operating_points_from_records,
    pools_from_records,
)
from infscale.tts.analysis.accuracy import estimate_bootstrap_bytes
from infscale.tts.analysis.frontier import matched_accuracy_flops
from infscale.tts.analysis.groups import accuracy_by_group
from infscale.tts.analysis.saturation import saturation_summary
from infscale.tts.core.record_files import read_run, record_files
from infscale.workflows.wu2025_tables import load_wu2025_points, wu2025_statements

__all__ = ["N_BUDGETS", "TtsAnalysis", "check_settings", "point_dict", "read_runs", "analyse_records", "analyse_runs",
           "analyse_wu2025"]

N_BUDGETS = 9
"""FLOPs budgets of the compute-optimal table: geometrically spaced from the cheapest point to the dearest."""


def point_dict(p: Any, accounting: str | None = None) -> dict[str, Any]:
    """An `OperatingPoint` as a flat row (``flops_used``: its FLOPs under ``accounting``)."""
    d = {"model": p.model, "n_params": p.n_params, "strategy": p.strategy, "label": p.label, "n": p.n,
         "flops": p.flops, "wu2025_flops": p.wu2025_flops, "kv_read_bytes": p.kv_read_bytes, "accuracy": p.accuracy,
         "ci_low": p.ci_low, "ci_high": p.ci_high, "n_problems": p.n_problems, "source": p.source}
    if accounting is not None:
        d["flops_used"] = p.flops_for(accounting)
    return d


@dataclass(frozen=True, slots=True, kw_only=True)
class TtsAnalysis:
    """Everything the analysis found; ``points`` / ``frontier`` are `OperatingPoint`s."""

    accounting: str
    n_records: int
    n_failed: int
    points: list[Any]
    frontier: list[Any]
    compute_optimal: list[tuple[float, Any]]
    """(budget FLOPs, the most accurate point within it or None)."""
    size_law: dict[str, Any]
    error_vs_compute: dict[str, dict[str, float]]
    saturation: dict[str, dict[str, Any]]
    sources: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    by_group: list[Any] = field(default_factory=list)
    """Accuracy per problem group (level, subject): `infscale.tts.analysis.groups.GroupAccuracy`."""
    matched_flops: list[dict[str, Any]] = field(default_factory=list)
    """REBASE vs sampling at sampling's best accuracy, per model, under ours and Wu et al.'s accounting
    (`infscale.tts.analysis.frontier.matched_accuracy_flops`)."""

    def to_dict(self) -> dict[str, Any]:
        acc = self.accounting
        out = {"runs": self.sources, "matched_flops": self.matched_flops, "n_records": self.n_records, "n_failed": self.n_failed, "accounting": acc,
               "points": [point_dict(p, acc) for p in self.points],
               "frontier": [point_dict(p, acc) for p in self.frontier],
               "compute_optimal": [{"budget_flops": float(c), **(point_dict(p, acc) if p is not None else {})}
                                   for c, p in self.compute_optimal],
               "size_law": self.size_law, "error_vs_compute": self.error_vs_compute, "files": self.files,
               "by_group": [g.to_dict() for g in self.by_group]}
        if self.saturation:
            out["saturation"] = self.saturation
        return out


MAX_BOOTSTRAP = 100_000
"""More replicates change no reported digit (intervals at 95% move by < 0.1 point past 10^4) and cost memory."""


def check_settings(accounting: str, n_boot: int, seed: int = 0, *, runs: Sequence[Path] = (),
                   wu2025: bool = False) -> str:
    """The analysis settings, checked before any work; returns the accounting under its current name."""
    if wu2025 and runs:
        raise InputError(f"--wu2025 analyses the paper's bundled tables; it cannot be mixed with run directories "
                         f"({runs[0]}{', ...' if len(runs) > 1 else ''}): analyse them in a separate call")
    check_number("--seed", seed, inclusive=True)
    accounting = current_name(accounting)
    if accounting not in ("ours", "wu2025"):
        raise InputError(f"--accounting {accounting!r}: expected ours or wu2025")
    check_number("--bootstrap", n_boot, low=1, inclusive=True, high=MAX_BOOTSTRAP)
    return accounting


def check_memory(records: Sequence[Any], n_boot: int) -> None:
    """The bootstrap's arrays, estimated from the largest pool, must fit the memory free now (before allocating)."""

    if not records:
        return
    n_problems = len({r.problem_id for r in records})
    pool = max((len(r.candidates) for r in records), default=1)
    need, free = estimate_bootstrap_bytes(n_problems, pool, n_boot), available_bytes("cpu")
    if need > free:
        raise InputError(f"--bootstrap {n_boot}: the intervals over {n_problems} problems and pools of {pool} "
                         f"candidates need ~{need / 1e9:.3g} GB, {free / 1e9:.3g} GB is free; use fewer replicates")


def read_runs(runs: Sequence[Path]) -> list[Any]:
    """The records of run directories (``records.jsonl``, or the shard files of an array run, merged) or JSONL
    files; a missing or empty one is an `InputError` naming it, and so is a unit found in two files."""

    records = []
    for run in runs:
        if not run.exists():
            raise InputError(f"{run}: no such records file or run directory")
        if run.is_dir() and not record_files(run):
            raise InputError(f"{run}: no records file (records.jsonl) in this directory")
        got = read_run(run)
        if not got:
            raise InputError(f"{run}: no records")
        records.extend(got)
    return records


def _size_law(points: list[Any], budgets: np.ndarray, accounting: str) -> dict[str, Any]:
    c_opt, n_opt = compute_optimal_sizes(points, budgets, accounting=accounting)
    try:
        fit = ComputeOptimalSizeFit().fit(n_opt, c_opt)
    except ValueError as exc:
        return {"skipped": str(exc)}
    return {"a": fit.a_, "b": fit.b_, "r2": fit.r2_, "n_points": fit.n_points_, "wu2025": {"a": 1.19, "b": 2.03}}


def _error_fits(points: list[Any], accounting: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list] = {}
    for p in points:
        groups.setdefault(f"{p.model} {p.strategy}", []).append(p)
    fits = {}
    for key, pts in sorted(groups.items()):
        f = np.array([p.flops_for(accounting) for p in pts])
        if len(pts) >= 3 and (f > 0).all():
            e = ErrorComputeFit().fit(f, [1 - p.accuracy for p in pts])
            fits[key] = {"err_inf": e.err_inf_, "k": e.k_, "gamma": e.gamma_, "flops_ref": e.flops_ref_,
                         "rmse": e.rmse_}
    return fits


def _saturation(records: list[Any], curves: dict) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    by_group: dict[tuple[str, str], dict[int, list]] = {}
    for r in records:
        if r.iid:
            by_group.setdefault((r.model, r.strategy), {}).setdefault(r.budget, []).append(r)
    rows, summaries, sat_curves = {}, {}, {}
    for (model, strategy), cur in curves.items():
        recs = by_group[(model, strategy)][max(by_group[(model, strategy)])]
        summ = saturation_summary(pools_from_records(recs), cur["majority_vote"].ns)
        key = f"{model} {strategy}"
        summaries[key], sat_curves[key] = summ, cur
        rows[key] = {
            "mv_limit": summ.mv_limit, "wv_limit": summ.wv_limit, "oracle_pass_at_pool": summ.oracle,
            "median_top2_gap": summ.median_gap, "hoeffding_rate_c": summ.rate_c,
            "ns": summ.ns, "mv_bound": summ.mv_bound, "wv_bound": summ.wv_bound,
            "accuracy_at_n": {a: {"ns": c.ns, "accuracy": c.accuracy, "ci_low": c.ci_low, "ci_high": c.ci_high,
                                  "exact": c.exact} for a, c in cur.items()},
        }
    return rows, summaries, sat_curves


def matched_flops_rows(points: Sequence[Any]) -> list[dict[str, Any]]:
    """`matched_accuracy_flops` under ours and Wu et al.'s accounting, as plain rows."""

    rows = []
    for acc in ("ours", "wu2025"):
        for m in matched_accuracy_flops(points, accounting=acc):
            r = m.reached
            rows.append({"model": m.model, "accounting": acc, "search": m.search,
                         "target_accuracy": m.target_accuracy, "baseline_strategy": m.baseline.strategy,
                         "baseline_n": m.baseline.n, "baseline_flops": m.baseline.flops_for(acc),
                         "search_n": None if r is None else r.n,
                         "search_flops": None if r is None else r.flops_for(acc),
                         "search_accuracy": None if r is None else r.accuracy, "flops_ratio": m.flops_ratio})
    return rows


def analyse_records(records: list[Any], out: Path, *, accounting: str = "ours", n_boot: int = 1000, seed: int = 0,
                    plot: bool = True, sources: Sequence[str] = ("records",), title: str | None = None,
                    prefix: str = "") -> TtsAnalysis:
    """The whole analysis of ``records`` (read from ``sources``) under ``accounting`` (``ours`` or ``wu2025``):
    tables and figures into ``out``."""

    check_settings(accounting, n_boot, seed)
    check_memory(records, n_boot)
    points, curves = operating_points_from_records(records, n_bootstrap=n_boot, random_state=seed)
    if not points:
        raise InputError(f"{', '.join(sources)}: no record carries an answer to score")
    flops = np.array([p.flops_for(accounting) for p in points])
    budgets = np.geomspace(flops[flops > 0].min(), flops.max(), N_BUDGETS) if (flops > 0).any() else np.array([])
    best = compute_optimal(points, budgets, accounting=accounting)
    sat_rows, summaries, sat_curves = _saturation(records, curves)
    result = TtsAnalysis(
        accounting=accounting, n_records=len(records), n_failed=sum(1 for r in records if r.error is not None),
        points=points, frontier=frontier_points(points, accounting=accounting),
        compute_optimal=list(zip(budgets.tolist(), best, strict=True)), size_law=_size_law(points, budgets, accounting),
        error_vs_compute=_error_fits(points, accounting), saturation=sat_rows, sources=list(sources),
        matched_flops=matched_flops_rows(points), by_group=accuracy_by_group(records))
    files = {"points_csv": write_csv(out / f"{prefix}points.csv", [point_dict(p, accounting) for p in points]),
             "frontier_csv": write_csv(out / f"{prefix}frontier.csv",
                                       [point_dict(p, accounting) for p in result.frontier])}
    if result.by_group:
        files["by_group_csv"] = write_csv(out / f"{prefix}accuracy_by_group.csv", [g.to_dict() for g in result.by_group])
    if plot:
        files["accuracy_vs_flops_png"] = str(plot_accuracy_vs_flops(
            points, out / f"{prefix}accuracy_vs_flops.png", accounting=accounting,
            **({"title": title} if title else {})))
        if summaries:
            files["saturation_png"] = str(plot_saturation(sat_curves, summaries, out / f"{prefix}saturation.png"))
    result.files.update(files)
    return result


def analyse_runs(runs: Sequence[Path], out: Path, **kwargs: Any) -> TtsAnalysis:
    """`analyse_records` on the records of run directories / JSONL files, and ``analysis.json`` beside its tables."""
    if not runs:
        raise InputError("give run directories / records JSONL files, or --wu2025 for Wu et al.'s tables")
    check_output_dir(out)
    result = analyse_records(read_runs(runs), out, sources=[str(r) for r in runs], **kwargs)
    result.files["analysis_json"] = write_json(out / "analysis.json", result.to_dict())
    return result


def analyse_wu2025(out: Path, plot: bool = True) -> dict[str, Any]:
    """Wu et al.'s statements re-derived from its bundled tables, and the frontier of each dataset."""
    check_output_dir(out)

    payload: dict[str, Any] = {
        "source": "Wu et al. 2025's published tables (ICLR 2025; CC-BY-4.0)", "accounting": "wu2025",
        "statements": [{"key": s.key, "claim": s.claim, "holds": s.holds, "detail": s.detail, "figures": s.figures}
                       for s in wu2025_statements()]}
    files = {}
    for ds in ("MATH500", "GSM8K"):
        pts = load_wu2025_points(ds)
        payload.setdefault("frontier", {})[ds] = [point_dict(p) for p in frontier_points(pts, accounting="wu2025")]
        files[f"points_{ds.lower()}_csv"] = write_csv(out / f"wu2025_points_{ds.lower()}.csv",
                                                      [point_dict(p) for p in pts])
        if plot:
            files[f"{ds.lower()}_png"] = str(plot_accuracy_vs_flops(
                pts, out / f"wu2025_{ds.lower()}.png", accounting="wu2025",
                title=f"Wu et al. tables, {ds}: accuracy vs FLOPs (paper's accounting)"))
    payload["files"] = files
    return payload
