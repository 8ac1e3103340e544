"""`infscale lifecycle DEPLOY.yaml`: what to train and how to decode it for a deployment, at the least lifetime cost.
Thin: parse, call `infscale.workflows.lifecycle.run_lifecycle`, print."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json, print_warnings


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def lifecycle_command(
    deploy: str = typer.Argument(..., help="Deployment file (YAML) or a bundled recipe name, e.g. lifecycle_mini."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: infscale-out/lifecycle-<UTC time>)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write crossover.png and frontier.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Choose N, D, shape, test-time strategy and its n for a whole deployment (lifetime queries, latency limit,
    accuracy target or cost ceiling, memory), at the least training + serving + reward-model cost; print the
    cost breakdown, the binding constraint and where the choice changes with query volume."""
    from infscale.configio import default_out  # lazy: pydantic
    from infscale.workflows.lifecycle import run_lifecycle  # lazy: numpy, pydantic

    target = out if out is not None else default_out("lifecycle")
    report = run_lifecycle(deploy, target, plot=plot)
    if as_json:
        emit_json(report.to_dict())
        return
    _print(report)


def _print(r) -> None:
    console = cli_console()
    b, br = r.best, r.breakdown
    choice = b["strategy"] + ("" if b["strategy"] == "greedy" else f" n={b['n']}")
    acc = "-" if b.get("accuracy") is None else f"{100 * b['accuracy']:.1f}%"
    if b.get("accuracy_interval"):
        lo, hi = b["accuracy_interval"]
        acc += f" [{100 * lo:.1f}-{100 * hi:.1f}%, the pilots' forecast interval]"
    console.print(f"[bold]Train[/bold] {b['model']} (N={_g(b['n_params'])}) on {_g(b['train_tokens'])} tokens, "
                  f"[bold]decode[/bold] with {choice}: accuracy {acc}, loss {_g(b.get('loss'))}, latency "
                  f"{_g(b['latency_s'])} s, lifetime cost {_g(b['cost'])} {r.unit}")
    console.print(f"binding: {', '.join(r.binding) or 'none'}; {r.n_feasible} of {r.n_configs} configurations "
                  f"feasible ({r.seconds:.2f} s)")
    print_warnings(r.warnings)
    costs = Table(title="Cost of the optimum")
    for col in ("part", "device-hours", "USD", "FLOPs"):
        costs.add_column(col, justify="right")
    for part in ("train", "serve", "prm"):
        costs.add_row(part, _g(br[f"{part}_device_hours"]), _g(br[f"{part}_usd"]), _g(br[f"{part}_flops"]))
    console.print(costs)
    cross = Table(title="Where the choice changes with lifetime queries")
    for col in ("from queries", "model", "N", "D", "strategy", "n", f"cost {r.unit}"):
        cross.add_column(col, justify="right")
    for k, c in enumerate(r.crossover):
        if c.get("feasible") and (k == 0 or c.get("changes")):
            cross.add_row(_g(c["queries"]), c["model"], _g(c["n_params"]), _g(c["train_tokens"]), c["strategy"],
                          str(c["n"]), _g(c["cost"]))
    console.print(cross)
    loso = (r.curves or {}).get("leave_one_size_out")
    pilots = (r.curves or {}).get("pilots")
    if pilots:
        own = ", ".join(f"{m} {e:.1f}" for m, e in pilots["own_error_points"].items())
        console.print(f"test-time curves forecast from pilots of {pilots['pilot']}: each model's own forecast vs its "
                      f"measured pool, mean error in points: {own}")
    if loso:
        against = " (the other sizes' forecasts against the held-out size's measured pool)" if pilots else ""
        console.print(f"test-time curves, leave-one-size-out error{against}: {loso['mae_points']:.1f} points (mean)")
    if r.link:
        console.print(f"loss -> accuracy link ({r.link['form']}): held-out error "
                      f"{r.link['heldout']['mae_points']:.2f} points on the larger-compute runs")
    console.print("wrote " + ", ".join(r.files.values()))


def register(app: typer.Typer) -> None:
    app.command("lifecycle")(lifecycle_command)
