"""`infscale tts analyze RUNS...`: accuracy vs FLOPs, Pareto frontier, compute-optimal choices and saturation.

Thin: reads the runs' records (or seed B's bundled tables with ``--seed-b``), calls `infscale.tts.analysis`,
`infscale.tts.analysis.saturation` and `infscale.report.tts_plots`, writes CSV/JSON/PNG files and prints tables (``--json``: one
JSON object on stdout).
"""

from __future__ import annotations

from pathlib import Path

import typer

from infscale.jsonsafe import finite

DEFAULT_OUT = Path("infscale-out/tts-analysis")


def add_commands(tts_app: typer.Typer) -> None:
    @tts_app.command("analyze")
    def analyze_cmd(
        runs: list[Path] = typer.Argument(None, help="Run directories (holding records.jsonl) or JSONL record files."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="Output directory for the tables and plots."),
        accounting: str = typer.Option("ours", "--accounting", help="FLOPs for the frontier and the compute-optimal "
                                       "choices: ours (policy prefill + decode + reward model) or seed_b (2 N T)."),
        n_boot: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates for the intervals."),
        seed: int = typer.Option(0, "--seed", help="Random seed (subsets and bootstrap)."),
        seed_b: bool = typer.Option(False, "--seed-b", help="Analyse seed B's published tables (bundled) instead."),
        plot: bool = typer.Option(True, "--plot/--no-plot", help="Write the PNG plots."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    ) -> None:
        """Accuracy vs FLOPs per model x strategy, the Pareto frontier, the compute-optimal (model, strategy, n) per
        budget, the compute-optimal size and error-vs-compute fits, and saturation (Theorems 1-2)."""
        from infscale.errors import InputError

        if accounting not in ("ours", "seed_b"):
            raise InputError(f"--accounting {accounting!r}: expected ours or seed_b")
        if n_boot < 1:
            raise InputError(f"--bootstrap {n_boot}: must be >= 1")
        if seed_b:
            payload = _analyze_seed_b(out, plot)
        else:
            if not runs:
                raise InputError("give run directories / records JSONL files, or --seed-b for seed B's tables")
            payload = _analyze_runs(runs, out, accounting, n_boot, seed, plot)
        if as_json:
            import json

            typer.echo(json.dumps(finite(payload), indent=2, allow_nan=False))
            return
        _print(payload)




def _point_dict(p, accounting: str | None = None) -> dict:
    d = {"model": p.model, "n_params": p.n_params, "strategy": p.strategy, "n": p.n, "flops": p.flops,
         "seed_b_flops": p.seed_b_flops, "accuracy": p.accuracy, "ci_low": p.ci_low, "ci_high": p.ci_high,
         "n_problems": p.n_problems, "source": p.source}
    if accounting is not None:
        d["flops_used"] = p.flops_for(accounting)
    return d


def _write_csv(path: Path, rows: list[dict]) -> str:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return str(path)


def _read_runs(runs: list[Path]):
    from infscale.errors import InputError
    from infscale.tts.core.runner import RECORDS, read_records

    records = []
    for run in runs:
        path = run / RECORDS if run.is_dir() else run
        if not path.exists():
            raise InputError(f"{path}: no such records file")
        got = list(read_records(path))
        if not got:
            raise InputError(f"{path}: no records")
        records.extend(got)
    return records


def _analyze_runs(runs: list[Path], out: Path, accounting: str, n_boot: int, seed: int, plot: bool) -> dict:
    import numpy as np

    from infscale.tts.analysis import (
        IID_STRATEGIES,
        ComputeOptimalSizeFit,
        ErrorComputeFit,
        compute_optimal,
        compute_optimal_sizes,
        operating_points_from_records,
        pareto_frontier,
        pools_from_records,
    )
    from infscale.tts.analysis.saturation import saturation_summary

    records = _read_runs(runs)
    n_failed = sum(1 for r in records if r.error is not None)
    points, curves = operating_points_from_records(records, n_bootstrap=n_boot, random_state=seed)
    if not points:
        from infscale.errors import InputError

        raise InputError(f"{', '.join(str(r) for r in runs)}: no record carries an answer to score")
    flops = np.array([p.flops_for(accounting) for p in points])
    acc = np.array([p.accuracy for p in points])
    front = [points[i] for i in pareto_frontier(flops, acc)]
    budgets = np.geomspace(flops[flops > 0].min(), flops.max(), 9) if (flops > 0).any() else np.array([])
    best = compute_optimal(points, budgets, accounting=accounting)
    payload: dict = {
        "runs": [str(r) for r in runs], "n_records": len(records), "n_failed": n_failed, "accounting": accounting,
        "points": [_point_dict(p, accounting) for p in points],
        "frontier": [_point_dict(p, accounting) for p in front],
        "compute_optimal": [{"budget_flops": float(c), **(_point_dict(p, accounting) if p else {})}
                            for c, p in zip(budgets, best, strict=True)],
    }
    # compute-optimal model size law and error vs compute
    c_opt, n_opt = compute_optimal_sizes(points, budgets, accounting=accounting)
    try:
        fit = ComputeOptimalSizeFit().fit(n_opt, c_opt)
        payload["size_law"] = {"a": fit.a_, "b": fit.b_, "r2": fit.r2_, "n_points": fit.n_points_,
                               "seed_b": {"a": 1.19, "b": 2.03}}
    except ValueError as exc:
        payload["size_law"] = {"skipped": str(exc)}
    err_fits = {}
    groups: dict[str, list] = {}
    for p in points:
        groups.setdefault(f"{p.model} {p.strategy}", []).append(p)
    for key, pts in sorted(groups.items()):
        f = np.array([p.flops_for(accounting) for p in pts])
        if len(pts) >= 3 and (f > 0).all():
            e = ErrorComputeFit().fit(f, [1 - p.accuracy for p in pts])
            err_fits[key] = {"err_inf": e.err_inf_, "k": e.k_, "gamma": e.gamma_, "flops_ref": e.flops_ref_,
                             "rmse": e.rmse_}
    payload["error_vs_compute"] = err_fits
    # saturation (Theorems 1-2) on each i.i.d. pool
    by_group: dict[tuple[str, str], dict[int, list]] = {}
    for r in records:
        if r.strategy in IID_STRATEGIES:
            by_group.setdefault((r.model, r.strategy), {}).setdefault(r.budget, []).append(r)
    sat, sat_curves = {}, {}
    for (model, strategy), cur in curves.items():
        recs = by_group[(model, strategy)][max(by_group[(model, strategy)])]
        summ = saturation_summary(pools_from_records(recs), cur["majority"].ns)
        key = f"{model} {strategy}"
        sat[key], sat_curves[key] = summ, cur
        payload.setdefault("saturation", {})[key] = {
            "mv_limit": summ.mv_limit, "wv_limit": summ.wv_limit, "oracle_pass_at_pool": summ.oracle,
            "median_top2_gap": summ.median_gap, "hoeffding_rate_c": summ.rate_c,
            "ns": summ.ns, "mv_bound": summ.mv_bound, "wv_bound": summ.wv_bound,
            "accuracy_at_n": {a: {"ns": c.ns, "accuracy": c.accuracy, "ci_low": c.ci_low, "ci_high": c.ci_high,
                                  "exact": c.exact} for a, c in cur.items()},
        }
    files = {"points_csv": _write_csv(out / "points.csv", [_point_dict(p, accounting) for p in points]),
             "frontier_csv": _write_csv(out / "frontier.csv", [_point_dict(p, accounting) for p in front])}
    if plot:
        from infscale.report.tts_plots import plot_accuracy_vs_flops, plot_saturation

        files["accuracy_vs_flops_png"] = str(plot_accuracy_vs_flops(points, out / "accuracy_vs_flops.png",
                                                                    accounting=accounting))
        if sat:
            files["saturation_png"] = str(plot_saturation(sat_curves, sat, out / "saturation.png"))
    payload["files"] = files
    import json

    (out / "analysis.json").write_text(json.dumps(finite(payload), indent=1, allow_nan=False), encoding="utf-8")
    files["analysis_json"] = str(out / "analysis.json")
    return payload


def _analyze_seed_b(out: Path, plot: bool) -> dict:
    from infscale.tts.analysis import pareto_frontier
    from infscale.workflows.seedb_tables import load_seed_b_points, seed_b_statements

    statements = seed_b_statements()
    payload: dict = {"source": "seed B published tables (Wu et al., ICLR 2025; CC-BY-4.0)", "accounting": "seed_b",
                     "statements": [{"key": s.key, "claim": s.claim, "holds": s.holds, "detail": s.detail,
                                     "figures": s.figures} for s in statements]}
    files = {}
    for ds in ("MATH500", "GSM8K"):
        pts = load_seed_b_points(ds)
        front = [pts[i] for i in pareto_frontier([p.flops for p in pts], [p.accuracy for p in pts])]
        payload.setdefault("frontier", {})[ds] = [_point_dict(p) for p in front]
        files[f"points_{ds.lower()}_csv"] = _write_csv(out / f"seed_b_points_{ds.lower()}.csv",
                                                       [_point_dict(p) for p in pts])
        if plot:
            from infscale.report.tts_plots import plot_accuracy_vs_flops

            files[f"{ds.lower()}_png"] = str(plot_accuracy_vs_flops(
                pts, out / f"seed_b_{ds.lower()}.png", accounting="seed_b",
                title=f"Seed B tables, {ds}: accuracy vs FLOPs (paper's accounting)"))
    payload["files"] = files
    return payload


def _print(payload: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if "statements" in payload:
        t = Table(title="Seed B's statements, re-derived from its tables", title_justify="left", show_lines=True)
        t.add_column("holds")
        t.add_column("claim")
        t.add_column("figures")
        for s in payload["statements"]:
            t.add_row("[green]yes[/]" if s["holds"] else "[red]no[/]", s["claim"], s["detail"])
        console.print(t)
    frontiers = payload["frontier"] if isinstance(payload["frontier"], dict) else {"": payload["frontier"]}
    for name, front in frontiers.items():
        t = Table(title=f"Pareto frontier {name}".strip(), title_justify="left")
        for col in ("model", "strategy", "n", "FLOPs", "accuracy %", "95% CI"):
            t.add_column(col, justify="right" if col not in ("model", "strategy") else "left")
        for p in front:
            ci = "-" if p["ci_low"] != p["ci_low"] else f"{100 * p['ci_low']:.1f}-{100 * p['ci_high']:.1f}"
            t.add_row(p["model"], p["strategy"], str(p["n"]), f"{p.get('flops_used', p['flops']):.3g}",
                      f"{100 * p['accuracy']:.1f}", ci)
        console.print(t)
    if "compute_optimal" in payload:
        t = Table(title=f"Compute-optimal choice per budget ({payload['accounting']} FLOPs)", title_justify="left")
        for col in ("budget FLOPs", "model", "strategy", "n", "accuracy %"):
            t.add_column(col)
        for row in payload["compute_optimal"]:
            t.add_row(f"{row['budget_flops']:.3g}", row.get("model", "-"), row.get("strategy", "-"),
                      str(row.get("n", "-")), f"{100 * row['accuracy']:.1f}" if "accuracy" in row else "-")
        console.print(t)
        law = payload.get("size_law", {})
        if "a" in law:
            console.print(f"compute-optimal size law: log10 C = {law['a']:.3f} log10 N + {law['b']:.3f} "
                          f"(R^2 {law['r2']:.3f}, {law['n_points']} budgets; seed B: 1.19, 2.03)")
        else:
            console.print(f"compute-optimal size law: skipped ({law.get('skipped', '')})")
        for key, s in payload.get("saturation", {}).items():
            console.print(f"saturation {key}: MV limit {100 * s['mv_limit']:.1f}% (Thm 1), WV limit "
                          f"{100 * s['wv_limit']:.1f}% (Thm 2), pass@pool {100 * s['oracle_pass_at_pool']:.1f}%, "
                          f"median top-2 gap {s['median_top2_gap']:.3f}")
    for k, v in payload.get("files", {}).items():
        console.print(f"{k}: {v}")
