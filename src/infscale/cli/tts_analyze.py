"""`infscale tts analyze RUNS...`: accuracy vs FLOPs, Pareto frontier, compute-optimal choices and saturation.

Thin: `infscale.workflows.tts_analysis` reads the runs' records (or Wu et al.'s bundled tables with ``--wu2025``),
analyses them and writes CSV/JSON/PNG files; this prints tables (``--json``: one JSON object on stdout).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json


def analyze_cmd(
    runs: list[Path] = typer.Argument(None, help="Run directories (holding records.jsonl) or JSONL record files."),
    out: Path = typer.Option(None, "--out", help="Output directory for the tables and plots (default: infscale-out/tts-analysis-<UTC time>)."),
    accounting: str = typer.Option("ours", "--accounting", help="FLOPs for the frontier and the compute-optimal "
                                   "choices: ours (policy prefill + decode + reward model) or wu2025 (2 N T)."),
    n_boot: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Random seed (subsets and bootstrap)."),
    wu2025: bool = typer.Option(False, "--wu2025", help="Analyse Wu et al.'s published tables (bundled) instead."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write the PNG plots."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Accuracy vs FLOPs per model x strategy, the Pareto frontier, the compute-optimal (model, strategy, n) per
    budget, the compute-optimal size and error-vs-compute fits, and saturation (Theorems 1-2)."""
    from infscale.configio import default_out  # lazy: pydantic
    from infscale.workflows.tts_analysis import (  # lazy: numpy, pydantic
        analyse_runs,
        analyse_wu2025,
        check_settings,
    )

    accounting = check_settings(accounting, n_boot, seed, runs=runs or [], wu2025=wu2025)
    out = out or default_out("tts-analysis")
    if wu2025:
        payload = analyse_wu2025(out, plot)
    else:
        payload = analyse_runs(runs or [], out, accounting=accounting, n_boot=n_boot, seed=seed,
                               plot=plot).to_dict()
    if as_json:
        emit_json(payload)
        return
    _print(payload)


def _print(payload: dict) -> None:
    console = cli_console()
    if "statements" in payload:
        t = Table(title="Wu et al.'s statements, re-derived from its tables", title_justify="left", show_lines=True)
        t.add_column("holds")
        t.add_column("claim")
        t.add_column("figures")
        for s in payload["statements"]:
            verdict = "formula" if s["holds"] is None else "[green]yes[/]" if s["holds"] else "[red]no[/]"
            t.add_row(verdict, s["claim"], s["detail"])
        console.print(t)
    frontiers = payload["frontier"] if isinstance(payload["frontier"], dict) else {"": payload["frontier"]}
    for name, front in frontiers.items():
        t = Table(title=f"Pareto frontier {name}".strip(), title_justify="left")
        for col in ("model", "strategy", "n", "FLOPs", "accuracy %", "95% CI"):
            t.add_column(col, justify="right" if col not in ("model", "strategy") else "left")
        for p in front:
            ci = "-" if p["ci_low"] != p["ci_low"] else f"{100 * p['ci_low']:.1f}-{100 * p['ci_high']:.1f}"
            t.add_row(p["model"], p.get("label") or p["strategy"], str(p["n"]), f"{p.get('flops_used', p['flops']):.3g}",
                      f"{100 * p['accuracy']:.1f}", ci)
        console.print(t)
    if "compute_optimal" in payload:
        t = Table(title=f"Compute-optimal choice per budget ({payload['accounting']} FLOPs)", title_justify="left")
        for col in ("budget FLOPs", "model", "strategy", "n", "accuracy %"):
            t.add_column(col)
        for row in payload["compute_optimal"]:
            t.add_row(f"{row['budget_flops']:.3g}", row.get("model", "-"), row.get("label") or row.get("strategy", "-"),
                      str(row.get("n", "-")), f"{100 * row['accuracy']:.1f}" if "accuracy" in row else "-")
        console.print(t)
        law = payload.get("size_law", {})
        if "a" in law:
            console.print(f"compute-optimal size law: log10 C = {law['a']:.3f} log10 N + {law['b']:.3f} "
                          f"(R^2 {law['r2']:.3f}, {law['n_points']} budgets; Wu et al.: 1.19, 2.03)")
        else:
            console.print(f"compute-optimal size law: skipped ({law.get('skipped', '')})")
        for key, s in payload.get("saturation", {}).items():
            console.print(f"saturation {key}: MV limit {100 * s['mv_limit']:.1f}% (Thm 1), WV limit "
                          f"{100 * s['wv_limit']:.1f}% (Thm 2), pass@pool {100 * s['oracle_pass_at_pool']:.1f}%, "
                          f"median top-2 gap {s['median_top2_gap']:.3f}")
    _print_groups(console, payload.get("by_group", []))
    for k, v in payload.get("files", {}).items():
        console.print(f"{k}: {v}")


def _print_groups(console: object, rows: list[dict]) -> None:
    """Accuracy per level / subject (rows) for each strategy and aggregation at its largest n (columns); every
    budget is in accuracy_by_group.csv."""

    top: dict[tuple[str, str], int] = {}
    for g in rows:
        top[(g["model"], g["strategy"])] = max(top.get((g["model"], g["strategy"]), 0), g["budget"])
    models = {m for m, _ in top}
    cols = sorted(top)
    for key in dict.fromkeys(g["key"] for g in rows):
        t = Table(title=f"Accuracy % per {key} [95% Wilson interval] (each strategy at its largest n)",
                  title_justify="left")
        t.add_column(key)
        t.add_column("problems", justify="right")
        for m, s in cols:
            t.add_column(f"{m} {s} n={top[(m, s)]}" if len(models) > 1 else f"{s} n={top[(m, s)]}", justify="right")
        cells: dict[str, dict[tuple[str, str], dict]] = {}
        for g in rows:
            if g["key"] == key and g["budget"] == top[(g["model"], g["strategy"])]:
                cells.setdefault(g["value"], {})[(g["model"], g["strategy"])] = g
        for value, by in cells.items():
            n = max(g["n_problems"] for g in by.values())
            t.add_row(value, str(n), *(f"{100 * by[c]['accuracy']:.0f} [{100 * by[c]['ci_low']:.0f}-"
                                       f"{100 * by[c]['ci_high']:.0f}]" if c in by else "-" for c in cols))
        console.print(t)  # type: ignore[attr-defined]


def register(tts_app: typer.Typer) -> None:
    tts_app.command("analyze")(analyze_cmd)
