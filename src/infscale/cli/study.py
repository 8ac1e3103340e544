"""`infscale study [CONFIG]`: the shape study on this machine (train, time, fit own laws, validate on the held-out
size, verify the plan). Thin: the work is `infscale.workflows.shape_study.run_study`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json, print_warnings


def study(
    config: str = typer.Argument("shape_study", help="Study YAML, or a bundled recipe name (default shape_study)."),
    out: Path = typer.Option(None, "--out", "-o", help="Study directory (default infscale-out/study-<config "
                             "name>[-quick], so the same command resumes)."),
    quick: bool = typer.Option(False, "--quick", help="The config's quick block: three tiny sizes, minutes."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of tables."),
) -> None:
    """Train the study's sizes x shapes, time them, fit and validate own laws, verify the plan they make."""

    from infscale.workflows.shape_study import study_from_file  # lazy: numpy, pydantic

    err = cli_console(stderr=True)
    t0 = time.perf_counter()

    def say(step: str, message: str) -> None:
        err.print(f"[dim]{time.perf_counter() - t0:7.1f}s[/] [bold cyan]{step:8}[/] {message}")

    result = study_from_file(config, out, quick=quick, say=say)
    if as_json:
        emit_json(result.to_dict())
        return
    _print(result)


def _interval(iv: dict, fmt: str) -> str:
    return f"{iv['value']:{fmt}} [{iv['low']:{fmt}}, {iv['high']:{fmt}}]"


def _print(r) -> None:  # noqa: ANN001 - a StudyResult
    console = cli_console()
    t = Table(title=f"held-out size {r.held_out}: laws fitted on the other sizes (95% bootstrap intervals)",
              title_justify="left")
    for col in ("law", "MSE", "R^2", "max rel err", f"Spearman {r.held_out}"):
        t.add_column(col)
    for f in r.fits:
        h = f["held_out"]
        sp = next((s for s in f["size_spearman"] if s["held_out"]), None)
        t.add_row(f["law"] + (" *" if f["law"] == r.preferred_law else ""), _interval(h["mse"], ".2e"),
                  _interval(h["r2"], ".3f"), _interval(h["max_rel_err"], ".2%"),
                  "-" if sp is None else _interval(sp["spearman"], ".2f"))
    console.print(t)
    console.print(f"* planned with (lowest held-out MSE among the shape-aware laws not degenerate): {r.preferred_law}"
                  if r.preferred_law else "no plan: every shape-aware law's fit is degenerate (warnings below)")
    if r.noise:
        n = r.noise
        console.print(f"noise floor ({n['group']}, {n['n_seeds']} seeds x {n['n_shapes']} shapes): seed-to-seed std "
                      f"{n['seed_std']:.4f} nats ({100 * n['seed_rel_std']:.2f}%); validation-set standard error "
                      f"{n['val_se']:.4f}")
        spreads = ", ".join(f"{g} {v['spread']:.3f} ({v['spread_over_noise']:.0f}x)"
                            for g, v in n.get("shape_spread", {}).items())
        console.print(f"shape spread per size (worst - best loss at equal D, x noise): {spreads}")
    lat = r.latency
    if lat.get("holdout_median_abs_error") is not None:
        console.print(f"latency: {lat['n_shapes']} shapes timed; profile fitted on half, decode error on the other "
                      f"half median {100 * lat['holdout_median_abs_error']:.1f}%, max "
                      f"{100 * lat['holdout_max_abs_error']:.1f}%")
    if r.verify:
        v = r.verify
        t = Table(title=f"verification at D={v['plan']['n_tokens']:,} (neither shape in any fit)", title_justify="left")
        for col in ("role", "shape", "N", "R", "loss pred", "loss meas", "err", "decode pred", "decode meas", "err"):
            t.add_column(col)
        for row in v["rows"]:
            t.add_row(row["role"], row["shape"], f"{row['n_params']:,}", f"{row['aspect_ratio']:.2g}",
                      f"{row['predicted_loss']:.4f}", f"{row['measured_loss']:.4f}", f"{100 * row['loss_error']:+.2f}%",
                      f"{1e3 * row['predicted_decode_s']:.1f} ms", f"{1e3 * row['measured_decode_s']:.1f} ms",
                      f"{100 * row['decode_error']:+.1f}%")
        console.print(t)
        console.print(f"recommended vs baseline: {v['speedup']:.2f}x faster decode (predicted "
                      f"{v['predicted_speedup']:.2f}x), loss {100 * v['loss_change']:+.2f}% "
                      f"(+-{100 * v['loss_change_se']:.2f}% validation-set error)")
        warn = v["plan"]["recommended"]["warnings"]
        print_warnings(["; ".join(warn)] if warn else [], context="recommended shape")
    print_warnings(r.warnings)
    console.print(f"study directory: {r.out_dir} ({r.n_runs} runs; figures: {', '.join(Path(p).name for p in r.figures)})")


def register(app: typer.Typer) -> None:
    app.command("study")(study)
