"""`infscale lifecycle DEPLOY.yaml`: what to train (N, D, shape) and how to decode it (strategy, n) for a deployment,
at the least lifetime cost (the maths: `infscale.plan.lifecycle`).

Steps: read and validate the deployment file; load the loss law; fit the loss -> accuracy link on runs with a
downstream metric (held-out error on the larger runs); fit the test-time curves on operating points of several
model sizes (leave-one-size-out error); enumerate shapes x strategies x budgets priced on the hardware profile (or
take already-trained models with measured points); solve; the cost-vs-accuracy frontier; the optimum at every
lifetime query volume (the crossover). Writes ``lifecycle.json`` (with the resolved config), ``frontier.csv``,
``crossover.csv``, ``crossover.png``, ``frontier.png`` and ``report.html`` under the output folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_output_dir, load_yaml, resolve_recipe, save_config, write_csv, write_json
from infscale.errors import InfeasibleError, InputError
from infscale.extrapolation import law_range, outside, point_warnings, profile_warnings
from infscale.laws.testtime import TestTimeCurves, leave_one_size_out
from infscale.notices import Notice
from infscale.plan.adapters import loss_from_law, unpriced_choices
from infscale.plan.lifecycle import AccuracyChain, Deployment, Prices, required_tokens, solve_lifecycle
from infscale.plan.lifecycle_candidates import configs_from_points, configs_from_shapes, configs_from_sizes
from infscale.plan.lifecycle_sweeps import cost_frontier, crossover_in_queries
from infscale.plan.shapes import enumerate_shapes, get_family
from infscale.report.lifecycle import plot_cost_frontier, plot_crossover_volume, write_lifecycle_html
from infscale.tts.core.spec import planner_strategies, uses_reward
from infscale.workflows.lifecycle_config import DeployConfig
from infscale.workflows.lifecycle_inputs import fit_link, load_law, load_points
from infscale.workflows.lifecycle_pilots import pilot_points

__all__ = ["LifecycleReport", "load_deploy", "plan_lifecycle", "run_lifecycle"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleReport:
    """The decision and everything it rests on (plain data: JSON-ready)."""

    name: str
    mode: str
    unit: str
    best: dict[str, Any]
    breakdown: dict[str, float | None]
    binding: list[str]
    at_bound: list[str]
    n_configs: int
    n_feasible: int
    frontier: list[dict[str, Any]]
    crossover: list[dict[str, Any]]
    link: dict[str, Any] | None
    curves: dict[str, Any] | None
    warnings: list[str]
    seconds: float
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_deploy(path: str | Path) -> DeployConfig:
    return load_yaml(path, DeployConfig, what="deployment file")


def _pilots(cfg: DeployConfig, base: Path) -> Any:
    """`testtime.pilots`: every model's curves forecast from its pilot (`infscale.workflows.lifecycle_pilots`)."""
    if cfg.testtime is None or cfg.testtime.pilots is None:
        return None
    budgets = [n for s, ns in cfg.strategies.items() if s != "greedy" for n in ns]
    return pilot_points(cfg.testtime.pilots, base, pilot=cfg.testtime.pilot, n_max=max(budgets, default=64))


def _curves(cfg: DeployConfig, base: Path, pp: Any) -> tuple[Any, Any, dict[str, Any] | None]:
    """The test-time curves (and, from pilots, the curves of the forecasts' lower and upper bounds) and their info."""
    if cfg.testtime is None:
        return None, None, None

    spec = cfg.testtime
    truth, bounds, pilot_info = None, None, None
    if pp is not None:
        pts, truth = pp.forecast, pp.measured
        pilot_info = {"pilot": pp.pilot, "pool_size": pp.pool_size, "own_error_points": pp.own_error_points}
    else:
        pts = load_points(spec.points or "mini", base)
    base_acc = pts.base_accuracy()
    b = [base_acc[m] for m in pts.model]
    curves = TestTimeCurves(ridge=spec.ridge).fit(b, pts.strategy, pts.n, pts.accuracy)
    if pp is not None:
        bounds = tuple(TestTimeCurves(ridge=spec.ridge).fit(b, q.strategy, q.n, q.accuracy) for q in (pp.low, pp.high))
    info: dict[str, Any] = {"source": pts.source, "models": {m: {"greedy": a} for m, a in sorted(base_acc.items())},
                            "coefficients": curves.to_dict()}
    if pilot_info is not None:
        info["pilots"] = pilot_info
    if len(base_acc) >= 3:
        info["leave_one_size_out"] = leave_one_size_out(pts.model, b, pts.strategy, pts.n, pts.accuracy,
                                                        ridge=spec.ridge, truth=truth).to_dict()
    return curves, bounds, info


