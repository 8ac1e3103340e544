"""`infscale study CONFIG`: Bian et al.'s loop on this machine's own runs.

    train every size x shape (x seed) of the study (the trainer's sweep: resumable, runs longest first)
    -> time every shape's prefill and decode on this machine (interleaved, append-only records)
    -> fit Chinchilla, Bian et al.'s inference-aware law and the aspect-optimum law on every group but the held-out one;
       score them on the held-out size (MSE, R^2, max relative error, per-size Spearman, bootstrap intervals) beside
       the seed-to-seed noise floor
    -> calibrate this machine's latency profile on the study's shapes
    -> plan a size under the preferred law and profile, train the recommended shape and a same-size deep baseline
       (neither in any fit), time both, and compare measured with predicted loss and latency.

Files in the output directory: ``config.yaml`` (resolved), the sweep's ``sweep.yaml``, ``records.jsonl`` and
``runs/``, ``latency.jsonl`` (every shape timed), ``runs.csv`` (one row per run, the bundled table's format),
``fits.json``, ``law.json`` (the preferred own law, with its fitted range), ``cpu_profile.json``, ``verify/`` (the
verification's sweep), ``study.json`` (everything the result holds) and the figures. A rerun skips finished runs and
timed shapes, so an interrupted study resumes; the analysis is recomputed from the records (deterministic).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infscale.arch import TransformerShape, ffn_width
from infscale.configio import check_output_dir, default_out, read_text, resolve_recipe, save_config
from infscale.errors import InputError
from infscale.extrapolation import point_warnings
from infscale.jsonsafe import finite
from infscale.latency.model import predict
from infscale.plan import PlanConstraints, enumerate_shapes, latency_from_profile, loss_from_law, plan_shapes
from infscale.plan.optimum import fastest_within
from infscale.plan.shapes import ShapeRules
from infscale.report.study_plot import plot_loss_vs_aspect
from infscale.train.sweep import expand, run_sweep
from infscale.workflows.shape_study_config import (
    StudyConfig,
    StudyRules,
    load_study,
    record_label,
    shape_entry,
    shape_label,
    study_sweep,
    sweep_of,
)

__all__ = ["StudyResult", "RUN_COLUMNS", "run_study", "study_rows", "analyse", "study_shape", "plan_verification",
           "verification_candidates", "read_rows", "BUNDLED_RUNS", "BUNDLED_VERIFY"]

Say = Callable[[str, str], None]

RUN_COLUMNS = ("run_id", "group", "shape", "seed", "N", "D", "tokens_per_param", "d_model", "n_layers", "n_heads",
               "n_kv_heads", "d_ff", "aspect_ratio", "loss", "loss_se", "val_tokens", "train_loss_smoothed", "steps", "epochs",
               "prefill_s", "decode_s", "held_out", "train_time_s")
"""The runs table (``runs.csv`` and the bundled ``infscale/data/shape_study_runs.csv``); ``train_time_s`` and the
latencies are timed fields, the rest are what an uninterrupted study writes byte for byte."""
TIMED_COLUMNS = ("prefill_s", "decode_s", "train_time_s")
BUNDLED_RUNS = "shape_study_runs.csv"
"""The bundled study's runs table (`infscale.data`; provenance in its SOURCE.md)."""
BUNDLED_VERIFY = "shape_study_verify.csv"
"""The bundled study's verification: the recommended and the baseline shape, predicted and measured."""
VERIFY_COLUMNS = ("role", "shape", "n_params", "aspect_ratio", "n_tokens", "predicted_loss", "measured_loss",
                  "measured_loss_se", "loss_error", "predicted_decode_s", "measured_decode_s", "decode_error")


