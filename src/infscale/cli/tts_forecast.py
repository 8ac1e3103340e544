"""`infscale tts forecast RUNS... --pilot M --to N`: accuracy at n forecast from a pilot, checked where measured.

Thin: `infscale.workflows.tts_forecast` reads the runs' records, forecasts, measures and writes the files; this prints
the table (``--json``: one JSON object on stdout).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json, print_warnings


def forecast_cmd(
    runs: list[Path] = typer.Argument(..., help="Run directories (holding records.jsonl) or JSONL record files."),
    pilot: int = typer.Option(..., "--pilot", help="Samples per problem the forecast reads (a random subset)."),
    to: int = typer.Option(..., "--to", help="Forecast accuracy up to this many samples per problem."),
    target: float = typer.Option(None, "--target", help="Also find the smallest n reaching this accuracy (0-1)."),
    aggregation: list[str] = typer.Option([], "--aggregation", help="pass, majority_vote, weighted_vote, "
                                          "best_of_n (repeatable; default: every one the records allow)."),
    level: float = typer.Option(0.9, "--level", help="Interval level."),
    n_boot: int = typer.Option(400, "--bootstrap", help="Bootstrap replicates (problems x posterior draws)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (pilot subset, posterior draws, bootstrap)."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: infscale-out/tts-forecast-<UTC time>)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write forecast.png."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
) -> None:
    """Forecast pass@n, majority vote, weighted vote and best-of-n up to --to from a pilot of --pilot samples per
    problem, with intervals, FLOPs per problem and the smallest n for --target; measured beside it where the pool
    holds n samples."""
    from infscale.configio import default_out  # lazy: pydantic
    from infscale.workflows.tts_forecast import forecast_runs  # lazy: numpy, pydantic

    report = forecast_runs(runs, out or default_out("tts-forecast"), pilot=pilot, n_max=to, target=target,
                           aggregations=aggregation or None, level=level, n_bootstrap=n_boot, seed=seed, plot=plot)
    if as_json:
        emit_json(report.to_dict())
        return
    _print(report)


def _print(r) -> None:  # noqa: ANN001 - a ForecastReport
    console = cli_console()
    console.print(f"[bold]{r.model}[/] {r.strategy}: {r.n_problems} problems, pool {r.pool_size}, forecast from a "
                  f"pilot of {r.pilot} to n = {r.n_max} ({100 * r.level:.0f}% intervals); prior of the success "
                  f"probability Beta({r.prior['a']:.3g}, {r.prior['b']:.3g})")
    show = sorted({n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, r.n_max) if n <= r.n_max})
    t = Table(title="accuracy (%): forecast [interval] / measured on the whole pool", title_justify="left")
    t.add_column("n", justify="right")
    for agg in r.aggregations:
        t.add_column(agg, justify="right")
    t.add_column("FLOPs/problem", justify="right")
    by = {(row["aggregation"], row["n"]): row for row in r.rows}
    for n in show:
        cells = []
        for agg in r.aggregations:
            row = by.get((agg, n))
            if row is None:
                cells.append("-")
                continue
            meas = "" if row["measured"] is None else f" / {100 * row['measured']:.1f}"
            cells.append(f"{100 * row['forecast']:.1f} [{100 * row['low']:.1f}-{100 * row['high']:.1f}]{meas}")
        if any(c != "-" for c in cells):
            flops = by.get((r.aggregations[0], n), {}).get("flops_per_problem")
            t.add_row(str(n), *cells, "-" if flops is None else f"{flops:.3g}")
    console.print(t)
    for agg, v in r.validation.items():
        console.print(f"{agg}: forecast vs measured over {v['n_points']} n: mean |error| {v['mae_points']:.2f} "
                      f"points, max {v['max_points']:.2f}; interval covers {v['coverage']:.0%}")
    for agg, tg in r.targets.items():
        span = "" if tg["low"] is None else f" [{tg['low']}-{tg['high'] if tg['high'] is not None else '>' + str(r.n_max)}]"
        measured = "" if tg["measured_n"] is None else f"; measured {tg['measured_n']}"
        console.print(f"{agg}: smallest n for {100 * tg['target']:.0f}%: "
                      f"{tg['n'] if tg['n'] is not None else 'not within n <= ' + str(r.n_max)}{span}{measured}")
    console.print("limits as n grows: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in r.limits.items()))
    print_warnings(r.warnings)
    for k, v in r.files.items():
        console.print(f"{k}: {v}")


def register(tts_app: typer.Typer) -> None:
    tts_app.command("forecast")(forecast_cmd)
