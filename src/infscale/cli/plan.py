"""`infscale plan` (shape, N and D under latency/parameter/token/FLOP budgets), `infscale lifetime` (Sardana lifetime
cost) and `infscale select` (Bian et al.'s model-selection workflow through the trainer). Thin: parse, call infscale.plan,
print, write files. Heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import brief_warnings, emit_json, print_warnings
from infscale.cli.output import console as cli_console
from infscale.errors import InputError


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def plan_command(
    law: Path = typer.Option(..., "--law", help="Fitted law (JSON written by `infscale fit --save`)."),
    hardware: str = typer.Option(None, "--hardware", help="Hardware profile name for predicted latency."),
    params: float = typer.Option(None, "--params", help="Nominal size; candidates span params/band to params*band."),
    params_band: float = typer.Option(2.0, "--params-band", help="Width factor of the size class around --params."),
    min_params: float = typer.Option(None, "--min-params", help="Smallest N enumerated (overrides the band)."),
    max_params: float = typer.Option(None, "--max-params", help="N_C: most parameters (overrides the band)."),
    tokens: float = typer.Option(None, "--tokens", help="Training tokens D for every shape."),
    max_tokens: float = typer.Option(None, "--max-tokens", help="D_C: most training tokens."),
    max_train_flops: float = typer.Option(None, "--max-train-flops", help="C: most training FLOPs (6ND)."),
    max_latency: float = typer.Option(None, "--max-latency", help="T: latency limit per request, seconds."),
    family: str = typer.Option("bian2025", "--family", help="Shape family: bian2025 | llama | gpt."),
    max_layers: int = typer.Option(None, "--max-layers", help="Depth cap (default: the family's; printed)."),
    max_d_model: int = typer.Option(None, "--max-d-model", help="Width cap (default: the family's; printed)."),
    kv_heads: str = typer.Option(None, "--kv-heads", help="KV-head counts to search, e.g. 1,2,4,8 (default: the "
                                 "family's); needs a law that prices them (arch_conditional)."),
    ffn_multipliers: str = typer.Option(None, "--ffn-multipliers", help="FFN widths to search as multiples of "
                                        "d_model, e.g. 1.5,2.67,4,5.33 (default: the family's rule); needs a law "
                                        "with an FFN term (arch_conditional, bian2025b)."),
    vocab_size: int = typer.Option(None, "--vocab-size", help="Vocabulary size (default: the family's)."),
    batch_size: int = typer.Option(1, "--batch", help="Sequences per request."),
    prompt_tokens: int = typer.Option(128, "--prompt-tokens", help="Input tokens per sequence."),
    new_tokens: int = typer.Option(256, "--new-tokens", help="Generated tokens per sequence."),
    measured: Path = typer.Option(None, "--measured",
                                  help="Measured latencies overriding predictions: CSV, or `infscale latency` JSONL."),
    baseline: list[str] = typer.Option([], "--baseline", help="Preset shape to place on the frontier (repeatable)."),
    out: Path = typer.Option(None, "--out", help="Directory for plan.json, frontier.csv, frontier.png (default: infscale-out/plan-<UTC time>)."),
    top: int = typer.Option(12, "--top", help="Frontier rows to print."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Recommend the shape, N and D with the lowest predicted loss under the budgets; print and plot the frontier."""
    from infscale.configio import check_number, default_out  # lazy: pydantic
    from infscale.workflows.plan import PlanRequest, run_plan  # lazy: numpy, pydantic

    check_number("--top", top, inclusive=True)

    report = run_plan(PlanRequest(
        law=law, hardware=hardware, params=params, params_band=params_band, min_params=min_params,
        max_params=max_params, tokens=tokens, max_tokens=max_tokens, max_train_flops=max_train_flops,
        max_latency_s=max_latency, family=family, max_layers=max_layers, max_d_model=max_d_model,
        kv_heads=_numbers("--kv-heads", kv_heads, int), ffn_multipliers=_numbers("--ffn-multipliers", ffn_multipliers,
                                                                               float),
        vocab_size=vocab_size, batch=batch_size,
        prompt_tokens=prompt_tokens, new_tokens=new_tokens, measured=measured, baselines=tuple(baseline),
        out=out or default_out("plan")))
    if as_json:
        emit_json(report.to_dict())
        return
    _print_plan(report, top)


def _numbers(flag: str, text: str | None, kind: type) -> tuple | None:
    """``"1,2,4"`` -> (1, 2, 4); a bad entry is one line naming the flag."""

    if text is None:
        return None
    out = []
    for part in text.split(","):
        try:
            value = kind(part.strip())
        except ValueError:
            raise InputError(f"{flag} {text!r}: {part.strip()!r} is not a {'whole number' if kind is int else 'number'}"
                             ) from None
        if not value > 0:
            raise InputError(f"{flag} {text!r}: every entry must be positive")
        out.append(value)
    return tuple(out)