@dataclass(frozen=True, slots=True)
class StudyResult:
    out_dir: str
    n_runs: int
    train_wall_s: float
    """Wall time of the training runs this invocation did (0 when every run was already finished)."""
    held_out: str
    fits: list[dict[str, Any]]
    """Per law: parameters with bootstrap intervals, held-out scores with intervals, per-size rankings, warnings."""
    preferred_law: str | None
    """The shape-aware law with the lowest held-out MSE among those whose fit is not degenerate
    (`infscale.laws.diagnostics.degenerate`): the law ``law.json`` holds and the plan uses; None when every one is
    degenerate (then there is no plan and no verification, and ``warnings`` says why)."""
    noise: dict[str, Any]
    latency: dict[str, Any]
    verify: dict[str, Any] | None
    figures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----- shapes and rows ------------------------------------------------------------------------------------------------
def study_shape(row: dict[str, Any], vocab_size: int, context_length: int) -> Any:
    kv = row.get("n_kv_heads")
    return TransformerShape(d_model=int(row["d_model"]), n_layers=int(row["n_layers"]), n_heads=int(row["n_heads"]),
                            n_kv_heads=None if kv is None else int(kv), d_ff=int(row["d_ff"]), vocab_size=vocab_size, tied_embeddings=True,
                            context_length=context_length)


def _round(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def study_rows(records: list[dict[str, Any]], latency: dict[str, dict[str, Any]], held_out: str,
               rules: StudyRules) -> list[dict[str, Any]]:
    """One row per run (RUN_COLUMNS), in the sweep's order; ``latency`` maps a shape label (`record_label`) to its
    record."""
    rows = []
    for r in records:
        shape = record_label(r, rules)
        lat = latency.get(shape, {})
        rows.append({
            "run_id": r["run_id"], "group": r["group"], "shape": shape, "seed": int(r.get("seed", 0)),
            "N": int(r["N"]), "D": int(r["D"]), "tokens_per_param": _round(r["D"] / r["N"]),
            "d_model": int(r["d_model"]), "n_layers": int(r["n_layers"]), "n_heads": int(r["n_heads"]),
            "n_kv_heads": int(r.get("n_kv_heads") or r["n_heads"]), "d_ff": int(r["d_ff"]), "aspect_ratio": _round(r["d_model"] / r["n_layers"]),
            "loss": _round(r["loss"], 7), "loss_se": _round(r["loss_se"], 4), "val_tokens": int(r["val_tokens"]),
            "train_loss_smoothed": _round(r["train_loss_smoothed"], 7), "steps": int(r["steps"]),
            "epochs": _round(r["epochs"], 4),
            "prefill_s": _round(lat["prefill_s"], 4) if lat else None,
            "decode_s": _round(lat["decode_s"], 4) if lat else None,
            "held_out": r["group"] == held_out, "train_time_s": round(float(r["train_time_s"]), 1),
        })
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Path:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row[k] is None else row[k]) for k in columns})
    tmp.replace(path)
    return path


def bundled(name: str) -> Path:
    """A file of the bundled study (``infscale/data``)."""
    return Path(__file__).resolve().parents[1] / "data" / name


def read_verify(path: str | Path) -> list[dict[str, Any]]:
    """A verification table (``verify.csv`` or the bundled one): the recommended and the baseline row."""

    rows = list(csv.DictReader(read_text(path, what="study verification table").splitlines()))
    if not rows or any(c not in rows[0] for c in VERIFY_COLUMNS):
        raise InputError(f"{path}: a verification table has the columns {', '.join(VERIFY_COLUMNS)}")
    return [{k: (v if k in ("role", "shape") else float(v)) for k, v in row.items()} for row in rows]


def read_rows(path: str | Path) -> Any:
    """A runs table (``runs.csv`` or the bundled one) as a pandas frame; a missing column is a one-line error (the
    values are checked where they are used: `infscale.laws.runs.Runs`)."""

    import pandas as pd  # lazy: pandas

    frame = pd.read_csv(io.StringIO(read_text(path, what="study runs table")))
    if "n_kv_heads" not in frame.columns and "n_heads" in frame.columns:
        frame.insert(int(frame.columns.get_loc("n_heads")) + 1, "n_kv_heads", frame["n_heads"])  # before GQA: MHA
    missing = [c for c in RUN_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r} (a study runs table has {', '.join(RUN_COLUMNS)})")
    frame["held_out"] = frame["held_out"].astype(str).str.lower().eq("true")
    return frame


