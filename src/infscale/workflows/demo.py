"""`infscale demo`: the whole toolkit end to end, into one run directory, with an HTML report.

Steps (each a library call into its own package; nothing here re-implements a part):

1. laws     fit Bian et al.'s inference-aware law and the Chinchilla baseline on the bundled runs, with bootstrap intervals
            and held-out validation (`infscale.laws.run_fit`);
2. latency  time a handful of small shapes on this machine (`infscale.latency.measure`, append-only JSONL, resumable),
            calibrate the CPU profile on some and report the error on the others (`calibrate_holdout`);
3. plan     a 1B model for the A100 (profile calibrated on Bian et al.'s published latencies) under a latency limit, and a
            micro model for this machine under its calibrated profile (`infscale.plan.plan_shapes`);
4. tts      the test-time compute comparison with the bundled own policy + PRM on synthetic arithmetic
            (`infscale.workflows.tts_run.run_tts`: the scheduler, append-only records, resumable), then the
            analysis: accuracy vs FLOPs, Pareto frontier, compute-optimal choice per budget
            (`infscale.tts.analysis`);
5. report   `report.html` (self-contained) and `summary.json`; every number in them is computed by this run.

The resolved config is saved as ``config.yaml``. Rerunning into the same directory resumes: latency records and tts
records already there are reused, the cheap steps are recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from infscale.configio import (
    Strict,
    check_output_dir,
    default_out,
    load_yaml,
    resolve_recipe,
    save_config,
    validate_config,
    write_csv,
    write_json,
)
from infscale.data import DATASETS
from infscale.errors import InputError
from infscale.extrapolation import point_warnings
from infscale.tts.core.config import RunConfig
from infscale.workflows.shape_study_config import load_study, study_shape_specs

__all__ = ["DemoConfig", "quick_config", "load_demo_config", "run_demo", "STEPS"]


class LawsStep(Strict):
    data: str = "bian2025"
    law: str = "inference_aware"
    baseline: str = "chinchilla_tied"
    fitter: str = "least_squares"
    n_boot: int = Field(100, ge=0)
    seed: int = 0


class LatencyStep(Strict):
    shapes: list[str] | None = Field(None, description="Shapes to time (d<d>x<L>h<heads>f<d_ff>); None: every shape "
                                     "of the bundled shape study (the shapes the micro plan's law was fitted on).")
    vocab_size: int = Field(512, gt=0)
    input_len: int = Field(32, gt=0)
    output_len: int = Field(64, gt=1)
    warmup: int = Field(1, ge=0)
    repeats: int = Field(5, ge=1)
    threads: int = Field(1, ge=1)
    n_fit: int | None = Field(None, ge=1, description="Shapes the profile is fitted on (None: half); the rest "
                              "measure its error.")
    base_profile: str = "generic-cpu"


class PlanA100Step(Strict):
    params: float = Field(1e9, gt=0)
    params_band: float = Field(2.0, ge=1)
    tokens: float = Field(29e9, gt=0)
    max_latency_s: float = Field(2.0, gt=0)
    family: str = "bian2025"
    baselines: list[str] = Field(default_factory=lambda: ["open-lm-1b", "morph-1b"])


class PlanMicroStep(Strict):
    """The micro model for this machine, planned on the law fitted on the bundled shape study (`infscale study`:
    this project's own runs at 30k-300k parameters, the largest size held out) and the latency profile the latency
    step calibrates on the study's shapes here; the size, D and the pick rule are the study's ``verify`` block."""

    study: str = Field("shape_study", description="The study recipe (its rules, groups, laws and verify block).")
    n_boot: int = Field(100, ge=0, description="Bootstrap refits of the own laws.")


class TtsStep(Strict):
    n_problems: int = Field(100, ge=1)
    """About +-10 points of 95% interval at these accuracies."""
    difficulty: int = Field(3, ge=1)
    """Where the bundled policy (d64x4) is right greedily a little over half the time: room for search to help."""
    task_seed: int = 1000
    generator_seed: int = 0
    strategies: dict[str, list[int]] = Field(default_factory=lambda: {
        "greedy": [1], "sampling": [16], "beam": [4], "mcts": [4], "rebase": [4, 8, 16],
        "particle_filter": [4, 8, 16]})
    max_tokens: int = Field(160, gt=0)
    max_step_tokens: int = Field(32, gt=0)
    depth_cap: int = Field(10, gt=0)
    n_boot: int = Field(400, ge=1)


class DemoConfig(Strict):
    laws: LawsStep = Field(default_factory=LawsStep)
    latency: LatencyStep = Field(default_factory=LatencyStep)
    plan_a100: PlanA100Step = Field(default_factory=PlanA100Step)
    plan_micro: PlanMicroStep = Field(default_factory=PlanMicroStep)
    tts: TtsStep = Field(default_factory=TtsStep)


def quick_config() -> DemoConfig:
    """A reduced demo (well under a minute): the same steps on fewer shapes, runs and problems."""
    return DemoConfig(
        laws=LawsStep(n_boot=10),
        latency=LatencyStep(shapes=["d16x14h2f48", "d24x6h3f64", "d48x1h6f128", "d96x1h12f256", "d32x12h4f88"],
                            input_len=16, output_len=8, warmup=1, repeats=2, n_fit=3),
        plan_micro=PlanMicroStep(n_boot=10),
        tts=TtsStep(n_problems=8, strategies={"greedy": [1], "sampling": [4], "rebase": [4]}, max_tokens=96,
                    n_boot=50),
    )


def load_demo_config(path: str | Path | None, *, quick: bool = False) -> DemoConfig:
    """The default (or quick) config, with a YAML file's keys laid over it (unknown keys are errors)."""
    base = quick_config() if quick else DemoConfig()
    if path is None:
        return base
    data = load_yaml(path, what="demo config")
    merged = base.model_dump()
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return validate_config(merged, DemoConfig, str(path))


Progress = Callable[[str, str], None]
"""``progress(step, message)``: called at the start and end of each step; the units of work inside a step (shapes
timed, problems run) report themselves, one line each with an ETA (`infscale.progress`)."""


# -------------------------------------------------------------------------------------------------------------- steps
def step_laws(cfg: LawsStep, out: Path, progress: Progress) -> dict[str, Any]:
    from infscale.laws.io import load_runs, save_fit  # lazy: numpy, pandas
    from infscale.laws.pipeline import run_fit  # lazy: numpy, pandas
    from infscale.report.fit_plot import plot_predicted_vs_actual  # lazy: numpy, pandas

    info = DATASETS.get(cfg.data) if cfg.data in DATASETS else None
    fit_on = info.default_fit_on if info is not None else None
    runs = load_runs(cfg.data)
    reports = []
    for law in [cfg.law] + ([cfg.baseline] if cfg.baseline else []):
        progress("laws", f"fitting {law} ({cfg.fitter}, {cfg.n_boot} bootstrap refits)")
        try:
            reports.append(run_fit(runs, law, cfg.fitter, fit_on, n_boot=cfg.n_boot, random_state=cfg.seed))
        except ValueError as exc:
            raise InputError(f"demo config laws: law {law!r}: {exc}") from None
    save_fit(reports[0].law, out / "law.json", reports[0].warnings)
    plot = plot_predicted_vs_actual(reports, runs, out / "fit_predicted_vs_actual.png",
                                    title=f"{runs.source}: fit on {fit_on or 'all rows'}")
    return {"data": runs.source, "n_runs": len(runs), "fit_on": fit_on, "fits": [r.to_dict() for r in reports],
            "law_json": str(out / "law.json"), "plot": str(plot)}


def step_latency(cfg: LatencyStep, out: Path, progress: Progress) -> dict[str, Any]:
    from infscale.arch import parse_shape_spec  # lazy: numpy

    # lazy: numpy, scipy
    from infscale.latency.calibrate import calibrate_holdout, default_free, observations_from_records
    from infscale.latency.io import get_profile, latest_records, save_profile  # lazy: numpy, scipy
    from infscale.latency.measure import MeasureSettings, measure_sweep  # lazy: numpy, scipy, torch
    from infscale.latency.model import Workload  # lazy: numpy
    from infscale.report.latency_plot import plot_latency_vs_aspect  # lazy: numpy, scipy

    specs = cfg.shapes if cfg.shapes is not None else study_shape_specs("shape_study")
    shapes = [parse_shape_spec(s, vocab_size=cfg.vocab_size) for s in specs]
    wl = Workload(batch=1, input_len=cfg.input_len, output_len=cfg.output_len, dtype="fp32")
    settings = MeasureSettings(device="cpu", threads=cfg.threads, warmup=cfg.warmup, repeats=cfg.repeats)
    path = out / "latency_records.jsonl"

    progress("latency", f"timing {len(shapes)} shapes (own backend, {cfg.input_len} in / {cfg.output_len} out, "
                        f"{cfg.repeats} repeats)")
    records = latest_records(measure_sweep(shapes, wl, path, backend="own", settings=settings))
    obs = observations_from_records(records, source=str(path))
    base = get_profile(cfg.base_profile)
    n_fit = min(cfg.n_fit if cfg.n_fit is not None else len(obs) // 2, len(obs) - 1)
    if n_fit < 1:
        raise InputError("demo config latency.shapes: need at least 2 shapes (fit on some, test on the others)")
    hold = calibrate_holdout(obs, base, n_fit=n_fit, free=default_free(base), name="this-cpu-demo")
    profile = hold.calibrator.profile_
    save_profile(profile, out / "cpu_profile.json", meta={"source": str(path), "fit_on": hold.fit_labels})
    plot = plot_latency_vs_aspect(records, profile, out / "latency_vs_aspect.png")
    pred = hold.calibrator.predict(obs)
    rows = []
    for i, (r, o) in enumerate(zip(records, obs, strict=True)):
        rows.append({"label": r["label"], "n_params": r["n_params"],
                     "n_params_non_embedding": o.shape.n_params_non_embedding,
                     "d_model": r["shape"]["d_model"], "n_layers": r["shape"]["n_layers"],
                     "aspect_ratio": r["shape"]["d_model"] / r["shape"]["n_layers"],
                     "prefill_s": r["prefill_s"], "decode_s": r["decode_s"], "total_s": r["total_s"],
                     "decode_iqr_s": r["spread"]["decode_s"]["q75"] - r["spread"]["decode_s"]["q25"],
                     "predicted_decode_s": float(pred["decode_s"][i]), "predicted_total_s": float(pred["total_s"][i]),
                     "used_for_fit": r["label"] in hold.fit_labels})
    write_csv(out / "latency.csv", rows)
    errs = hold.test_errors.get("decode_s")
    return {"workload": wl.to_dict(), "vocab_size": cfg.vocab_size, "records": str(path), "rows": rows, "fit_on": hold.fit_labels,
            "held_out": hold.test_labels,
            "held_out_decode_errors": dict(zip(hold.test_labels, [] if errs is None else errs.tolist(), strict=True)),
            "held_out_median_abs_error": hold.median_abs_error() if hold.test_labels else None,
            "held_out_max_abs_error": hold.max_abs_error() if hold.test_labels else None,
            "profile": profile.to_dict(), "profile_json": str(out / "cpu_profile.json"), "plot": str(plot),
            "env": records[0]["env"] if records else {}}


def _plan(law: Any, rules: Any, lo: float, hi: float, constraints: Any, latency_fn: Any, workload: Any,
          baselines: dict[str, Any] | None = None) -> tuple[Any, dict[str, int], float]:
    # lazy: numpy
    from infscale.plan import ShapeGrid, enumerate_shapes, loss_from_law, memory_from_workload, plan_shapes

    t0 = time.perf_counter()
    grid = enumerate_shapes(rules, lo, hi)
    idx: dict[str, int] = {}
    if baselines:
        grid = grid.concat(ShapeGrid.from_shapes(baselines.values()))
        idx = {name: grid.find(s) for name, s in baselines.items()}
    result = plan_shapes(grid, loss_from_law(law), constraints, latency_fn,
                         memory_fn=memory_from_workload(workload) if constraints.max_memory_bytes else None)
    return result, idx, time.perf_counter() - t0


def _plan_summary(result: Any, baselines: dict[str, int], seconds: float, law: Any, profile: Any
                  ) -> dict[str, Any]:
    from infscale.plan.optimum import baseline_verdict  # lazy: numpy

    best = result.row(result.best)
    return {"n_candidates": len(result.grid), "n_feasible": int(result.feasible.sum()), "best": best,
            "warnings": point_warnings(law.meta, best, shape_aware=law.law.needs_aspect_ratio, profile=profile),
            "baselines": {name: baseline_verdict(result, i) for name, i in baselines.items()},
            "frontier": [result.row(int(i)) for i in result.frontier], "plan_seconds": seconds,
            "constraints": {k: getattr(result.constraints, k) for k in result.constraints.__dataclass_fields__}}


def step_plan(cfg_a100: PlanA100Step, cfg_micro: PlanMicroStep, latency: dict[str, Any], out: Path,
              progress: Progress) -> dict[str, Any]:
    from infscale.arch import get_preset  # lazy: numpy
    from infscale.latency.calibrate import BIAN2025_WORKLOAD  # lazy: numpy, scipy
    from infscale.latency.io import calibrate_bian2025  # lazy: numpy, scipy
    from infscale.laws.io import load_fit  # lazy: numpy, pandas
    from infscale.plan import PlanConstraints, get_family, latency_from_profile, params_band  # lazy: numpy
    from infscale.report.plan_plot import plot_frontier  # lazy: numpy

    law = load_fit(out / "law.json")
    progress("plan", "calibrating the A100 profile on Bian et al.'s published latencies")
    bian2025 = calibrate_bian2025(name="a100-40gb-bian2025")
    lo, hi = params_band(cfg_a100.params, cfg_a100.params_band)
    try:
        baselines = {name: get_preset(name) for name in cfg_a100.baselines}
        rules = get_family(cfg_a100.family)
    except InputError as exc:
        raise InputError(f"demo config plan_a100: {exc}") from None
    a100_cons = PlanConstraints(max_latency_s=cfg_a100.max_latency_s, n_tokens=cfg_a100.tokens,
                                max_memory_bytes=bian2025.profile_.memory_bytes)
    progress("plan", f"1B on the A100: {cfg_a100.family} shapes {lo:.3g}-{hi:.3g} params, D={cfg_a100.tokens:.3g}, "
                     f"latency <= {cfg_a100.max_latency_s:g} s")
    result, idx, secs = _plan(law, rules, lo, hi, a100_cons, latency_from_profile(bian2025.profile_, BIAN2025_WORKLOAD),
                              BIAN2025_WORKLOAD, baselines)
    a100 = _plan_summary(result, idx, secs, law, bian2025.profile_)
    a100["hardware"] = bian2025.profile_.name
    a100["workload"] = BIAN2025_WORKLOAD.to_dict()
    a100["bian2025_calibration_rel_errors"] = bian2025.relative_errors_["total_s"].tolist()
    a100["plot"] = str(plot_frontier(result, out / "plan_a100_frontier.png", baselines=idx,
                                     title="1B on the A100 (Bian et al. profile): predicted loss vs latency"))
    write_csv(out / "plan_a100_frontier.csv", a100["frontier"])

    micro = plan_micro(cfg_micro, latency, out, progress)
    summary = {"a100": a100, "micro": micro}
    write_json(out / "plan.json", summary)
    return summary


def plan_micro(cfg: PlanMicroStep, latency: dict[str, Any], out: Path, progress: Progress) -> dict[str, Any]:
    """The micro model for this machine: the own laws fitted on the bundled shape study (every size but the held-out
    one), the preferred law (lowest held-out MSE) planning the study's verification size on this machine's profile,
    and the bundled verification (the recommended and the baseline shape trained and timed on our machine)."""
    from infscale.latency.io import load_profile_file  # lazy: numpy, scipy
    from infscale.latency.model import Workload  # lazy: numpy
    from infscale.laws.io import save_fit  # lazy: numpy, pandas
    from infscale.report.plan_plot import plot_frontier  # lazy: numpy
    from infscale.workflows.shape_study import (  # lazy: numpy
        BUNDLED_RUNS,
        BUNDLED_VERIFY,
        analyse,
        bundled,
        plan_verification,
        read_rows,
        read_verify,
        verification_candidates,
    )

    study = load_study(resolve_recipe(cfg.study)).model_copy(update={"bootstrap": cfg.n_boot})
    frame = read_rows(bundled(BUNDLED_RUNS))
    progress("plan", f"micro model on this machine: own laws on the bundled shape study ({len(frame)} runs, "
                     f"{study.held_out} held out, {cfg.n_boot} bootstrap refits)")
    analysis = analyse(frame, study)
    if analysis["preferred_law"] is None:
        raise InputError(f"demo config plan_micro: study {cfg.study!r}: every shape-aware law's fit on its runs is "
                         "degenerate: nothing to plan with")
    law = analysis["reports"][analysis["preferred_law"]].law
    save_fit(law, out / "micro_law.json", analysis["reports"][analysis["preferred_law"]].warnings)
    profile = load_profile_file(latency["profile_json"])
    lat_cfg = latency["workload"]
    wl = Workload(batch=1, input_len=lat_cfg["input_len"], output_len=lat_cfg["output_len"], dtype="fp32")
    vocab = int(study.base.get("data", {}).get("vocab_size", 512))
    t0 = time.perf_counter()
    candidates = verification_candidates(study, law, profile, frame, vocab, wl)
    plan = plan_verification(study, law, profile, frame, vocab, wl, candidates)
    result, _, base, _ = candidates
    secs = time.perf_counter() - t0
    plan["plot"] = str(plot_frontier(result, out / "plan_micro_frontier.png", baselines={"deep baseline": base},
                                     title="Micro model on this CPU (own law, calibrated profile)"))
    write_csv(out / "plan_micro_frontier.csv", plan["frontier"])
    rec, bl = plan["recommended"], plan["baseline"]
    progress("plan", f"micro: {rec['shape']} (predicted loss {rec['predicted_loss']:.4f}, decode "
                     f"{1e3 * rec['predicted_decode_s']:.1f} ms) vs the deep baseline {bl['shape']} "
                     f"({bl['predicted_loss']:.4f}, {1e3 * bl['predicted_decode_s']:.1f} ms)")
    fits = [{k: f[k] for k in ("law", "shape_aware", "params", "n_fit", "n_held_out", "held_out", "size_spearman",
                               "warnings")} for f in analysis["fits"]]
    return {**plan, "plan_seconds": secs, "preferred_law": analysis["preferred_law"], "fits": fits,
            "noise": analysis["noise"], "held_out_group": study.held_out,
            "loss_range": [float(frame["loss"].min()), float(frame["loss"].max())],
            "verification": read_verify(bundled(BUNDLED_VERIFY)), "law_json": str(out / "micro_law.json")}


def step_tts(cfg: TtsStep, out: Path, progress: Progress) -> dict[str, Any]:
    from infscale.workflows.tts_analysis import analyse_records  # lazy: numpy
    from infscale.workflows.tts_run import run_tts  # lazy: numpy

    run_cfg = RunConfig.model_validate({
        "run": "arith-own", "out_dir": str(out / "tts"), "model_name": "arith-policy-d64x4", "seed": cfg.generator_seed,
        "task": {"name": "arith", "params": {"n_problems": cfg.n_problems, "difficulty": cfg.difficulty,
                                             "seed": cfg.task_seed}},
        "generator": {"name": "torch", "params": {"seed": cfg.generator_seed}},
        "reward": {"name": "torch_prm"},
        "strategies": [{"name": name, "budgets": budgets} for name, budgets in cfg.strategies.items()],
        "search": {"temperature": 1.0, "max_tokens": cfg.max_tokens, "max_step_tokens": cfg.max_step_tokens,
                   "depth_cap": cfg.depth_cap},
    })
    t0 = time.perf_counter()
    progress("tts", f"{cfg.n_problems} problems x {len(cfg.strategies)} strategies at their budgets")
    summary = run_tts(run_cfg)  # the scheduler: many problems per generator call; a progress line per unit
    records = list(summary.records)
    analysis = analyse_records(records, out, n_boot=cfg.n_boot, seed=0, prefix="tts_", sources=[summary.records_path],
                               title="Own policy + PRM on arithmetic: accuracy vs inference FLOPs")
    result = {"records": summary.records_path, "n_records": len(records), "n_failed": analysis.n_failed,
              "n_problems": cfg.n_problems, **{k: v for k, v in analysis.to_dict().items()
                                               if k in ("points", "frontier", "compute_optimal", "matched_flops")},
              "plot": analysis.files["accuracy_vs_flops_png"], "saturation_plot": analysis.files.get("saturation_png"),
              "run_seconds": time.perf_counter() - t0}
    write_json(out / "tts_analysis.json", result)
    return result


STEPS: tuple[str, ...] = ("laws", "latency", "plan", "tts", "lifecycle", "report")


def step_lifecycle(out: Path, say: Callable[[str, str], None]) -> dict[str, Any]:
    """The bundled `lifecycle_mini` deployment (the project's own mini-study measurements): which model to train
    and how to decode it for 1,000 queries at >= 75% accuracy, and where that choice changes with query volume."""
    from infscale.workflows.lifecycle import run_lifecycle  # lazy: numpy

    report = run_lifecycle("lifecycle_mini", out / "lifecycle")
    b = report.best
    say("lifecycle", f"train {b['model']}, decode with {b['strategy']} n={b['n']} ({100 * b['accuracy']:.1f}%)")
    return report.to_dict()


def default_out_dir() -> Path:
    """``infscale-out/demo-<UTC time>`` (`infscale.configio.default_out`)."""

    return default_out("demo")


def run_demo(cfg: DemoConfig, out: str | Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run every step into ``out``; returns the summary (also written as ``summary.json``) with ``report`` = the HTML."""

    out = check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / "config.yaml", cfg)
    say = progress or (lambda step, msg: None)
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"out_dir": str(out), "config": cfg.model_dump(),
                               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def timed(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        say(name, "start")
        t0 = time.perf_counter()
        res = fn()
        timings[name] = time.perf_counter() - t0
        say(name, f"done in {timings[name]:.1f} s")
        return res

    summary["laws"] = timed("laws", lambda: step_laws(cfg.laws, out, say))
    summary["latency"] = timed("latency", lambda: step_latency(cfg.latency, out, say))
    summary["plan"] = timed("plan", lambda: step_plan(cfg.plan_a100, cfg.plan_micro, summary["latency"], out, say))
    summary["tts"] = timed("tts", lambda: step_tts(cfg.tts, out, say))
    summary["lifecycle"] = timed("lifecycle", lambda: step_lifecycle(out, say))
    summary["timings_s"] = timings

    from infscale.report.html import write_report  # lazy: numpy

    t0 = time.perf_counter()
    say("report", "start")
    summary["timings_s"]["total_before_report"] = sum(timings.values())
    report = write_report(summary, out / "report.html")
    timings["report"] = time.perf_counter() - t0
    say("report", f"done in {timings['report']:.1f} s")
    summary["report"] = str(report)
    summary["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json(out / "summary.json", summary)
    return summary