def _profile(cfg: DeployConfig) -> Any:
    from infscale.latency.io import get_profile  # lazy: scipy

    return get_profile(cfg.hardware.profile)


def _configs(cfg: DeployConfig, base: Path, d: Any, profile: Any, pp: Any) -> Any:
    cand = cfg.candidates
    strategies = {s: tuple(v) for s, v in cfg.strategies.items()}
    scored = {name for name, spec in planner_strategies().items() if spec.needs_reward}
    if cand.measured is not None:
        if cand.measured == "pilots" and pp is None:
            raise InputError("candidates.measured: pilots needs testtime.pilots (the models' sampling records)")
        pts = pp.forecast if cand.measured == "pilots" else load_points(cand.measured, base)
        tokens = None
        if isinstance(cand.train_tokens, dict):
            missing = sorted(set(pts.model) - set(cand.train_tokens))
            if missing:
                raise InputError(f"candidates.train_tokens: no entry for model {missing[0]!r}")
            tokens = [cand.train_tokens[m] for m in pts.model]
        elif cand.train_tokens is not None:
            tokens = [cand.train_tokens] * len(pts.model)
        return configs_from_points(pts.model, pts.n_params, pts.strategy, pts.n, pts.accuracy, pts.flops,
                                   train_tokens=tokens, prm_train_flops=cand.prm_train_flops,
                                   scored=[uses_reward(s) for s in pts.strategy])
    lo, hi = cand.min_params, cand.max_params
    prm = None if cfg.prm is None else cfg.prm.shape()
    try:
        if cand.family is None:
            c = configs_from_sizes(np.geomspace(lo, hi, cand.size_points), strategies, d, tokens_range=(1.0, 1.0),
                                   prm_n_params=None if prm is None else float(prm.n_params), scored=scored)
        else:
            rules = get_family(cand.family)
            changes = {k: tuple(v) if isinstance(v, list) else v for k, v in (
                ("vocab_size", cand.vocab_size), ("kv_heads", cand.kv_heads),
                ("ffn_multipliers", cand.ffn_multipliers)) if v is not None}
            if changes:
                rules = rules.with_(**changes)
            grid = enumerate_shapes(rules, lo, hi)
            c = configs_from_shapes(grid, strategies, replace(d, prompt_tokens=max(d.prompt_tokens, 1)), profile,
                                    tokens_range=(1.0, 1.0), params_range=(lo, hi), prm=prm,
                                    dtype=cfg.hardware.dtype, scored=scored)
    except ValueError as exc:
        raise InputError(f"candidates: {exc}") from None
    if cand.tokens is not None:
        t_lo = t_hi = np.full(len(c), cand.tokens)
    else:
        t_lo, t_hi = cand.tokens_per_param[0] * c.n_params, cand.tokens_per_param[1] * c.n_params
    return replace(c, tokens_min=t_lo, tokens_max=t_hi)


def _deployment(cfg: DeployConfig, profile: Any) -> Any:
    dep = cfg.deployment
    memory = cfg.hardware.memory_bytes or (None if profile is None else profile.memory_bytes)
    return Deployment(queries=dep.queries, prompt_tokens=dep.prompt_tokens, output_tokens=dep.output_tokens,
                      batch=dep.batch, max_latency_s=dep.max_latency_s, accuracy_target=dep.accuracy_target,
                      loss_target=dep.loss_target, cost_ceiling=dep.cost_ceiling,
                      max_memory_bytes=memory if _shaped(cfg) else None)


def _shaped(cfg: DeployConfig) -> bool:
    """Whether the candidates are shapes priced on a profile (not shape-free sizes nor measured models)."""
    return cfg.candidates.family is not None and cfg.candidates.measured is None