def fit_with_path(name: str) -> Path:
    """A ``fit_with`` table: a bundled file name (`infscale.data`) or a path."""
    path = bundled(name)
    return path if path.exists() else Path(name)


# ----- the analysis (pure given the rows) ----------------------------------------------------------------------------
def _primary(frame: Any) -> Any:
    """One run per (shape, D): the lowest seed (the others only measure the noise floor)."""
    return frame.sort_values("seed", kind="stable").drop_duplicates(["group", "shape", "D"]).sort_index()


def analyse(frame: Any, cfg: StudyConfig, say: Say | None = None) -> dict[str, Any]:
    """Fit every law of the study on all groups but the held-out one, score them on it, measure the noise floor.
    Returns ``fits`` (one dict per law), ``preferred_law``, ``noise`` and ``reports`` (the `FitReport`s)."""
    from infscale.laws.diagnostics import degenerate  # lazy: pandas
    from infscale.laws.pipeline import run_fit  # lazy: pandas
    from infscale.laws.runs import Runs  # lazy: pandas
    from infscale.laws.study import held_out_scores, noise_floor, size_rankings  # lazy: pandas

    columns = ["run_id", "group", "shape", "seed", "N", "D", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff",
               "loss", "loss_se"]
    prim = _primary(frame)[columns]
    if cfg.fit_with is not None:
        import pandas as pd  # lazy: pandas

        extra = _primary(read_rows(fit_with_path(cfg.fit_with)))[columns]
        clash = sorted(set(extra["group"]) & set(prim["group"]))
        if clash:
            raise InputError(f"fit_with {cfg.fit_with}: group {clash[0]!r} is also one of this study's groups")
        prim = pd.concat([prim, extra], ignore_index=True)
    runs = Runs.from_frame(prim.reset_index(drop=True), source="study runs")
    fit_on = f"group != '{cfg.held_out}'"
    noise = noise_floor(frame, cfg.noise_group) if cfg.noise_group else None
    seed_std = noise.seed_std if noise else None
    fits, reports = [], {}
    for law in cfg.laws:
        if say:
            say("fit", f"{law} (huber, {cfg.bootstrap} bootstrap refits) on every group but {cfg.held_out}")
        rep = run_fit(runs, law, "huber", fit_on, n_boot=cfg.bootstrap, random_state=0)
        reports[law] = rep
        fit_runs, held = runs.split(fit_on)
        samples = rep.boot.samples if rep.boot is not None else None
        ho = held_out_scores(rep.law, held, samples=samples)
        shape_aware = rep.law.law.needs_aspect_ratio
        ranks = size_rankings(rep.law, runs, {cfg.held_out}, samples=samples, seed_std=seed_std) if shape_aware \
            else []
        fits.append({
            "law": law, "shape_aware": shape_aware, "params": dict(rep.law.params_),
            "params_low": rep.boot.low if rep.boot is not None else None,
            "params_high": rep.boot.high if rep.boot is not None else None,
            "n_fit": rep.n_fit, "n_held_out": rep.n_held_out,
            "fit_mse": rep.validation.fit.mse, "fit_r2": rep.validation.fit.r2,
            "held_out": {"n_runs": ho.n_runs, "mse": ho.mse.to_dict(), "r2": ho.r2.to_dict(),
                         "max_rel_err": ho.max_rel_err.to_dict()},
            "size_spearman": [{"group": s.group, "n_params": s.n_params, "n_shapes": s.n_shapes,
                               "spearman": s.spearman.to_dict(), "spread": s.spread,
                               "spread_over_noise": s.spread_over_noise, "held_out": s.held_out} for s in ranks],
            "warnings": list(rep.warnings), "degenerate": degenerate(rep.warnings),
        })
    needs = set(cfg.verify.searched_terms()) if cfg.verify is not None else set()
    aware = [f for f in fits if f["shape_aware"] and not f["degenerate"]
             and needs <= set(reports[f["law"]].law.law.needs_arch)]
    preferred = min(aware, key=lambda f: f["held_out"]["mse"]["value"])["law"] if aware else None
    noise_dict = None
    if noise is not None:
        noise_dict = asdict(noise)
        ranked = next((f for f in fits if f["law"] == preferred), None) or next((f for f in fits if f["shape_aware"]),
                                                                              None)
        noise_dict["shape_spread"] = {s["group"]: {"spread": s["spread"], "spread_over_noise": s["spread_over_noise"]}
                                      for s in (ranked["size_spearman"] if ranked else [])}
    return {"fits": fits, "preferred_law": preferred, "noise": noise_dict, "reports": reports, "runs": runs}


