"""`infscale data list`: the bundled datasets with their rows, columns, source and licence."""

from __future__ import annotations

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json
from infscale.data import DATASETS

data_app = typer.Typer(help="Bundled training-run datasets.", no_args_is_help=True)


@data_app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Name, rows, columns, source and licence of each bundled dataset."""
    from infscale.laws.io import load_runs  # lazy: numpy, pandas, pydantic

    rows = []
    for info in DATASETS.values():
        runs = load_runs(info.name)
        raw_cols = list(_raw_columns(info.path))
        rows.append({"name": info.name, "rows": len(runs), "columns": len(raw_cols), "file": info.file,
                     "default_law": info.default_law, "default_fit_on": info.default_fit_on,
                     "source": info.source, "licence": info.licence, "description": info.description})
    if as_json:
        emit_json(rows)
        return

    t = Table(title="bundled datasets (infscale/data, see SOURCE.md)", title_justify="left")
    for col in ("name", "rows", "columns", "licence", "source"):
        t.add_column(col, justify="right" if col in ("rows", "columns") else "left")
    for r in rows:
        t.add_row(r["name"], str(r["rows"]), str(r["columns"]), r["licence"], r["source"])
    cli_console().print(t)


def _raw_columns(path):
    with path.open() as fh:
        return fh.readline().rstrip("\n").split(",")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
