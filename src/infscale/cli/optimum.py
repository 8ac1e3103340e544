"""`infscale optimum`: compute-optimal N and D for a training budget, with bootstrap intervals. Thin: parse, call
`infscale.workflows.optimum.run_optimum`, print."""

from __future__ import annotations

from pathlib import Path

import typer

from infscale.cli.output import emit_json, print_warnings


def optimum_command(
    law: Path = typer.Option(..., "--law", help="Saved fit (`infscale fit --bootstrap K --save LAW` for intervals)."),
    flops: float = typer.Option(..., "--flops", help="Training budget C = 6ND, FLOPs."),
    aspect_ratio: float = typer.Option(None, "--aspect-ratio", help="R = d_model/n_layers (shape-aware laws)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The compute-optimal parameters N and tokens D for C = 6ND under a fitted law, with the interval of the fit's
    bootstrap replicates (each replicate's own optimum)."""
    from infscale.workflows.optimum import run_optimum  # lazy: numpy, pydantic

    r = run_optimum(law, flops, aspect_ratio=aspect_ratio)
    if as_json:
        emit_json(r.to_dict())
        return
    pct = "" if r.level is None else f"{100 * r.level:.0f}% interval over {r.n_replicates} replicates"
    for name, value in (("N_opt", r.n_params), ("D_opt", r.n_tokens), ("D/N", r.tokens_per_param),
                        ("loss", r.loss)):
        key = {"N_opt": "n_params", "D_opt": "n_tokens", "D/N": "tokens_per_param", "loss": "loss"}[name]
        lo_hi = r.interval.get(key)
        band = "" if lo_hi is None else f"  [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]"
        print(f"{name:6s} {value:.4g}{band}")
    if pct:
        print(pct)
    print_warnings(r.warnings)


def register(app: typer.Typer) -> None:
    app.command("optimum")(optimum_command)