# ----- latency ----------------------------------------------------------------------------------------------------
def _measure(shapes: list[Any], cfg: StudyConfig, path: Path) -> dict[str, dict[str, Any]]:
    from infscale.latency.io import latest_records  # lazy: scipy
    from infscale.latency.measure import MeasureSettings, measure_sweep  # lazy: scipy, torch

    lat = cfg.latency
    settings = MeasureSettings(device="cpu", threads=lat.threads, warmup=lat.warmup, repeats=lat.repeats)
    records = latest_records(measure_sweep(shapes, lat.workload(), path, backend="own", settings=settings))
    return {record_label(r["shape"], cfg.rules): r for r in records}


def _calibrate(records: list[dict[str, Any]], out: Path) -> tuple[Any, dict[str, Any]]:
    """This machine's profile fitted on every study shape (for the plan), and the error of a fit on half of them on
    the other half (what the profile is worth on shapes it has not seen)."""
    from infscale.latency.calibrate import (  # lazy: scipy
        LatencyCalibrator,
        calibrate_holdout,
        default_free,
        observations_from_records,
    )
    from infscale.latency.io import get_profile, save_profile  # lazy: scipy

    obs = observations_from_records(records, source=str(out / "latency.jsonl"))
    base = get_profile("generic-cpu")
    hold = calibrate_holdout(obs, base, n_fit=max(1, len(obs) // 2), free=default_free(base), name="this-cpu-study")
    full = LatencyCalibrator(base, free=default_free(base), name="this-cpu-study").fit(obs)
    profile = full.profile_
    save_profile(profile, out / "cpu_profile.json", meta={"source": str(out / "latency.jsonl"),
                                                          "fit_on": [o.label for o in obs]})
    errs = hold.test_errors.get("decode_s")
    summary = {"n_shapes": len(obs), "profile": profile.to_dict(), "profile_json": str(out / "cpu_profile.json"),
               "holdout_fit_on": hold.fit_labels, "holdout_test": hold.test_labels,
               "holdout_decode_errors": [] if errs is None else [float(e) for e in errs],
               "holdout_median_abs_error": hold.median_abs_error() if hold.test_labels else None,
               "holdout_max_abs_error": hold.max_abs_error() if hold.test_labels else None,
               "env": records[0]["env"] if records else {}}
    return profile, summary


# ----- the verification ------------------------------------------------------------------------------------------------
def study_rules(rules: StudyRules, vocab_size: int, n_layers_max: int, kv_heads: tuple[int, ...] = (),
                ffn_multipliers: tuple[float, ...] = ()) -> Any:
    return ShapeRules(head_dims=(rules.head_dim,), d_model_multiple=rules.d_model_multiple,
                      d_model_min=rules.d_model_multiple, d_model_max=4096, n_layers_min=1, n_layers_max=n_layers_max,
                      ffn_multiple=rules.ffn_multiple, vocab_size=vocab_size, tied_embeddings=True,
                      kv_heads=tuple(kv_heads), ffn_multipliers=tuple(ffn_multipliers))


def verification_candidates(cfg: StudyConfig, law: Any, profile: Any, frame: Any, vocab_size: int,
                            workload: Any = None) -> tuple[Any, int, int, float]:
    """Bian et al.'s choice at the verification size: every shape of the study's rules within ``rel_tol`` of N, predicted
    loss under ``law`` at D, predicted latency on ``profile`` (for ``workload``, default the study's); returns the
    `PlanResult`, the recommendation (the fastest shape whose predicted loss is within ``max_loss_increase`` of the
    best), the baseline (the same-size shape whose aspect ratio is closest, in log, to the median of the groups'
    deepest shapes) and that target aspect ratio. Pure given its inputs."""

    v = cfg.verify
    if v is None:
        raise InputError("the study config has no verify block (the size to plan for)")
    wl = workload or cfg.latency.workload()
    rules = study_rules(cfg.rules, vocab_size, v.n_layers_max, tuple(v.kv_heads), tuple(v.ffn_multipliers))
    grid = enumerate_shapes(rules, v.n_params * (1 - v.rel_tol), v.n_params * (1 + v.rel_tol))
    n_tokens = round(v.tokens_per_param * v.n_params)
    result = plan_shapes(grid, loss_from_law(law), PlanConstraints(n_tokens=float(n_tokens)),
                         latency_from_profile(profile, wl))
    pick = fastest_within(result, v.max_loss_increase)
    deepest = frame.loc[frame.groupby("group")["aspect_ratio"].idxmin(), "aspect_ratio"].to_numpy(dtype=float)
    target = float(np.median(deepest))
    # the baseline is a conventional shape: multi-head attention and the rules' FFN width

    # (the FFN width nearest the rules' where the plan searches others)
    mha = grid.n_kv_heads == grid.n_heads
    rule = np.asarray(ffn_width(grid.d_model, "swiglu", cfg.rules.ffn_multiple), dtype=np.float64)
    ffn_dev = np.abs(np.log(grid.d_ff / rule))
    plain = mha & (ffn_dev <= np.min(ffn_dev[mha], initial=np.inf) + 0.02)
    dist = np.where(plain, np.abs(np.log(grid.aspect_ratio.astype(float)) - math.log(target)), np.inf)
    base = int(np.argmin(dist))
    return result, pick, base, target


def plan_verification(cfg: StudyConfig, law: Any, profile: Any, frame: Any, vocab_size: int,
                      workload: Any = None, candidates: tuple[Any, int, int, float] | None = None) -> dict[str, Any]:
    """`verification_candidates` (or the ``candidates`` it already returned) as a JSON-ready plan: the recommended and
    the baseline shape with their predicted loss and decode latency (and the law's extrapolation lines), and the
    loss-latency frontier."""

    result, pick, base, target = candidates or verification_candidates(cfg, law, profile, frame, vocab_size, workload)
    wl = workload or cfg.latency.workload()
    ctx = int(cfg.base.get("model", {}).get("context_length", 128))
    n_tokens = int(result.n_tokens[pick])

    def entry(i: int, role: str) -> dict[str, Any]:
        row = result.row(i)
        shape = result.grid.shape(i)
        pred = predict(shape.with_(context_length=max(ctx, wl.input_len + wl.output_len)), wl, profile)
        return {"role": role, "shape": shape_label(row["d_model"], row["n_layers"], row["n_heads"], row["n_kv_heads"],
                                                   row["d_ff"], cfg.rules), "label": row["label"],
                "d_model": row["d_model"], "n_layers": row["n_layers"], "n_heads": row["n_heads"],
                "n_kv_heads": row["n_kv_heads"], "d_ff": row["d_ff"], "ffn_ratio": row["ffn_ratio"],
                "kv_group": row["kv_group"],
                "n_params": row["n_params"], "aspect_ratio": row["aspect_ratio"], "n_tokens": n_tokens,
                "predicted_loss": row["loss"], "predicted_latency_s": row["latency_s"],
                "predicted_decode_s": pred.decode_s, "predicted_prefill_s": pred.prefill_s,
                "warnings": point_warnings(law.meta, {**row, "n_tokens": n_tokens}, shape_aware=True, profile=profile,
                                           arch=law.law.needs_arch)}

    v = cfg.verify
    return {"n_candidates": len(result.grid), "law": law.name, "n_tokens": n_tokens, "baseline_aspect_target": target,
            "max_loss_increase": v.max_loss_increase if v else None, "hardware": getattr(profile, "name", "?"),
            "workload": wl.to_dict(), "recommended": entry(pick, "recommended"), "baseline": entry(base, "baseline"),
            "frontier": [result.row(int(i)) for i in result.frontier]}


def _verify(cfg: StudyConfig, plan: dict[str, Any], out: Path, vocab_size: int, say: Say) -> dict[str, Any]:
    groups = []
    for role in ("recommended", "baseline"):
        e = plan[role]
        kv = f"kv{e['n_kv_heads']}" if e.get("n_kv_heads", e["n_heads"]) != e["n_heads"] else ""
        spec = f"{e['d_model']}x{e['n_layers']}{kv}f{e['d_ff']}"
        groups.append({"name": role, "shapes": [shape_entry(spec, cfg.rules)],
                       "tokens_per_param": [1.0], "n_params": int(plan["n_tokens"])})
    sweep = sweep_of(cfg, groups, "study verify")
    say("verify", f"training {plan['recommended']['shape']} (recommended) and {plan['baseline']['shape']} "
                  f"(baseline) on D={plan['n_tokens']:,}")
    records = {r["group"]: r for r in run_sweep(sweep, out / "verify", source="study verify")}
    shapes = [study_shape(records[role], vocab_size, int(records[role]["context_length"]))
              for role in ("recommended", "baseline")]
    say("verify", "timing both shapes")
    lat = _measure(shapes, cfg, out / "verify" / "latency.jsonl")
    rows = []
    for role in ("recommended", "baseline"):
        e, rec = plan[role], records[role]
        measured = lat[e["shape"]]
        rows.append({**{k: e[k] for k in ("role", "shape", "n_params", "aspect_ratio", "n_tokens", "predicted_loss",
                                          "predicted_decode_s")},
                     "measured_loss": float(rec["loss"]), "measured_loss_se": float(rec["loss_se"]),
                     "measured_decode_s": float(measured["decode_s"]),
                     "loss_error": float(rec["loss"]) / e["predicted_loss"] - 1.0,
                     "decode_error": e["predicted_decode_s"] / float(measured["decode_s"]) - 1.0})
    rec_row, base_row = rows
    return {"rows": rows, "speedup": base_row["measured_decode_s"] / rec_row["measured_decode_s"],
            "predicted_speedup": base_row["predicted_decode_s"] / rec_row["predicted_decode_s"],
            "loss_change": rec_row["measured_loss"] / base_row["measured_loss"] - 1.0,
            "loss_change_se": math.hypot(rec_row["measured_loss_se"], base_row["measured_loss_se"])
            / base_row["measured_loss"]}


# ----- the workflow ------------------------------------------------------------------------------------------------
def run_study(cfg: StudyConfig, out_dir: str | Path, *, source: str = "<study>", say: Say | None = None
              ) -> StudyResult:
    """Run (or resume) the study into ``out_dir`` and return its result (see the module docstring)."""
    from infscale.laws.io import save_fit  # lazy: pandas
    from infscale.report.fit_plot import plot_predicted_vs_actual  # lazy: pandas

    say = say or (lambda step, message: None)
    out = check_output_dir(out_dir)
    sweep = study_sweep(cfg, source)
    vocab_size = int(cfg.base.get("data", {}).get("vocab_size", 512))
    n_runs = len(expand(sweep, vocab_size, source))  # every run's config is valid before anything is written
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / "config.yaml", cfg)

    say("train", f"{n_runs} runs ({len(cfg.groups)} sizes; {cfg.workers} workers); finished runs are skipped")
    t0 = time.perf_counter()
    records = run_sweep(sweep, out, source=source)
    train_wall = time.perf_counter() - t0
    ctx = int(cfg.base.get("model", {}).get("context_length", 128))
    shapes = list({record_label(r, cfg.rules): study_shape(r, int(r["vocab_size"]), ctx) for r in records}.values())
    say("latency", f"timing {len(shapes)} shapes ({cfg.latency.input_len} in / {cfg.latency.output_len} out, batch "
                   f"{cfg.latency.batch}, {cfg.latency.repeats} interleaved repeats)")
    latency = _measure(shapes, cfg, out / "latency.jsonl")
    rows = study_rows(records, latency, cfg.held_out, cfg.rules)
    _write_csv(out / "runs.csv", rows, RUN_COLUMNS)
    frame = read_rows(out / "runs.csv")  # the analysis reads what is bundled: the same rounding as the demo's

    analysis = analyse(frame, cfg, say)
    reports = analysis["reports"]
    preferred = reports.get(analysis["preferred_law"])
    warnings = [f"{f['law']}: {w}" for f in analysis["fits"] for w in f["warnings"]]
    if preferred is not None:
        save_fit(preferred.law, out / "law.json", preferred.warnings)
    else:
        (out / "law.json").unlink(missing_ok=True)
        warnings.insert(0, "no plan: every shape-aware law's fit is degenerate on these runs (see the lines below); "
                           "train more sizes or over-trained runs")
    figures = [str(plot_predicted_vs_actual([reports[k] for k in cfg.laws], analysis["runs"],
                                            out / "heldout_pred_vs_measured.png",
                                            title=f"Own runs: fit on every size but {cfg.held_out}, "
                                                  f"{cfg.held_out} held out (hollow)"))]
    figures.append(str(plot_loss_vs_aspect(frame, [reports[k].law for k in cfg.laws
                                                   if reports[k].law.law.needs_aspect_ratio
                                                   and not reports[k].law.law.needs_arch],
                                           out / "loss_vs_aspect.png")))
    profile, lat_summary = _calibrate(list(latency.values()), out)

    verify = None
    if cfg.verify is not None and preferred is not None:
        plan = plan_verification(cfg, preferred.law, profile, frame, vocab_size)
        verify = {"plan": plan, **_verify(cfg, plan, out, vocab_size, say)}
        _write_csv(out / "verify.csv", verify["rows"], VERIFY_COLUMNS)
    result = StudyResult(out_dir=str(out), n_runs=len(rows), train_wall_s=train_wall, held_out=cfg.held_out,
                         fits=analysis["fits"], preferred_law=analysis["preferred_law"], noise=analysis["noise"] or {},
                         latency=lat_summary, verify=verify, figures=figures, warnings=warnings)
    (out / "fits.json").write_text(json.dumps(finite(analysis["fits"]), indent=1))
    (out / "study.json").write_text(json.dumps(finite(result.to_dict()), indent=1))
    return result


def study_from_file(config: str | Path, out_dir: str | Path | None = None, *, quick: bool = False,
                    say: Say | None = None) -> StudyResult:
    """`infscale study CONFIG`: load the YAML (or a bundled recipe name), lay its ``quick`` block over it with
    ``--quick``, run or resume the study (default out: ``infscale-out/study-<config name>[-quick]``)."""

    path = resolve_recipe(config)
    cfg = load_study(path, quick=quick)
    out = Path(out_dir) if out_dir is not None else default_out("study", path.stem + ("-quick" if quick else ""))
    return run_study(cfg, out, source=str(path), say=say)
