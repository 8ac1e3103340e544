"""`infscale fit`: fit a scaling law to runs, with bootstrap intervals, held-out validation, warnings and a plot.

With no arguments it runs the main job: Bian et al.'s main fit (shape-aware law, tied exponent, least squares, 27 points) against
the tied-exponent Chinchilla baseline, tested on all 76 runs and on the 49 held-out runs.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json, print_warnings


def fit(
    data: str = typer.Option("bian2025", "--data", help="Bundled dataset name (see `infscale data list`) or a file: "
                             "CSV, TSV, Parquet, JSON, JSONL (e.g. the trainer's run records)."),
    law: str = typer.Option(None, "--law", help="Law form: chinchilla, chinchilla_tied, inference_aware, "
                            "inference_aware_free_gamma, kaplan, gadre. Default: the dataset's (chinchilla for files)."),
    fitter: str = typer.Option(None, "--fitter", help="huber (Hoffmann/Besiroglu: Huber on log loss, multi-start "
                               "L-BFGS), varpro (the same objective by variable projection: exponents searched, coefficients solved) or "
                               "least_squares (Bian et al.). Default: least_squares for bian2025, huber otherwise."),
    fit_on: str = typer.Option(None, "--fit-on", help="pandas-query row filter for the fit set, e.g. 'N < 5e8'; the "
                               "other rows are held out. Default: the dataset's split (bian2025: in_main_fit_set == 1); "
                               "'all' fits every row."),
    baseline: str = typer.Option(None, "--baseline", help="Second law fitted the same way for comparison "
                                 "(default for bian2025: chinchilla_tied; 'none' to skip)."),
    n_boot: int = typer.Option(200, "--bootstrap", help="Bootstrap refits for the intervals (0 = none)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    out: Path = typer.Option(None, "--out", help="Output directory for the plot and fit.json (default: infscale-out/fit-<UTC time>)."),
    save: Path = typer.Option(None, "--save", help="Also write the fitted law here (JSON, read by infscale.laws.load_fit)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write predicted-vs-actual PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    method: str = typer.Option("parametric", "--method", help="parametric (Hoffmann's approach 3: a law fitted to "
                               "every run), isoflop (approach 2: a parabola in log N per compute budget, then "
                               "N_opt ~ C^a) or envelope (approach 1: --data is a directory of the trainer's runs; "
                               "the lowest loss of their training curves per compute), each beside approach 3; or "
                               "approaches: all three on one directory of runs trained as IsoFLOP profiles."),
    at_flops: float = typer.Option(None, "--at-flops", help="isoflop: the compute budget at which the approaches' "
                                   "N_opt are compared (default: the largest budget)."),
    budget_tol: float = typer.Option(0.05, "--budget-tol", help="isoflop: runs within this relative FLOPs of each "
                                     "other form one budget."),
) -> None:
    """Fit a scaling law; print coefficients with bootstrap intervals, held-out validation and warnings."""
    from infscale.configio import default_out  # lazy: pydantic
    from infscale.workflows import isoflop  # lazy: numpy, pydantic
    from infscale.workflows.fit import FitRequest, run_fit_request  # lazy: pydantic

    isoflop.check_method(method)
    if method == "approaches":
        res = isoflop.run_approaches(Path(data), out or default_out("fit"), at_flops=at_flops, rel_tol=budget_tol,
                             n_boot=max(n_boot, 2), seed=seed, plot=plot)
        emit_json(res) if as_json else _print_compare(res)
        return
    if method == "envelope":
        env = isoflop.run_envelope(Path(data), out or default_out("fit"), at_flops=at_flops, n_boot=max(n_boot, 2), seed=seed)
        emit_json(env) if as_json else _print_compare(env)
        return
    if method == "isoflop":
        iso = isoflop.run_isoflop(data, out or default_out("fit"), at_flops=at_flops, rel_tol=budget_tol,
                          n_boot=max(n_boot, 2), seed=seed, plot=plot)
        if as_json:
            emit_json(iso.to_dict())
            return
        _print_isoflop(iso)
        return

    result = run_fit_request(FitRequest(data=data, law=law, fitter=fitter, fit_on=fit_on, baseline=baseline,
                                        n_boot=n_boot, seed=seed, out=out or default_out("fit"), save=save,
                                        plot=plot))
    if as_json:
        emit_json(result.to_dict())
        return
    _print_tables(result.reports, result.runs, result.files)


def _print_isoflop(res) -> None:
    console = cli_console()
    iso = res.isoflop
    console.print(f"[bold]{res.source}[/]: {res.n_runs} runs; compute from {res.flops_from}; "
                  f"{len(iso.profiles)} budgets with a minimum in N")
    t = Table(title="IsoFLOP profiles (approach 2): the minimum of a parabola in log N per budget",
              title_justify="left")
    for col in ("budget FLOPs", "runs", "N sampled", "N_opt", "95% interval", "loss at N_opt"):
        t.add_column(col, justify="right")
    for p in iso.profiles:
        t.add_row(f"{p.flops:.3g}", str(p.n_runs), f"{p.n_min:.3g}-{p.n_max:.3g}",
                  f"{p.n_opt:.3g}" + ("" if p.inside else " (outside: not used)"), f"{p.n_opt_low:.3g}-{p.n_opt_high:.3g}",
                  f"{p.loss_opt:.4f}")
    console.print(t)
    _print_compare({"at_flops": res.at_flops, "compare": res.compare, "files": res.files,
                    "approach2": {"warnings": list(iso.warnings)}})


def _print_compare(res: dict) -> None:
    """The approaches side by side (a, b with intervals, N_opt and D_opt at one compute), their warnings, the files."""

    console = cli_console()
    c = Table(title=f"The approaches on the same runs (N_opt ~ C^a, D_opt ~ C^b; at C = {res['at_flops']:.3g})",
              title_justify="left")
    for col in ("approach", "a", "95% interval", "b", "95% interval", "N_opt", "D_opt"):
        c.add_column(col, justify="right")
    for row in res["compare"]:
        c.add_row(row["approach"], f"{row['a']:.3f}", "{:.3f}-{:.3f}".format(*row["a_interval"]), f"{row['b']:.3f}",
                  "{:.3f}-{:.3f}".format(*row["b_interval"]), f"{row['n_opt']:.3g}", f"{row['d_opt']:.3g}")
    console.print(c)
    for key in ("approach1", "approach2"):
        print_warnings(res.get(key, {}).get("warnings", []))
    for k, v in res["files"].items():
        console.print(f"{k}: {v}")


def _fmt(x: float) -> str:
    if x != x:
        return "-"
    return f"{x:.6g}"


def _print_tables(reports, runs, files) -> None:
    console = cli_console()
    first = reports[0]
    console.print(f"[bold]{runs.source}[/]: {len(runs)} runs; fit on {first.fit_on or 'all rows'} "
                  f"({first.n_fit} runs), {first.n_held_out} held out; fitter {first.fitter}")
    rng = first.law.meta.get("fit_range")
    if rng:  # saved with the law: plan, select, lifetime and optimum flag what leaves it
        spans = [f"{label} {rng[key][0]:.3g}-{rng[key][1]:.3g}" for key, label in (
            ("n_params", "N"), ("n_tokens", "D"), ("tokens_per_param", "D/N"), ("aspect_ratio", "R"),
            ("loss", "loss")) if rng.get(key)]
        console.print(f"fitted range (outside it, every prediction is flagged as an extrapolation): {', '.join(spans)}")
    for rep in reports:
        t = Table(title=f"{rep.law.name}", title_justify="left")
        t.add_column("param")
        t.add_column("value", justify="right")
        if rep.boot is not None:
            lvl = int(round(rep.boot.level * 100))
            t.add_column(f"{lvl}% low", justify="right")
            t.add_column(f"{lvl}% high", justify="right")
        for name, value in rep.law.params_.items():
            row = [name, _fmt(value)]
            if rep.boot is not None:
                row += [_fmt(rep.boot.low[name]), _fmt(rep.boot.high[name])]
            t.add_row(*row)
        console.print(t)
    v = Table(title="validation", title_justify="left")
    v.add_column("law")
    for col in ("set", "runs", "MSE", "R^2", "Spearman"):
        v.add_column(col, justify="right")
    for rep in reports:
        val = rep.validation
        rows = [("fit", val.fit), ("all (paper)", val.all)] + ([("held out", val.held_out)] if val.held_out else [])
        for label, s in rows:
            v.add_row(rep.law.name, label, str(s.n_runs), f"{s.mse:.6f}", f"{s.r2:.5f}", _fmt(round(s.spearman, 4)))
    console.print(v)
    g = Table(title="Spearman per size group (all runs of the group)", title_justify="left")
    g.add_column("group")
    g.add_column("runs", justify="right")
    for rep in reports:
        g.add_column(rep.law.name, justify="right")
    for i, grp in enumerate(first.validation.per_group):
        g.add_row(grp.group, str(grp.n_runs), *[_fmt(round(r.validation.per_group[i].spearman, 3)) for r in reports])
    console.print(g)
    for rep in reports:
        print_warnings(rep.warnings, context=rep.law.name)
    for key, path in files.items():
        console.print(f"{key}: {path}")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