def _print_plan(report, top: int) -> None:
    import numpy as np  # lazy: numpy

    result, best = report.result, report.best
    console = cli_console()
    latency_txt = "n/a" if best["latency_s"] is None else f"{best['latency_s']:.3f}s"
    console.print(f"[bold]Recommended[/bold] {best['label']}  N={_fmt(best['n_params'])}  D={_fmt(best['n_tokens'])}  "
                  f"d_ff={best['d_ff']}  loss={best['loss']:.4f}  latency={latency_txt}  "
                  f"({report.n_feasible} of {report.n_candidates} candidates feasible)")
    sp = report.search_space
    console.print(f"search space: family {sp['family']}, d_model {sp['d_model'][0]}-{sp['d_model'][1]} "
                  f"(x{sp['d_model_multiple']}), n_layers {sp['n_layers'][0]}-{sp['n_layers'][1]}, heads "
                  f"{sp['heads']}, KV heads {sp['kv_heads']}, FFN {sp['ffn']}, N {_fmt(sp['n_params'][0])}-"
                  f"{_fmt(sp['n_params'][1])}")
    print_warnings(report.warnings)
    table = Table(title="Loss-vs-latency frontier (admissible shapes)")
    for col in ("shape", "N", "D", "R", "loss", "latency s", ""):
        table.add_column(col, justify="right")
    show = result.frontier
    if len(show) > top:  # keep the rows around the optimum
        k = int(np.flatnonzero(show == result.best)[0]) if result.best in show else len(show) // 2
        start = min(max(k - top // 2, 0), len(show) - top)
        show = show[start:start + top]
    for i in show:
        r = result.row(int(i))
        mark = "optimum" if int(i) == result.best else ("" if r["feasible"] else "over limit")
        table.add_row(r["label"], _fmt(r["n_params"]), _fmt(r["n_tokens"]), f"{r['aspect_ratio']:.0f}",
                      f"{r['loss']:.4f}", f"{r['latency_s']:.3f}", mark)
    if len(result.frontier):
        console.print(table)
    else:
        console.print("no frontier: no latency model (give --hardware or --measured)")
    for name, r in report.baselines.items():
        verdict = (f"dominated by {r['n_dominating']} shapes, e.g. {r['dominated_by']} (loss "
                   f"{r['dominated_by_loss']:.4f}, {r['dominated_by_latency_s']:.3f}s)" if r["dominated"]
                   else "no latency to compare" if r["latency_s"] is None
                   else "on the frontier" if r["on_frontier"] else "undominated (outside the budgets)")
        lat = "n/a" if r["latency_s"] is None else f"{r['latency_s']:.3f}s"
        console.print(f"baseline {name} ({r['label']}): loss={r['loss']:.4f} latency={lat} -> {verdict}")
        if r["warnings"]:
            print_warnings([f"{brief_warnings(r['warnings'])} (plan.json: baselines.{name}.warnings)"])
    console.print("wrote " + ", ".join(report.files.values()))


def lifetime_command(
    law: Path = typer.Option(..., "--law", help="Fitted law (JSON written by `infscale fit --save`)."),
    loss_target: float = typer.Option(None, "--loss-target", help="Loss the model must reach (forward problem)."),
    budget: float = typer.Option(None, "--budget", help="Lifetime budget in FLOPs or USD (inverse problem)."),
    prefill_tokens: float = typer.Option(0.0, "--prefill-tokens", help="Lifetime prompt tokens served."),
    decode_tokens: float = typer.Option(0.0, "--decode-tokens", help="Lifetime generated tokens served."),
    aspect_ratio: float = typer.Option(None, "--aspect-ratio", help="R = d_model/n_layers (shape-aware laws)."),
    usd_per_hour: float = typer.Option(None, "--usd-per-hour", help="Accelerator price; omit to count FLOPs."),
    peak_flops: float = typer.Option(312e12, "--peak-flops", help="Accelerator peak FLOP/s (dollar costing)."),
    util_train: float = typer.Option(0.5, "--util-train", help="Training utilisation (dollar costing)."),
    util_prefill: float = typer.Option(0.5, "--util-prefill", help="Prefill utilisation (dollar costing)."),
    util_decode: float = typer.Option(0.05, "--util-decode", help="Decode utilisation (dollar costing)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sardana et al.: the N and D_train minimising training + inference cost for a loss target (or the inverse)."""
    from infscale.configio import check_number  # lazy: pydantic
    from infscale.plan import CostModel  # lazy: numpy
    from infscale.workflows.plan import run_lifetime  # lazy: numpy, pydantic

    check_number("--usd-per-hour", usd_per_hour)
    check_number("--peak-flops", peak_flops)
    for flag, util in (("--util-train", util_train), ("--util-prefill", util_prefill), ("--util-decode", util_decode)):
        check_number(flag, util, high=1.0)
    try:
        cost = (CostModel() if usd_per_hour is None else
                CostModel(usd_per_hour=usd_per_hour, peak_flops=peak_flops, util_train=util_train,
                          util_prefill=util_prefill, util_decode=util_decode))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    report = run_lifetime(law, loss_target=loss_target, budget=budget, prefill_tokens=prefill_tokens,
                          decode_tokens=decode_tokens, aspect_ratio=aspect_ratio, cost=cost)
    if as_json:
        emit_json(report.to_dict())
        return
    _print_lifetime(report)


def _print_lifetime(report) -> None:
    plan, chinchilla = report.optimal, report.chinchilla
    served = report.prefill_tokens + report.decode_tokens
    table = Table(title=f"Lifetime-optimal model ({plan.unit})")
    for col in ("", "N", "D_train", "D/N", "loss", "train FLOPs", "inference FLOPs", f"lifetime {plan.unit}"):
        table.add_column(col, justify="right")
    for name, p, c in (("lifetime-optimal", plan, plan.cost), ("Chinchilla-optimal", chinchilla,
                                                                 report.chinchilla_cost)):
        table.add_row(name, _fmt(p.n_params), _fmt(p.train_tokens), f"{p.tokens_per_param:.1f}", f"{p.loss:.4f}",
                      _fmt(p.train_flops), _fmt(2.0 * p.n_params * served), _fmt(c))
    console = cli_console()
    console.print(table)
    saving = round(100 * report.saving, 1) + 0.0  # + 0.0: a rounded -0.0 prints as 0.0
    console.print(f"saving vs Chinchilla-optimal at equal loss: {saving:.1f}%")
    print_warnings(report.warnings)


def select_command(
    config: str = typer.Argument(..., help="Selection config (YAML) or a bundled recipe name, e.g. select_micro."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: infscale-out/select-<config name>, so the same command resumes)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Bian et al.'s model selection: rank candidates by predicted loss under the latency limit, train the top k, choose.

    Re-running the same command resumes: finished runs are read from records.jsonl, a half-finished run from its
    checkpoint.
    """
    from infscale.workflows.select import select_from_file  # lazy: numpy, pandas, pydantic

    report, out = select_from_file(config, out)
    if as_json:
        emit_json(report.to_dict())
        return
    _print_selection(report, out)


def _print_selection(report, out: Path) -> None:
    table = Table(title=f"Model selection: {report.n_feasible} of {report.n_candidates} candidates under the limit, "
                        f"top {len(report.runs)} trained")
    metrics = list(report.spearman_downstream)
    for col in ("rank", "shape", "N", "D", "pred. loss", "pred. latency s", "val loss", "achieved rank", *metrics):
        table.add_column(col, justify="right")
    for r in report.runs:
        mark = " *" if r["run_id"] == report.chosen["run_id"] else ""
        table.add_row(str(r["rank"]), f"d{r['d_model']}x{r['n_layers']} h{r['n_heads']}{mark}", _fmt(r["n_params"]),
                      _fmt(r["n_tokens"]), f"{r['predicted_loss']:.4f}", f"{r['predicted_latency_s']:.4f}",
                      f"{r['achieved_loss']:.4f}", str(r["achieved_rank"]),
                      *(f"{r['downstream'][m]:.4f} ({r['downstream_rank'][m]})" for m in metrics))
    console = cli_console()
    console.print(table)
    c = report.chosen
    by = (f"val loss {c['achieved_loss']:.4f}" if report.choose_by == "val_loss"
          else f"{report.choose_by} {c['downstream'][report.choose_by]:.4f}, val loss {c['achieved_loss']:.4f}")
    rhos = ", ".join([f"val loss {report.spearman:.3f}"] + [f"{m} {v:.3f}" for m, v in report.spearman_downstream.items()])
    print_warnings(report.warnings)
    console.print(f"chosen by {report.choose_by}: {c['run_id']} ({by})")
    console.print(f"Spearman predicted vs achieved order: {rhos}; wrote {out / 'report.json'}")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
    app.command("lifetime")(lifetime_command)
    app.command("select")(select_command)
