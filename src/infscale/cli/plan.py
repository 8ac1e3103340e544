"""`infscale plan` (shape, N and D under latency/parameter/token/FLOP budgets), `infscale lifetime` (Sardana lifetime
cost) and `infscale select` (seed A's model-selection workflow through the trainer). Thin: parse, call infscale.plan,
print, write files. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _load_law(path: Path):
    from infscale.errors import InputError
    from infscale.laws import load_fit

    if not path.exists():
        raise InputError(f"{path}: law file not found (write one with `infscale fit ... --save FIT.json`)")
    try:
        return load_fit(path)
    except InputError:
        raise
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a fitted law: {exc}") from None


def _load_measured(path: Path, workload: tuple[int, int, int] | None = None) -> dict[tuple[int, int, int, int], float]:
    """Measured latencies per shape ``(d_model, n_layers, n_heads, n_kv_heads)``: a CSV with d_model, n_layers,
    n_heads, latency_s (optional n_kv_heads), or the JSONL records of `infscale latency measure` (``total_s`` of the
    records whose workload is ``(batch, input_len, output_len)``)."""
    import csv

    from infscale.errors import InputError

    if not path.exists():
        raise InputError(f"{path}: measured-latency file not found")
    if path.suffix == ".jsonl":
        from infscale.latency.io import latest_records, read_records

        found: dict[tuple[int, int, int, int], float] = {}
        for no, rec in enumerate(latest_records(read_records(path)), start=1):
            try:
                shape, wl = rec["shape"], rec["workload"]
                if workload is not None and (wl["batch"], wl["input_len"], wl["output_len"]) != workload:
                    continue
                heads = int(shape["n_heads"])
                kv = int(shape["n_kv_heads"]) if shape.get("n_kv_heads") else heads
                found[(int(shape["d_model"]), int(shape["n_layers"]), heads, kv)] = float(rec["total_s"])
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{path}: record {no}: needs shape, workload and total_s fields") from None
        return found
    out: dict[tuple[int, int, int, int], float] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"d_model", "n_layers", "n_heads", "latency_s"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row_no, row in enumerate(reader, start=2):
            try:
                d, layers, heads = int(row["d_model"]), int(row["n_layers"]), int(row["n_heads"])
                kv = int(row["n_kv_heads"]) if row.get("n_kv_heads") else heads
                lat = float(row["latency_s"])
            except (TypeError, ValueError):
                raise InputError(f"{path}: row {row_no}: d_model/n_layers/n_heads/n_kv_heads must be integers and "
                                 "latency_s a number") from None
            if not lat > 0:
                raise InputError(f"{path}: row {row_no}: field latency_s must be positive, got {lat}")
            out[(d, layers, heads, kv)] = lat
    return out


def plan_command(
    law: Path = typer.Option(..., "--law", help="Fitted law (JSON written by `infscale fit --save`)."),
    hardware: str = typer.Option(None, "--hardware", help="Hardware profile name for predicted latency."),
    params: float = typer.Option(None, "--params", help="Nominal size; candidates span [params/band, params*band]."),
    params_band: float = typer.Option(2.0, "--params-band", help="Width factor of the size class around --params."),
    min_params: float = typer.Option(None, "--min-params", help="Smallest N enumerated (overrides the band)."),
    max_params: float = typer.Option(None, "--max-params", help="N_C: most parameters (overrides the band)."),
    tokens: float = typer.Option(None, "--tokens", help="Training tokens D for every shape."),
    max_tokens: float = typer.Option(None, "--max-tokens", help="D_C: most training tokens."),
    max_train_flops: float = typer.Option(None, "--max-train-flops", help="C: most training FLOPs (6ND)."),
    max_latency: float = typer.Option(None, "--max-latency", help="T: latency limit per request, seconds."),
    family: str = typer.Option("seed-a", "--family", help="Shape family: seed-a | llama | gpt."),
    vocab_size: int = typer.Option(None, "--vocab-size", help="Vocabulary size (default: the family's)."),
    batch_size: int = typer.Option(1, "--batch", help="Sequences per request."),
    prompt_tokens: int = typer.Option(128, "--prompt-tokens", help="Input tokens per sequence."),
    new_tokens: int = typer.Option(256, "--new-tokens", help="Generated tokens per sequence."),
    measured: Path = typer.Option(None, "--measured",
                                  help="Measured latencies overriding predictions: CSV, or `infscale latency` JSONL."),
    baseline: list[str] = typer.Option([], "--baseline", help="Preset shape to place on the frontier (repeatable)."),
    out: Path = typer.Option(Path("plan_out"), "--out", help="Directory for plan.json, frontier.csv, frontier.png."),
    top: int = typer.Option(12, "--top", help="Frontier rows to print."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Recommend the shape, N and D with the lowest predicted loss under the budgets; print and plot the frontier."""
    import numpy as np

    from infscale.arch import get_preset
    from infscale.errors import InputError
    from infscale.plan import (
        PlanConstraints,
        ShapeGrid,
        enumerate_shapes,
        get_family,
        latency_from_profile,
        loss_from_law,
        plan_shapes,
    )
    from infscale.plan import (
        params_band as band,
    )

    fitted = _load_law(law)
    try:
        rules = get_family(family)
        if vocab_size is not None:
            rules = rules.with_(vocab_size=vocab_size)
    except KeyError as exc:
        raise InputError(f"--family: {exc.args[0]}") from None
    except ValueError as exc:
        raise InputError(f"--vocab-size: {exc}") from None
    if params is None and (min_params is None or max_params is None):
        raise InputError("--params (or both --min-params and --max-params) is required")
    lo, hi = band(params, params_band) if params is not None else (min_params, max_params)
    lo = min_params if min_params is not None else lo
    hi = max_params if max_params is not None else hi
    if not 0 < lo <= hi:
        raise InputError(f"--min-params {lo:g} must be positive and <= --max-params {hi:g}")
    try:
        constraints = PlanConstraints(max_latency_s=max_latency, max_params=max_params, max_tokens=max_tokens,
                                      max_train_flops=max_train_flops, n_tokens=tokens)
    except ValueError as exc:
        msg = str(exc).replace("PlanConstraints: ", "").replace("PlanConstraints.", "--")
        if "give n_tokens" in msg:
            msg = "give --tokens, --max-tokens or --max-train-flops (the loss needs the training tokens D)"
        raise InputError(msg) from None
    grid = enumerate_shapes(rules, lo, hi)
    baselines: dict[str, int] = {}
    if baseline:
        try:
            shapes = {name: get_preset(name) for name in baseline}
        except KeyError as exc:
            raise InputError(f"--baseline: {exc.args[0]}") from None
        grid = grid.concat(ShapeGrid.from_shapes(shapes.values()))
        baselines = {name: grid.find(s) for name, s in shapes.items()}
    latency_fn = None
    if hardware is not None:
        from infscale.latency.io import get_profile
        from infscale.latency.model import Workload

        profile = get_profile(hardware)
        try:
            workload = Workload(batch=batch_size, input_len=prompt_tokens, output_len=new_tokens)
            latency_fn = latency_from_profile(profile, workload)
        except ValueError as exc:
            raise InputError(f"--batch/--prompt-tokens/--new-tokens: {exc}") from None
    elif max_latency is not None and measured is None:
        raise InputError("--max-latency needs --hardware (a latency profile) or --measured")
    measured_map = (_load_measured(measured, (batch_size, prompt_tokens, new_tokens)) if measured is not None
                    else None)
    try:
        result = plan_shapes(grid, loss_from_law(fitted), constraints, latency_fn, measured=measured_map)
    except ValueError as exc:
        if type(exc) is ValueError:
            raise InputError(f"{law}: {exc}") from None
        raise

    best = result.row(result.best)
    base_rows = {}
    for name, i in baselines.items():
        row = result.row(i)
        doms = result.dominators(i)
        row["dominated"] = bool(doms.size)
        row["n_dominating"] = int(doms.size)
        if doms.size:
            # the fastest dominating shape (ties: lowest loss) and the dominating shape with the lowest loss
            fastest = int(doms[np.lexsort((result.loss[doms], result.latency_s[doms]))[0]])
            row["dominated_by"] = grid.label(fastest)
            row["dominated_by_latency_s"] = float(result.latency_s[fastest])
            row["dominated_by_loss"] = float(result.loss[fastest])
            row["best_dominating"] = grid.label(int(doms[np.argmin(result.loss[doms])]))
        base_rows[name] = row
    frontier = [result.row(int(i)) for i in result.frontier]
    out.mkdir(parents=True, exist_ok=True)
    payload = {"law": str(law), "hardware": hardware, "family": family, "params_range": [lo, hi],
               "constraints": {k: getattr(constraints, k) for k in constraints.__dataclass_fields__},
               "workload": {"batch_size": batch_size, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens},
               "n_candidates": len(grid), "n_feasible": int(result.feasible.sum()), "best": best,
               "baselines": base_rows, "frontier": frontier}
    (out / "plan.json").write_text(json.dumps(payload, indent=2))
    _write_csv(out / "frontier.csv", frontier)
    png = None
    if hardware is not None or measured is not None:
        from infscale.report.plan_plot import plot_frontier

        png = plot_frontier(result, out / "frontier.png", baselines=baselines)
    if as_json:
        print(json.dumps(payload, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    latency_txt = "n/a" if best["latency_s"] is None else f"{best['latency_s']:.3f}s"
    console.print(f"[bold]Recommended[/bold] {best['label']}  N={_fmt(best['n_params'])}  D={_fmt(best['n_tokens'])}  "
                  f"d_ff={best['d_ff']}  loss={best['loss']:.4f}  latency={latency_txt}  "
                  f"({result.feasible.sum()} of {len(grid)} candidates feasible)")
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
    for name, r in base_rows.items():
        verdict = (f"dominated by {r['n_dominating']} shapes, e.g. {r['dominated_by']} (loss "
                   f"{r['dominated_by_loss']:.4f}, {r['dominated_by_latency_s']:.3f}s)" if r["dominated"]
                   else "no latency to compare" if r["latency_s"] is None
                   else "on the frontier" if r["on_frontier"] else "undominated (outside the budgets)")
        lat = "n/a" if r["latency_s"] is None else f"{r['latency_s']:.3f}s"
        console.print(f"baseline {name} ({r['label']}): loss={r['loss']:.4f} latency={lat} -> {verdict}")
    console.print(f"wrote {out / 'plan.json'}, {out / 'frontier.csv'}" + (f", {png}" if png else ""))


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
    from infscale.errors import InputError
    from infscale.plan import CostModel, lifetime_optimal, lowest_loss_for_budget

    if (loss_target is None) == (budget is None):
        raise InputError("give exactly one of --loss-target and --budget")
    fitted = _load_law(law)
    from infscale.plan import loss_from_law

    try:
        cost = (CostModel() if usd_per_hour is None else
                CostModel(usd_per_hour=usd_per_hour, peak_flops=peak_flops, util_train=util_train,
                          util_prefill=util_prefill, util_decode=util_decode))
        kwargs = dict(prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, cost=cost, aspect_ratio=aspect_ratio)
        loss_fn = loss_from_law(fitted)
        if loss_target is not None:
            plan = lifetime_optimal(loss_fn, loss_target, **kwargs)
            chinchilla = lifetime_optimal(loss_fn, loss_target, cost=cost, aspect_ratio=aspect_ratio)
        else:
            plan = lowest_loss_for_budget(loss_fn, budget, **kwargs)
            chinchilla = lifetime_optimal(loss_fn, plan.loss, cost=cost, aspect_ratio=aspect_ratio)
    except ValueError as exc:
        if type(exc) is ValueError:
            raise InputError(f"{exc} (shape-aware laws need --aspect-ratio)" if "aspect" in str(exc) else str(exc)) \
                from None
        raise
    from infscale.plan import lifetime_cost

    chin_cost = float(lifetime_cost(chinchilla.n_params, chinchilla.train_tokens, prefill_tokens=prefill_tokens,
                                    decode_tokens=decode_tokens, cost=cost))
    payload = {"optimal": plan.to_dict(), "chinchilla_optimal": chinchilla.to_dict(),
               "chinchilla_lifetime_cost": chin_cost, "saving": 1.0 - plan.cost / chin_cost}
    if as_json:
        print(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Lifetime-optimal model ({plan.unit})")
    for col in ("", "N", "D_train", "D/N", "loss", "train FLOPs", "inference FLOPs", f"lifetime {plan.unit}"):
        table.add_column(col, justify="right")
    for name, p, c in (("lifetime-optimal", plan, plan.cost), ("Chinchilla-optimal", chinchilla, chin_cost)):
        table.add_row(name, _fmt(p.n_params), _fmt(p.train_tokens), f"{p.tokens_per_param:.1f}", f"{p.loss:.4f}",
                      _fmt(p.train_flops), _fmt(2.0 * p.n_params * (prefill_tokens + decode_tokens)), _fmt(c))
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(f"saving vs Chinchilla-optimal at equal loss: {100 * payload['saving']:.1f}%")


def select_command(
    config: str = typer.Argument(..., help="Selection config (YAML) or a bundled recipe name, e.g. select_micro."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: select_out/<config name>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Seed A's model selection: rank candidates by predicted loss under the latency limit, train the top k, choose.

    Re-running the same command resumes: finished runs are read from records.jsonl, a half-finished run from its
    checkpoint.
    """
    import yaml

    from infscale.cli.train import _resolve
    from infscale.errors import InputError
    from infscale.latency.io import get_profile
    from infscale.laws import FittedLaw
    from infscale.workflows.select import LawSpec, parse_select, run_selection

    config = _resolve(config)
    if not config.exists():
        raise InputError(f"config {config}: no such file")
    try:
        data = yaml.safe_load(config.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"config {config}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"config {config}: expected a mapping at the top level")
    cfg = parse_select(data, str(config))
    if isinstance(cfg.law, LawSpec):
        try:
            law = FittedLaw.from_dict(cfg.law.law, cfg.law.params, {"source": str(config)})
        except (KeyError, ValueError) as exc:
            raise InputError(f"config {config}: field law: {exc}") from None
    else:
        law = _load_law((config.parent / cfg.law) if not Path(cfg.law).is_absolute() else Path(cfg.law))
    measured = None
    if cfg.measured is not None:
        measured = _load_measured(config.parent / cfg.measured if not Path(cfg.measured).is_absolute()
                                  else Path(cfg.measured))
    out = out or Path("select_out") / config.stem
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    report = run_selection(cfg, out, law=law, profile=get_profile(cfg.hardware), measured=measured,
                           source=str(config))
    if as_json:
        from infscale.jsonsafe import finite

        print(json.dumps(finite(report.to_dict()), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

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
    console = Console(width=max(Console().width, 110 + 18 * len(metrics)))
    console.print(table)
    c = report.chosen
    by = (f"val loss {c['achieved_loss']:.4f}" if report.choose_by == "val_loss"
          else f"{report.choose_by} {c['downstream'][report.choose_by]:.4f}, val loss {c['achieved_loss']:.4f}")
    rhos = ", ".join([f"val loss {report.spearman:.3f}"] + [f"{m} {v:.3f}" for m, v in report.spearman_downstream.items()])
    console.print(f"chosen by {report.choose_by}: {c['run_id']} ({by})")
    console.print(f"Spearman predicted vs achieved order: {rhos}; wrote {out / 'report.json'}")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
    app.command("lifetime")(lifetime_command)
    app.command("select")(select_command)