def _breakdown(sol: Any, cfg: DeployConfig, prices: Any, d: Any) -> dict[str, float | None]:
    """The optimum's costs in device-hours, dollars and FLOPs."""
    c, i = sol.configs, sol.best
    n, tokens = float(c.n_params[i]), float(sol.tokens[i])
    train_flops = float(c.fixed_train_flops[i]) if c.sunk[i] else 6.0 * n * tokens
    per_s = prices.train_flops_per_s if _shaped(cfg) else np.nan  # no profile: no device-hours
    hours = {"train": train_flops / per_s / 3600.0,
             "serve": d.queries * float(c.serve_s[i]) / 3600.0, "prm": d.queries * float(c.prm_s[i]) / 3600.0}
    out: dict[str, float | None] = {f"{k}_device_hours": (v if np.isfinite(v) else None) for k, v in hours.items()}
    out.update({"train_flops": train_flops, "serve_flops": d.queries * float(c.serve_flops[i]),
                "prm_flops": d.queries * float(c.prm_flops[i])})
    usd = cfg.hardware.usd_per_hour
    for k, v in hours.items():
        out[f"{k}_usd"] = None if usd is None or not np.isfinite(v) else v * usd
    out["total_flops"] = out["train_flops"] + out["serve_flops"] + out["prm_flops"]
    return out


def _warnings(sol: Any, chain: Any, d: Any) -> list[str]:
    c, i = sol.configs, sol.best
    out = []
    if not c.sunk[i]:
        loss = float(chain.loss(c, sol.tokens)[i])
        link = chain.link
        if link is not None and bool(link.outside(loss)):
            lo, hi = link.loss_range_
            out.append(Notice("extrapolation", f"the optimum's predicted loss {loss:.4g} lies outside the accuracy "
                              f"link's fitted range [{lo:.4g}, {hi:.4g}]", quantity="loss", value=loss, range=(lo, hi),
                              source="accuracy link"))
        if chain.curves is not None and c.strategy[i] != "greedy":
            base = float(chain.base_accuracy(c, sol.tokens)[i])
            if bool(chain.curves.outside(base, c.strategy[i:i + 1], c.n[i:i + 1])[0]):
                s = str(c.strategy[i])
                (blo, bhi), (nlo, nhi) = chain.curves.base_range_[s], chain.curves.n_range_[s]
                out.append(Notice("extrapolation", f"{s} at n={int(c.n[i])} from base accuracy {base:.3f} lies outside "
                                  f"its curve's fitted range (base {blo:.3f}-{bhi:.3f}, n {nlo}-{nhi})",
                                  quantity="base accuracy", value=base, range=(blo, bhi), source="test-time curve"))
    out += [Notice("search bound", f"the optimum lies on a bound of the search: {b}") for b in sol.at_bound]
    return out


def _unpriced(cfg: DeployConfig, law: Any) -> list[str]:
    """KV heads or FFN widths searched with a law that has no term for them: asked for in the config, one line
    refusing; searched by the family's default, one warning line (the choice is then made for cost alone)."""
    cand = cfg.candidates
    if not _shaped(cfg):
        return []
    family = get_family(cand.family)
    asked = {key: tuple(getattr(cand, key)) for key in ("kv_heads", "ffn_multipliers") if getattr(cand, key) is not None}
    out = []
    for key, what, searched in unpriced_choices(law, replace(family, **asked)):
        if key in asked:
            raise InputError(f"candidates.{key}: law {law.name!r} has no term for {what} (it predicts the same loss "
                             f"for every choice, so the cheapest would win for free); fit one that prices them "
                             f"(arch_conditional on the bundled arch_study) or search one value")
        out.append(Notice("unpriced", f"family {cand.family!r} searches {what} {list(searched)} but law {law.name!r} "
                          f"has no term for them: the plan's {what} are chosen for cost alone, not planned (set "
                          f"candidates.{key}, or fit arch_conditional)", quantity=what))
    return out


_LOSO_WARN_POINTS = 8.0
"""A leave-one-size-out error above this many points is said beside the plan (a size never sampled is predicted
that far off)."""


