"""`infscale plan` as a workflow: the shape, N and D with the lowest predicted loss under latency, parameter, token
and FLOP budgets, the loss-vs-latency frontier and the verdict on each baseline; files into the output directory.

`PlanRequest` holds what the user asked (the CLI's flags); `run_plan` validates it completely before any work,
enumerates the shape family, scores every candidate with the saved law and the hardware profile (or measured
latencies) through `infscale.plan`, and writes ``plan.json``, ``frontier.csv`` and ``frontier.png``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infscale.arch import get_preset
from infscale.configio import check_number, check_output_dir, write_csv, write_text
from infscale.errors import InputError
from infscale.extrapolation import law_warnings, point_warnings
from infscale.latency.model import Workload
from infscale.notices import Notice
from infscale.plan import (
    PlanConstraints,
    ShapeGrid,
    enumerate_shapes,
    get_family,
    latency_from_profile,
    law_arch_terms,
    lifetime_cost,
    lifetime_optimal,
    loss_from_law,
    lowest_loss_for_budget,
    memory_from_workload,
    params_band,
    plan_shapes,
    unpriced_choices,
)
from infscale.plan.optimum import baseline_verdict, foreign_baseline_verdict
from infscale.report.plan_plot import plot_frontier
from infscale.workflows.optimum import refuse_architecture_law

__all__ = ["PlanRequest", "PlanReport", "run_plan"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    law: Path
    """A saved fit (``infscale fit --save``)."""
    hardware: str | None = None
    params: float | None = None
    params_band: float = 2.0
    min_params: float | None = None
    max_params: float | None = None
    tokens: float | None = None
    max_tokens: float | None = None
    max_train_flops: float | None = None
    max_latency_s: float | None = None
    family: str = "bian2025"
    max_layers: int | None = None
    """Overrides the family's depth cap (``n_layers_max``)."""
    max_d_model: int | None = None
    """Overrides the family's width cap (``d_model_max``)."""
    kv_heads: tuple[int, ...] | None = None
    """KV-head counts searched (overrides the family's); needs a law that prices them (a ``kv_group`` term)."""
    ffn_multipliers: tuple[float, ...] | None = None
    """FFN widths searched as multiples of d_model (overrides the family's rule); needs a law with an FFN term."""
    vocab_size: int | None = None
    batch: int = 1
    prompt_tokens: int = 128
    new_tokens: int = 256
    measured: Path | None = None
    baselines: tuple[str, ...] = ()
    out: Path = Path("infscale-out/plan")  # the CLI gives infscale-out/plan-<UTC time>


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanReport:
    """What `run_plan` found; ``result`` is the scored grid (`infscale.plan.PlanResult`) behind the rows."""

    request: PlanRequest
    params_range: tuple[float, float]
    n_candidates: int
    n_feasible: int
    best: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    frontier: list[dict[str, Any]]
    result: Any
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Where the recommendation leaves the law's fitted range or rests on an uncalibrated profile
    (`infscale.extrapolation`), or sits on a cap of the search space, one line each."""
    search_space: dict[str, Any] = field(default_factory=dict)
    """What was searched: the family's width and depth ranges, heads, KV heads, FFN rule and the N band."""

    def to_dict(self) -> dict[str, Any]:
        req, cons = self.request, self.result.constraints
        return {"law": str(req.law), "hardware": req.hardware, "family": req.family,
                "params_range": list(self.params_range),
                "constraints": {k: getattr(cons, k) for k in cons.__dataclass_fields__},
                "workload": {"batch_size": req.batch, "prompt_tokens": req.prompt_tokens,
                             "new_tokens": req.new_tokens},
                "search_space": self.search_space,
                "n_candidates": self.n_candidates, "n_feasible": self.n_feasible, "best": self.best,
                "warnings": list(self.warnings), "baselines": self.baselines, "frontier": self.frontier}


