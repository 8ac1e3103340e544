"""`infscale train CONFIG`, `infscale sweep CONFIG`, `infscale runs DIR`: thin wrappers over infscale.train.

A CONFIG is a YAML path or the name of a bundled recipe (``infscale/recipes/<name>.yaml``, e.g. ``micro_sweep``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from infscale.cli.output import emit_json_line
from infscale.configio import resolve_recipe

# record field -> column header
COLUMNS = {"run_id": "run", "N": "N", "D": "D", "tokens_per_param": "D/N", "d_model": "d", "n_layers": "L",
           "loss": "val loss", "train_loss_smoothed": "train loss", "wall_s": "wall s", "tokens_per_s": "tok/s"}


def _table(title: str, records: list[dict]) -> None:
    from rich.table import Table

    from infscale.cli.output import console as cli_console

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
    import os

    from infscale.configio import check_output_dir, default_out
    from infscale.train.config import load_train_config
    from infscale.train.data import prepare_data
    from infscale.train.sweep import append_record
    from infscale.train.trainer import default_run_id, plan_tokens, resolve_shape, train

    path = resolve_recipe(config)
    out = out or default_out("train", path.stem)
    check_output_dir(out)
    cfg = load_train_config(path)

    d = cfg.data
    data = prepare_data(d.corpus, d.vocab_size, d.val_fraction, d.cache_dir, d.max_bytes)
    shape = resolve_shape(cfg, data.vocab_size)
    _, n_tokens = plan_tokens(cfg, shape.n_params, int(os.environ.get("WORLD_SIZE", "1")))
    run_id = cfg.run_id or default_run_id(shape, n_tokens, cfg.group)
    record = train(cfg, out / run_id, data=data)
    if record is None or int(os.environ.get("RANK", "0")) != 0:
        return
    append_record(out / "records.jsonl", record)
    if json_out:
        emit_json_line(record)
    else:
        _table(f"run {run_id}", [record])


def sweep_cmd(
    config: str = typer.Argument(..., help="Sweep YAML (or a bundled recipe name, e.g. micro_sweep)."),
    out: Path = typer.Option(None, "--out", "-o", help="Sweep directory (records.jsonl, runs/; default: "
                         "infscale-out/sweep-<config name>, so the same command resumes)."),
    executor: str | None = typer.Option(None, "--executor", "-e", help="local | ray (default: the config's)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Concurrent runs (default: the config's)."),
    json_out: bool = typer.Option(False, "--json", help="Print all records as JSON lines."),
) -> None:
    """Run a sweep grid; re-running skips finished runs and resumes interrupted ones."""

    from infscale.configio import check_number, default_out
    from infscale.train.config import load_sweep_config
    from infscale.train.sweep import run_sweep

    check_number("--workers", workers, low=1, inclusive=True)
    path = resolve_recipe(config)
    out = out or default_out("sweep", path.stem)
    sweep = load_sweep_config(path)

    def report(rec: dict, new: bool) -> None:
        if not json_out:
            state = "done" if new else "kept"
            typer.echo(f"[{state}] {rec['run_id']}: N={rec['N']:,} D={rec['D']:,} val loss {rec['loss']:.4f} "
                       f"({rec['wall_s']:.0f} s)", err=True)

    records = run_sweep(sweep, out, executor=executor, workers=workers, source=str(path), on_record=report)
    if json_out:
        for r in records:
            emit_json_line(r)
    else:
        _table(f"sweep {out} ({len(records)} runs)", records)


def runs_cmd(
    directory: Path = typer.Argument(..., help="A sweep/train output directory or a records.jsonl."),
    json_out: bool = typer.Option(False, "--json", help="Print records as JSON lines (in-progress runs too, with "
                                  "\"in_progress\": true)."),
) -> None:
    """List finished runs (records.jsonl) and runs in progress (started, no record yet: step reached, whether a
    trainer holds them now), also while a sweep is still running."""

    from infscale.errors import InputError
    from infscale.train.sweep import read_run_records, runs_in_progress

    path = directory if directory.suffix == ".jsonl" else directory / "records.jsonl"
    if not path.exists() and not (path.parent / "runs").is_dir():
        raise InputError(f"{path}: no records file and no runs/ (run `infscale sweep` or `infscale train` first)")
    records = read_run_records(path)
    partial = runs_in_progress(path.parent, {r["run_id"] for r in records})
    tts_runs = sorted((path.parent / "runs").glob("*/records.jsonl"))
    if not records and not partial and tts_runs:
        raise InputError(f"{path.parent}: no training runs here; runs/ holds tts runs ({tts_runs[0].parent.name}, ...): "
                         "`infscale tts analyze` reads them")
    if json_out:
        for r in records:
            emit_json_line(r)
        for p in partial:
            emit_json_line({**p, "in_progress": True})
        return
    _table(str(path), records)
    typer.echo(f"{len(records)} finished, {len(partial)} in progress")
    for p in partial:
        of = "" if p["steps"] is None else f" of {p['steps']:,}"
        loss = "" if p["loss_smoothed"] is None else f", train loss {p['loss_smoothed']:.4f}"
        state = "training now" if p["active"] else ("stopped, resumes from its checkpoint" if p["checkpoint"]
                                                    else "stopped before its first checkpoint")
        typer.echo(f"in progress: {p['run_id']}: step {p['step']:,}{of}{loss} ({state})")


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("sweep")(sweep_cmd)
    app.command("runs")(runs_cmd)