def _sweep_warnings(law: Any, rows: list[dict[str, Any]], curves: dict[str, Any] | None, *,
                    sizes_predicted: bool) -> list[str]:
    """What the crossover and frontier rows draw beyond the law's fitted range (each quantity once, its most
    extreme row), and, where candidates' accuracies come from the curves (``sizes_predicted``), a leave-one-size-out
    error too large to trust for a size never sampled."""

    out = []
    fr = law_range(law.meta)
    trained = [r for r in rows if r.get("feasible", True) and not r.get("sunk") and r.get("model") is not None]
    checks = [("n_params", "N"), ("train_tokens", "D")]
    if law.law.needs_aspect_ratio:
        checks.append(("aspect_ratio", "d_model/n_layers"))
    for key, symbol in checks if fr is not None else []:
        lo_hi = getattr(fr, {"train_tokens": "n_tokens"}.get(key, key))
        values = [(float(r[key]), r) for r in trained if r.get(key) is not None and np.isfinite(r[key])]
        if lo_hi is None or not values:
            continue
        lo, hi = lo_hi
        far = max(values, key=lambda v: max(v[0] / hi, lo / v[0]))
        # the project's one extrapolation check (5% slack at each end, as for the optimum itself)
        note = outside(symbol, far[0], lo, hi, f"of the {fr.n_runs} runs the law was fitted on")
        if note is not None:
            out.append(note.about(f"crossover/frontier rows reach ({far[1]['model']})"))
    loso = (curves or {}).get("leave_one_size_out")
    if sizes_predicted and loso and loso["mae_points"] > _LOSO_WARN_POINTS:
        out.append(Notice("test-time curves", f"leave-one-size-out error {loso['mae_points']:.1f} points: a model "
                          "size never sampled gets its strategies' accuracy from the other sizes' curves and may be "
                          "that far off; sample a pilot of it (testtime.pilots)", value=loso["mae_points"]))
    return out


def _law_warnings(law: Any, best: dict[str, Any], profile: Any) -> list[str]:
    """Where the optimum's model, trained here, leaves the loss law's fitted range, and whether its latency rests on
    an uncalibrated profile (`infscale.extrapolation`); a measured model (loss and accuracy measured) needs none."""

    if best.get("sunk") or best.get("loss") is None:
        return []
    out = point_warnings(law.meta, {**best, "n_tokens": best["train_tokens"]}, shape_aware=law.law.needs_aspect_ratio,
                         arch=law.law.needs_arch) if law_range(law.meta) is not None else []
    return out + ([] if profile is None else profile_warnings(profile, best["n_params"]))


def plan_lifecycle(cfg: DeployConfig, base: Path, *, out: Path | None = None, plot: bool = True) -> LifecycleReport:
    """Solve the deployment of ``cfg`` (relative paths from ``base``); files under ``out`` when given."""

    t0 = time.perf_counter()
    law = load_law(cfg.law, base)
    link, link_info = (None, None) if cfg.accuracy is None else fit_link(cfg.accuracy, base)
    pp = _pilots(cfg, base)
    curves, bounds, curve_info = _curves(cfg, base, pp)
    profile = _profile(cfg) if _shaped(cfg) else None
    d = _deployment(cfg, profile)
    prices = Prices(usd_per_hour=cfg.hardware.usd_per_hour,
                    train_flops_per_s=(profile.peak_flops(cfg.hardware.dtype) if profile is not None else 1.0)
                    * cfg.hardware.train_mfu)
    unpriced = _unpriced(cfg, law)
    configs = _configs(cfg, base, d, profile, pp)
    loss_fn = loss_from_law(law)
    chain = AccuracyChain(loss_fn=_shape_free(loss_fn, cfg), link=link, curves=curves)
    try:
        tokens = required_tokens(configs, chain, d) if d.mode == "min_cost" else None
        sol = solve_lifecycle(configs, chain, d, prices, tokens)
    except InfeasibleError:
        raise
    except ValueError as exc:
        raise InputError(f"{cfg.name}: {exc}") from None
    frontier = cost_frontier(configs, chain, d, prices)
    q_lo, q_hi = cfg.crossover.queries
    cross = crossover_in_queries(configs, chain, d, prices, np.geomspace(q_lo, q_hi, cfg.crossover.points), tokens)
    best = sol.row(sol.best)
    i = sol.best
    best["loss"] = None if configs.sunk[i] else float(chain.loss(configs, sol.tokens)[i])
    if link is None and not configs.sunk[i]:
        best["accuracy"] = None  # the chain scored the loss only
    elif pp is not None:
        best["accuracy_interval"] = _accuracy_interval(pp, bounds, chain, configs, sol)
    report = LifecycleReport(
        name=cfg.name, mode=d.mode, unit=prices.unit, best=best, breakdown=_breakdown(sol, cfg, prices, d),
        binding=list(sol.binding), at_bound=list(sol.at_bound), n_configs=len(configs),
        n_feasible=int(sol.feasible.sum()), frontier=frontier, crossover=cross, link=link_info, curves=curve_info,
        warnings=unpriced + _law_warnings(law, best, profile) + _warnings(sol, chain, d)
        + _sweep_warnings(law, cross + frontier, curve_info, sizes_predicted=cfg.candidates.measured is None),
        seconds=time.perf_counter() - t0)
    if out is None:
        return report
    return replace(report, files=_write(report, cfg, out, plot))


