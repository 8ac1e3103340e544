"""`infscale train CONFIG`, `infscale sweep CONFIG`, `infscale runs DIR`: thin wrappers over `infscale.workflows.train`.

A CONFIG is a YAML path or the name of a bundled recipe (``infscale/recipes/<name>.yaml``, e.g. ``micro_sweep``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json_line

# record field -> column header
COLUMNS = {"run_id": "run", "N": "N", "D": "D", "tokens_per_param": "D/N", "d_model": "d", "n_layers": "L",
           "loss": "val loss", "train_loss_smoothed": "train loss", "wall_s": "wall s", "tokens_per_s": "tok/s"}


def _table(title: str, records: list[dict]) -> None:
    table = Table(title=title)
    for col, header in COLUMNS.items():
        table.add_column(header, justify="left" if col == "run_id" else "right", no_wrap=True)
    for r in records:
        cells = []
        for col in COLUMNS:
            v = r.get(col)
            if isinstance(v, float):
                cells.append(f"{v:.4g}" if col not in ("wall_s", "tokens_per_s") else f"{v:,.0f}")
            elif isinstance(v, int):
                cells.append(f"{v:,}")
            else:
                cells.append("" if v is None else str(v))
        table.add_row(*cells)
    console = cli_console()
    console.print(table)


def train_cmd(
    config: str = typer.Argument(..., help="Train config YAML (or a bundled recipe name)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory: runs/<run_id>/ and records.jsonl (default: infscale-out/train-<config name>, so the same command resumes)."),
    json_out: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
) -> None:
    """Train one model; resumes from its checkpoint when re-run; appends its record to OUT/records.jsonl."""
    from infscale.workflows.train import run_train_config  # lazy: pydantic

    result = run_train_config(config, out)
    if result.record is None:  # a non-main rank of a distributed run
        return
    if json_out:
        emit_json_line(result.record)
    else:
        _table(f"run {result.run_id}", [result.record])


def sweep_cmd(
    config: str = typer.Argument(..., help="Sweep YAML (or a bundled recipe name, e.g. micro_sweep)."),
    out: Path = typer.Option(None, "--out", "-o", help="Sweep directory (records.jsonl, runs/; default: "
                         "infscale-out/sweep-<config name>, so the same command resumes)."),
    executor: str | None = typer.Option(None, "--executor", "-e", help="local | ray (default: the config's)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Concurrent runs (default: the config's)."),
    json_out: bool = typer.Option(False, "--json", help="Print all records as JSON lines."),
) -> None:
    """Run a sweep grid; re-running skips finished runs and resumes interrupted ones."""
    from infscale.workflows.train import run_sweep_config  # lazy: pydantic

    def report(rec: dict, new: bool) -> None:
        if not json_out:
            state = "done" if new else "kept"
            typer.echo(f"[{state}] {rec['run_id']}: N={rec['N']:,} D={rec['D']:,} val loss {rec['loss']:.4f} "
                       f"({rec['wall_s']:.0f} s)", err=True)

    result = run_sweep_config(config, out, executor=executor, workers=workers, on_record=report)
    if json_out:
        for r in result.records:
            emit_json_line(r)
    else:
        _table(f"sweep {result.out} ({len(result.records)} runs)", result.records)


def runs_cmd(
    directory: Path = typer.Argument(..., help="A sweep/train output directory or a records.jsonl."),
    json_out: bool = typer.Option(False, "--json", help="Print records as JSON lines (in-progress runs too, with "
                                  "\"in_progress\": true)."),
) -> None:
    """List finished runs (records.jsonl) and runs in progress (started, no record yet: step reached, whether a
    trainer holds them now), also while a sweep is still running."""
    from infscale.workflows.train import list_runs  # lazy: pydantic

    listing = list_runs(directory)
    if json_out:
        for r in listing.records:
            emit_json_line(r)
        for p in listing.in_progress:
            emit_json_line({**p, "in_progress": True})
        return
    _table(str(listing.path), listing.records)
    typer.echo(f"{len(listing.records)} finished, {len(listing.in_progress)} in progress")
    for p in listing.in_progress:
        of = "" if p["steps"] is None else f" of {p['steps']:,}"
        loss = "" if p["loss_smoothed"] is None else f", train loss {p['loss_smoothed']:.4f}"
        state = "training now" if p["active"] else ("stopped, resumes from its checkpoint" if p["checkpoint"]
                                                    else "stopped before its first checkpoint")
        typer.echo(f"in progress: {p['run_id']}: step {p['step']:,}{of}{loss} ({state})")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("sweep")(sweep_cmd)
    app.command("runs")(runs_cmd)