def _check_numbers(req: PlanRequest) -> None:
    for flag, value in (("--params", req.params), ("--min-params", req.min_params), ("--max-params", req.max_params),
                        ("--tokens", req.tokens), ("--max-tokens", req.max_tokens),
                        ("--max-train-flops", req.max_train_flops), ("--max-latency", req.max_latency_s)):
        check_number(flag, value)
    check_number("--params-band", req.params_band, low=1.0, inclusive=True)
    for flag, value in (("--max-layers", req.max_layers), ("--max-d-model", req.max_d_model)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{flag} {value!r}: must be a whole number >= 1")
    for flag, value in (("--batch", req.batch), ("--prompt-tokens", req.prompt_tokens),
                        ("--new-tokens", req.new_tokens), ("--vocab-size", req.vocab_size)):
        check_number(flag, value, low=1, inclusive=True)


def repeat_fit_warnings(path: Path, law: Any) -> None:
    """The warnings a saved fit was written with, repeated (one line each) wherever it is planned with."""
    for w in law.meta.get("warnings", []):
        warnings.warn(f"{path}: the fit was saved with a warning: {w}", UserWarning, stacklevel=3)


def _params_range(req: PlanRequest) -> tuple[float, float]:
    if req.params is None and (req.min_params is None or req.max_params is None):
        raise InputError("--params (or both --min-params and --max-params) is required")
    lo, hi = params_band(req.params, req.params_band) if req.params is not None else (req.min_params, req.max_params)
    lo = req.min_params if req.min_params is not None else lo
    hi = req.max_params if req.max_params is not None else hi
    if not 0 < lo <= hi:
        raise InputError(f"--min-params {lo:g} must be positive and <= --max-params {hi:g}")
    return lo, hi


def _constraints(req: PlanRequest, memory_bytes: float | None) -> Any:
    # the flags are checked here, by their names, before the library sees them (no re-wording of its errors)
    for flag, value in (("--max-latency", req.max_latency_s), ("--max-params", req.max_params),
                        ("--max-tokens", req.max_tokens), ("--max-train-flops", req.max_train_flops),
                        ("--tokens", req.tokens)):
        check_number(flag, value)
    if req.tokens is None and req.max_tokens is None and req.max_train_flops is None:
        raise InputError("give --tokens, --max-tokens or --max-train-flops (the loss needs the training tokens D)")
    return PlanConstraints(max_latency_s=req.max_latency_s, max_params=req.max_params, max_tokens=req.max_tokens,
                           max_train_flops=req.max_train_flops, n_tokens=req.tokens, max_memory_bytes=memory_bytes)


def _hardware(req: PlanRequest) -> tuple[Any, Any, Any]:
    """The latency and memory models of ``--hardware`` at the workload, and the profile (None: no hardware)."""
    from infscale.latency.io import get_profile  # lazy: scipy

    if req.hardware is None:
        if req.max_latency_s is not None and req.measured is None:
            raise InputError("--max-latency needs --hardware (a latency profile) or --measured")
        return None, None, None
    profile = get_profile(req.hardware)
    try:
        workload = Workload(batch=req.batch, input_len=req.prompt_tokens, output_len=req.new_tokens)
    except ValueError as exc:
        raise InputError(f"--batch/--prompt-tokens/--new-tokens: {exc}") from None
    return latency_from_profile(profile, workload), memory_from_workload(workload), profile


_FLAGS = {"vocab_size": "--vocab-size", "n_layers_max": "--max-layers", "d_model_max": "--max-d-model",
          "kv_heads": "--kv-heads", "ffn_multipliers": "--ffn-multipliers"}
"""A shape rule the request changes -> its flag."""


def _rules(req: PlanRequest) -> Any:
    """The family's rules with the request's caps and vocabulary applied."""

    try:
        rules = get_family(req.family)
    except InputError as exc:
        raise InputError(f"--family: {exc}") from None
    changes = {k: v for k, v in (("vocab_size", req.vocab_size), ("n_layers_max", req.max_layers),
                                 ("d_model_max", req.max_d_model), ("kv_heads", req.kv_heads),
                                 ("ffn_multipliers", req.ffn_multipliers)) if v is not None}
    for key, value in changes.items():  # each flag by its name, before the shape rules see it
        for v in value if isinstance(value, tuple | list) else (value,):
            if key == "ffn_multipliers":
                check_number(_FLAGS[key], v)
            elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{_FLAGS[key]} {v}: must be a positive integer")
    try:
        return rules.with_(**changes)
    except ValueError as exc:  # a combination the family's own bounds refuse (d_model_min above the new max, say)
        raise InputError(f"{', '.join(_FLAGS[k] for k in changes)}: the family's shape rules refuse it ({exc})") \
            from None


def search_space(rules: Any, family: str, lo: float, hi: float) -> dict[str, Any]:
    """The searched space as printed with the plan: every cap a number."""
    return {"family": family, "d_model": [rules.d_model_min, rules.d_model_max], "d_model_multiple": rules.d_model_multiple,
            "n_layers": [rules.n_layers_min, rules.n_layers_max],
            "heads": {"n_heads": list(rules.n_heads)} if rules.n_heads else {"head_dims": list(rules.head_dims)},
            "kv_heads": list(rules.kv_heads) + (["all"] if rules.include_mha and rules.kv_heads else []) or ["all"],
            "ffn": f"{rules.ffn_kind}, width " + (f"{'/'.join(f'{m:g}' for m in rules.ffn_multipliers)} x d_model"
                                                   if rules.ffn_multipliers else "by the family's rule")
                   + f" rounded to {rules.ffn_multiple}", "n_params": [lo, hi]}



def unpriced_search(req: PlanRequest, rules: Any, law: Any) -> list[str]:
    """A variable the request searches that the law has no term for: asked for with its flag, a one-line refusal
    (`InputError`); searched by the family's default, one warning line each (its choice is then free, not planned)."""
    out = []
    for field_name, what, searched in unpriced_choices(law, rules):
        if getattr(req, field_name) is not None:
            raise InputError(f"{_FLAGS[field_name]}: law {law.name!r} has no term for {what} (it predicts the same loss for every "
                             f"choice, so the fastest would win for free); fit a law that prices them, e.g. `infscale "
                             f"fit --law arch_conditional` on runs that vary them (the bundled arch_study)")
        out.append(Notice("unpriced", f"family searches {what} {list(searched)} but law {law.name!r} has no term for "
                          f"them: the recommendation's {what} are chosen for latency alone (fit arch_conditional to "
                          "price them)", quantity=what))
    return out


def cap_warnings(best: dict[str, Any], frontier: list[dict[str, Any]], rules: Any) -> list[str]:
    """One line per cap of the search space the recommendation sits on (a shape past it was not considered), and how
    many frontier rows share the depth or width cap."""
    out = []
    caps = (("n_layers", rules.n_layers_max, "most layers", "--max-layers", "deeper"),
            ("d_model", rules.d_model_max, "widest d_model", "--max-d-model", "wider"))
    for key, cap, what, flag, more in caps:
        on = sum(1 for r in frontier if int(r[key]) >= cap)
        if int(best[key]) >= cap:
            out.append(f"cap: the recommendation has {key} = {cap}, the family's {what} ({flag}): {more} shapes were "
                       f"not considered" + (f"; {on} of the {len(frontier)} frontier rows sit on it too" if on else ""))
        elif on:
            out.append(f"cap: {on} of the {len(frontier)} frontier rows sit on {key} = {cap} ({flag})")
    if int(best["d_model"]) <= rules.d_model_min:
        out.append(f"cap: the recommendation has d_model = {rules.d_model_min}, the family's narrowest: narrower "
                   "shapes were not considered")
    if rules.kv_heads and int(best["n_kv_heads"]) <= min(rules.kv_heads):
        out.append(f"cap: the recommendation has {best['n_kv_heads']} KV heads, the fewest searched: fewer were not "
                   "considered")
    if len(set(rules.ffn_multipliers)) > 1:
        ffn = float(best["d_ff"]) / float(best["d_model"])
        for end, value in (("narrowest", min(rules.ffn_multipliers)), ("widest", max(rules.ffn_multipliers))):
            if abs(ffn - value) <= max(rules.ffn_multiple / float(best["d_model"]), 1e-9):
                out.append(f"cap: the recommendation's FFN width ({best['d_ff']} = {ffn:.3g} x d_model) is the "
                           f"{end} searched (--ffn-multipliers): {'narrower' if end == 'narrowest' else 'wider'} "
                           "FFNs were not considered")
    return out


def _grid(req: PlanRequest, lo: float, hi: float) -> tuple[Any, dict[str, int], Any]:
    rules = _rules(req)
    grid = enumerate_shapes(rules, lo, hi)
    if len(grid) == 0:
        every = enumerate_shapes(rules, 1.0, 1e30)
        span = f"N from {every.n_params.min():.3g} to {every.n_params.max():.3g}" if len(every) else "no shape at all"
        raise InputError(f"no candidate shapes: family {req.family!r} (d_model {rules.d_model_min}-{rules.d_model_max}, "
                         f"n_layers {rules.n_layers_min}-{rules.n_layers_max}) gives {span}, none within N "
                         f"[{lo:.3g}, {hi:.3g}]: raise --max-d-model / --max-layers or change --params")
    if not req.baselines:
        return grid, {}, rules
    try:
        shapes = {name: get_preset(name) for name in req.baselines}
    except InputError as exc:
        raise InputError(f"--baseline: {exc}") from None
    kind = (grid.vocab_size, grid.tied_embeddings, grid.ffn_kind)
    same = {n: s for n, s in shapes.items() if (s.vocab_size, s.tied_embeddings, s.ffn_kind) == kind}
    if same:
        grid = grid.concat(ShapeGrid.from_shapes(same.values()))
    return grid, {name: (grid.find(s) if name in same else ShapeGrid.from_shapes([s])) for name, s in
                  shapes.items()}, rules


def run_plan(req: PlanRequest) -> PlanReport:
    """Validate ``req``, plan, write the files; `InputError`/`InfeasibleError` name what is wrong."""
    from infscale.latency.io import load_measured  # lazy: scipy
    from infscale.laws.io import load_fit  # lazy: pandas

    _check_numbers(req)
    check_output_dir(req.out)
    fitted = load_fit(req.law)
    repeat_fit_warnings(req.law, fitted)
    lo, hi = _params_range(req)
    latency_fn, memory_fn, profile = _hardware(req)
    constraints = _constraints(req, None if profile is None else profile.memory_bytes)
    measured = (load_measured(req.measured, (req.batch, req.prompt_tokens, req.new_tokens))
                if req.measured is not None else None)
    grid, baselines, rules = _grid(req, lo, hi)
    unpriced = unpriced_search(req, rules, fitted)
    try:
        result = plan_shapes(grid, loss_from_law(fitted), constraints, latency_fn, measured=measured,
                             memory_fn=memory_fn)
    except ValueError as exc:
        if type(exc) is ValueError:
            raise InputError(f"{req.law}: {exc}") from None
        raise
    best = result.row(result.best)
    best_n = float(best["n_params"])
    end = "top" if best_n >= hi / 1.05 else "bottom" if best_n <= lo * 1.05 else None  # 5%: the grid is discrete
    bound = [] if end is None else [Notice(
        "search bound", f"the best shape (N={best_n:.3g}) sits at the {end} of the searched size range "
        f"[{lo:.3g}, {hi:.3g}]: a {'larger' if end == 'top' else 'smaller'} model was not considered; widen "
        "--params-band or --min-params/--max-params to know whether it is the optimum", quantity="N", value=best_n,
        range=(lo, hi))]
    verdicts = {name: baseline_verdict(result, i) if isinstance(i, int) else foreign_baseline_verdict(
        result, i, loss_from_law(fitted), latency_fn, memory_fn, measured) for name, i in baselines.items()}
    shape_aware = fitted.law.needs_aspect_ratio
    arch_terms = law_arch_terms(fitted)
    latency_profile = profile if req.measured is None else None  # measured latencies need no calibration
    for v in verdicts.values():
        v["warnings"] = point_warnings(fitted.meta, v, shape_aware=shape_aware, profile=latency_profile,
                                       arch=arch_terms)
    baselines = {name: i for name, i in baselines.items() if isinstance(i, int)}  # drawn on the candidates' plot
    report = PlanReport(request=req, params_range=(lo, hi), n_candidates=len(grid),
                        n_feasible=int(result.feasible.sum()), best=best, baselines=verdicts,
                        frontier=[result.row(int(i)) for i in result.frontier], result=result,
                        warnings=point_warnings(fitted.meta, best, shape_aware=shape_aware, profile=latency_profile,
                                                arch=arch_terms),
                        search_space=search_space(rules, req.family, lo, hi))
    report.warnings.extend(bound + unpriced + cap_warnings(best, report.frontier, rules))
    files = {"plan_json": str(write_text(req.out / "plan.json", json.dumps(report.to_dict(), indent=2))),
             "frontier_csv": write_csv(req.out / "frontier.csv", report.frontier)}
    if req.hardware is not None or req.measured is not None:
        files["frontier_png"] = str(plot_frontier(result, req.out / "frontier.png", baselines=baselines))
    report.files.update(files)
    return report


# ----- infscale lifetime --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class LifetimeReport:
    """Sardana et al.: the lifetime-optimal model and the Chinchilla-optimal one at the same loss, with their costs."""

    optimal: Any
    chinchilla: Any
    chinchilla_cost: float
    prefill_tokens: float
    decode_tokens: float
    warnings: list[str] = field(default_factory=list)
    """Where the lifetime-optimal model leaves the law's fitted range (`infscale.extrapolation`)."""

    @property
    def saving(self) -> float:
        return 1.0 - self.optimal.cost / self.chinchilla_cost

    def to_dict(self) -> dict[str, Any]:
        return {"optimal": self.optimal.to_dict(), "chinchilla_optimal": self.chinchilla.to_dict(),
                "chinchilla_lifetime_cost": self.chinchilla_cost, "saving": self.saving,
                "warnings": list(self.warnings)}


def run_lifetime(law: Path, *, loss_target: float | None, budget: float | None, prefill_tokens: float,
                 decode_tokens: float, aspect_ratio: float | None, cost: Any) -> LifetimeReport:
    """The N and D_train minimising training + inference cost for ``loss_target`` (or the lowest loss for
    ``budget``), and the Chinchilla-optimal model at the same loss for comparison."""
    from infscale.laws.io import load_fit  # lazy: pandas

    if (loss_target is None) == (budget is None):
        raise InputError("give exactly one of --loss-target and --budget")
    check_number("--loss-target", loss_target)
    check_number("--budget", budget)
    check_number("--prefill-tokens", prefill_tokens, inclusive=True)
    check_number("--decode-tokens", decode_tokens, inclusive=True)
    check_number("--aspect-ratio", aspect_ratio)
    fitted = load_fit(law)
    refuse_architecture_law(fitted, law)
    repeat_fit_warnings(law, fitted)
    loss_fn = loss_from_law(fitted)
    kwargs = dict(prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, cost=cost, aspect_ratio=aspect_ratio)
    try:
        if loss_target is not None:
            plan = lifetime_optimal(loss_fn, loss_target, **kwargs)
        else:
            plan = lowest_loss_for_budget(loss_fn, budget, **kwargs)
        chinchilla = lifetime_optimal(loss_fn, plan.loss, cost=cost, aspect_ratio=aspect_ratio)
    except ValueError as exc:
        if type(exc) is ValueError:
            raise InputError(f"{exc} (shape-aware laws need --aspect-ratio)" if "aspect" in str(exc) else str(exc)) \
                from None
        raise
    bound = [] if plan.at_bound is None else [Notice(
        "search bound", f"the lifetime search ended on its {plan.at_bound} bound (N={plan.n_params:.3g}): this is "
        "the best size searched, not an optimum; the law keeps improving beyond it", quantity="N",
        value=plan.n_params)]
    chin_cost = float(lifetime_cost(chinchilla.n_params, chinchilla.train_tokens, prefill_tokens=prefill_tokens,
                                    decode_tokens=decode_tokens, cost=cost))
    flags = law_warnings(fitted.meta, n_params=plan.n_params, n_tokens=plan.train_tokens, loss=plan.loss,
                         aspect_ratio=aspect_ratio if fitted.law.needs_aspect_ratio else None)
    return LifetimeReport(optimal=plan, chinchilla=chinchilla, chinchilla_cost=chin_cost,
                          prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, warnings=bound + flags)