def _accuracy_interval(pp: Any, bounds: Any, chain: Any, configs: Any, sol: Any) -> list[float] | None:
    """The optimum's accuracy interval from the pilots' forecasts: a measured (pilot) model's own forecast bounds at
    its n; a trained candidate's, the curves fitted on the forecasts' lower and upper bounds."""
    i = sol.best
    if configs.sunk[i]:
        key = (str(configs.model[i]), str(configs.strategy[i]), int(configs.n[i]))
        rows = {(m, s, n): k for k, (m, s, n) in enumerate(zip(pp.low.model, pp.low.strategy, pp.low.n, strict=True))}
        k = rows.get(key)
        return None if k is None else [pp.low.accuracy[k], pp.high.accuracy[k]]
    if bounds is None:
        return None
    lo, hi = (float(replace(chain, curves=c).accuracy(configs, sol.tokens)[i]) for c in bounds)
    return [min(lo, hi), max(lo, hi)]


def _shape_free(loss_fn: Any, cfg: DeployConfig) -> Any:
    """Shape-free candidates pass no aspect ratio (NaN); a shape-aware law then needs shapes: one line."""
    if _shaped(cfg):
        return loss_fn

    def loss(n: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
        try:
            return loss_fn(n, d, r)
        except ValueError as exc:
            raise InputError(f"law: {exc}: shape-aware laws need shapes (candidates.family)") from None

    return loss


def _write(report: LifecycleReport, cfg: DeployConfig, out: Path, plot: bool) -> dict[str, str]:
    files = {"config": str(save_config(out / "config.yaml", cfg))}
    files["frontier_csv"] = write_csv(out / "frontier.csv", report.frontier) if report.frontier else ""
    files["crossover_csv"] = write_csv(out / "crossover.csv", report.crossover)
    if plot:
        files["crossover_png"] = str(plot_crossover_volume(report.crossover, out / "crossover.png",
                                                           unit=report.unit))
        if report.frontier:
            files["frontier_png"] = str(plot_cost_frontier(report.frontier, out / "frontier.png", best=report.best))
    files = {k: v for k, v in files.items() if v}

    files["report_html"] = str(write_lifecycle_html(replace(report, files=files).to_dict(), out / "report.html"))
    files["lifecycle_json"] = write_json(out / "lifecycle.json", replace(report, files=files).to_dict())
    return files


def run_lifecycle(path: str | Path, out: Path, *, plot: bool = True) -> LifecycleReport:
    """`plan_lifecycle` on a deployment file, writing under ``out`` (an infeasible deployment is one line)."""

    path = resolve_recipe(path)
    cfg = load_deploy(path)
    check_output_dir(out)
    try:
        return plan_lifecycle(cfg, Path(path).parent, out=out, plot=plot)
    except InfeasibleError as exc:
        raise InfeasibleError(f"{Path(path).name}: {exc}") from None
