"""`infscale demo`: fit, measure, calibrate, plan and compare test-time strategies end to end; one run directory and a
self-contained HTML report. Thin: the work is `infscale.workflows.demo.run_demo`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from infscale.cli.output import brief_warnings, emit_json
from infscale.cli.output import console as cli_console


def demo(
    out: Path = typer.Option(None, "--out", help="Run directory (default ./infscale-out/demo-<UTC time>). Rerunning "
                             "into the same directory reuses its latency and tts records."),
    quick: bool = typer.Option(False, "--quick", help="Reduced demo (fewer shapes, runs and problems; under a minute)."),
    config: Path = typer.Option(None, "--config", help="YAML laid over the default (or --quick) config; unknown keys "
                                "are errors. The resolved config is saved as config.yaml in the run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
) -> None:
    """The main job: laws, latency, plans (1B on an A100, micro on this machine), test-time compute, HTML report."""

    from infscale.workflows.demo import default_out_dir, load_demo_config, run_demo  # lazy: pydantic

    cfg = load_demo_config(config, quick=quick)
    out = out or default_out_dir()
    err = cli_console(stderr=True)
    t0 = time.perf_counter()

    def progress(step: str, message: str) -> None:
        err.print(f"[dim]{time.perf_counter() - t0:6.1f}s[/] [bold cyan]{step:8}[/] {message}")

    summary = run_demo(cfg, out, progress=progress)
    if as_json:
        emit_json(summary)
        return
    _print(summary)


def _print(s: dict) -> None:
    console = cli_console()
    t = Table(title="infscale demo", title_justify="left")
    t.add_column("step")
    t.add_column("result")
    main = s["laws"]["fits"][0]
    held = main["validation"].get("held_out") or main["validation"]["all"]
    t.add_row("laws", f"{main['law']}: held-out R^2 {held['r2']:.4f}, Spearman {held['spearman']:.3f} "
                      f"({held['n_runs']} runs)")
    lat = s["latency"]
    med = lat["held_out_median_abs_error"]
    t.add_row("latency", f"{len(lat['rows'])} shapes timed; calibrated on {len(lat['fit_on'])}, held-out decode "
                         f"error median {'-' if med is None else f'{100 * med:.1f}%'}")
    a = s["plan"]["a100"]
    t.add_row("plan A100", f"{a['best']['label']} (N={a['best']['n_params']:.3g}, loss {a['best']['loss']:.4f}, "
                           f"{a['best']['latency_s']:.3f} s) of {a['n_candidates']} shapes in {a['plan_seconds']:.3f} s")
    if a.get("warnings"):
        t.add_row("", f"[yellow]warning[/]: {escape(brief_warnings(a['warnings']))} (report: the lines in full)")
    m = s["plan"]["micro"]
    rec, base = m["recommended"], m["baseline"]
    t.add_row("plan micro", f"{rec['shape']} (N={rec['n_params']:.3g}, own law {m['preferred_law']}: loss "
                            f"{rec['predicted_loss']:.4f}, decode {rec['predicted_decode_s'] * 1e3:.1f} ms) vs deep "
                            f"{base['shape']} ({base['predicted_loss']:.4f}, {base['predicted_decode_s'] * 1e3:.1f} ms)")
    if rec.get("warnings"):
        t.add_row("", f"[yellow]warning[/]: {escape(brief_warnings(rec['warnings']))}")
    v = m.get("verification") or []
    if len(v) == 2:
        t.add_row("", f"verified (bundled, our machine): {v[0]['shape']} measured loss {v[0]['measured_loss']:.4f} "
                      f"({100 * v[0]['loss_error']:+.2f}% vs predicted), {v[1]['measured_decode_s'] / v[0]['measured_decode_s']:.2f}x "
                      f"faster than {v[1]['shape']} at {100 * (v[0]['measured_loss'] / v[1]['measured_loss'] - 1):+.2f}% loss")
    from infscale.tts.analysis import strategy_label  # lazy: numpy

    front = s["tts"]["frontier"]
    top = max(front, key=lambda p: p["accuracy"]) if front else None
    t.add_row("tts", f"{s['tts']['n_problems']} problems, {len(s['tts']['points'])} operating points; best on the "
                     "frontier " + (f"{top.get('label') or strategy_label(top['strategy'])} n={top['n']} {100 * top['accuracy']:.1f}%"
                                    if top else "-"))
    for r in s["tts"].get("matched_flops", []):
        if r["flops_ratio"] is not None:
            ratio = r["flops_ratio"]
            how = f"{ratio:.2f}x fewer" if ratio >= 1 else f"{1 / ratio:.2f}x more"
            t.add_row("", f"REBASE n={r['search_n']} reaches sampling's best {100 * r['target_accuracy']:.1f}% with "
                          f"{how} FLOPs ({'ours, PRM counted' if r['accounting'] == 'ours' else 'Wu et al., 2NT'})")
    if s.get("lifecycle"):
        b = s["lifecycle"]["best"]
        change = next((c for c in s["lifecycle"]["crossover"] if c.get("changes")), None)
        t.add_row("lifecycle", f"train {b['model']}, decode with {b['strategy']} n={b['n']} ({100 * b['accuracy']:.1f}%)"
                  + ("" if change is None else f"; from {change['queries']:.3g} queries: {change['model']} "
                                               f"{change['strategy']}"))
    t.add_row("time", f"{sum(v for k, v in s['timings_s'].items() if k != 'total_before_report'):.1f} s")
    console.print(t)
    console.print(f"report: {s['report']}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
