"""`infscale tts mini [RECIPE]`: Wu et al. 2025 (REBASE) in miniature (thin wrapper over `infscale.workflows.tts_mini`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json


def mini_cmd(
    recipe: str = typer.Argument(None, help="Study recipe: a YAML path or a bundled name (default: wu2025_mini)."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: infscale-out/tts-mini-<recipe name>, "
                             "so the same command resumes)."),
    quick: bool = typer.Option(False, "--quick", help="The same kind of result, sooner: the same three models and "
                               "training steps on problems no harder than the evaluation's, 20 problems, the two "
                               "smallest budgets. At most 25 minutes on a busy 2-core CPU (measured: 7 min idle, "
                               "22 min 20 s beside a CPU hog, the same numbers both times, before the scheduler; the full study: 23 min)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write the accuracy-vs-FLOPs figures."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Train policies of several sizes and a PRM on synthetic arithmetic (CPU), run greedy, sampling (MV, BoN, WV),
    beam, MCTS and REBASE at several budgets, and report whether smaller models with REBASE match or beat larger
    ones with majority voting at no more FLOPs (ours, Wu et al.'s and a memory-aware accounting), then again with rewards
of set quality (the PRM-quality crossover). Resumable: rerun to continue."""

    from infscale.configio import default_out  # lazy: pydantic
    from infscale.workflows.tts_mini import run_study  # lazy: numpy, pydantic
    from infscale.workflows.tts_mini_config import load_mini_config  # lazy: pydantic

    cfg = load_mini_config(recipe)
    if quick:
        cfg = cfg.quick()
    out = out or default_out("tts-mini", cfg.name)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if as_json else (lambda msg: print(msg, flush=True))
    report = run_study(cfg, out, log=log, plot=plot)
    if as_json:
        emit_json(report.to_json())
        return
    _print(report, out)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _print(report, out: Path) -> None:
    console = cli_console()
    t = Table(title=f"{report.name}: policies (greedy accuracy, 95% interval)")
    for col in ("policy", "params", "train steps", "train s", "final loss", "greedy"):
        t.add_column(col, justify="left" if col == "policy" else "right")
    for m in report.models:
        ci = m["greedy_ci"]
        greedy = _pct(m["greedy_accuracy"]) + ("" if ci is None else f" [{_pct(ci[0])}, {_pct(ci[1])}]")
        t.add_row(m["name"], f"{m['n_params']:,}", str(m["steps"]), f"{m['train_s']:.0f}", f"{m['final_loss']:.4f}",
                  greedy)
    console.print(t)
    prm = report.prm
    console.print(f"PRM {prm['name']}" + (f" ({prm['n_params']:,} params)" if "n_params" in prm else "")
                  + f": step AUC on held-out corrupted solutions {prm['step_auc']:.3f}")
    for acc, front in report.frontier.items():
        f = Table(title=f"Pareto frontier ({acc} FLOPs)")
        for col in ("policy", "strategy", "n", "FLOPs/problem", "accuracy"):
            f.add_column(col, justify="left" if col in ("policy", "strategy") else "right")
        for p in front:
            f.add_row(p["model"], p["strategy"], str(p["n"]), f"{p['flops_used']:.3g}", _pct(p["accuracy"]))
        console.print(f)
    v = Table(title=f"smaller + {report.small_strategy} vs larger + {report.large_strategy}, within the larger one's "
                    "FLOPs")
    for col in ("FLOPs", "larger", "n", "FLOPs/problem", "acc", "smaller", "n ", "FLOPs/problem ", "acc ", "verdict"):
        v.add_column(col.strip(), justify="left" if col.strip() in ("FLOPs", "larger", "smaller", "verdict")
                     else "right")
    for x in report.verdicts:
        none = x.small_accuracy is None
        v.add_row(x.accounting, x.large, str(x.large_n), f"{x.large_flops:.3g}", _pct(x.large_accuracy), x.small,
                  "-" if none else str(x.small_n), "-" if none else f"{x.small_flops:.3g}", _pct(x.small_accuracy),
                  {"small": "smaller wins", "tie": "tie", "large": "larger wins", "none": "no smaller point"}[x.outcome])
    console.print(v)
    if report.crossover:
        c = Table(title=f"PRM-quality crossover: smaller + {report.small_strategy} steered by a noisy verifier of "
                        f"each outcome AUC vs larger + {report.large_strategy}")
        for col in ("reward AUC", "FLOPs", "smaller wins", "tie", "larger wins", "no smaller point", "mean gap"):
            c.add_column(col, justify="left" if col == "FLOPs" else "right")
        for r in report.crossover:
            gap = "-" if r["mean_gap_points"] is None else f"{r['mean_gap_points']:+.1f} pts"
            c.add_row(f"{r['reward_auc']:g}", r["accounting"], str(r["small"]), str(r["tie"]), str(r["large"]),
                      str(r["none"]), gap)
        console.print(c)
        if "outcome_auc_on_samples" in prm:
            print(f"the study's PRM on the policies' own samples: outcome AUC {prm['outcome_auc_on_samples']:.3f}")
    print(f"records: {report.n_records} ({report.n_failed} failed); training {report.train_s:.0f} s, strategies "
          f"{report.run_s:.0f} s; report, points and figures in {out}")
    for line in report.summary_lines():
        print(line)


def register(tts_app: typer.Typer) -> None:
    tts_app.command("mini")(mini_cmd)
