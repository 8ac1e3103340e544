"""`infscale tts eval-reward RUNS...`: the reward's outcome/step AUC, top-1 when solvable and position bias on the
policy's own candidates. Thin: `infscale.workflows.reward_eval` computes, this prints."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from infscale.jsonsafe import finite


def eval_reward_cmd(
    runs: list[Path] = typer.Argument(None, help="Run directories of `infscale tts run` (records + config)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object per run."),
) -> None:
    """How well each run's reward ranks the policy's own solutions (outcome and step AUC, top-1, position bias)."""
    from rich.table import Table

    from infscale.cli.output import console as cli_console
    from infscale.workflows.reward_eval import evaluate_runs

    results = evaluate_runs(runs or [])
    if json_out:
        for r in results:
            typer.echo(json.dumps(finite(r.to_dict())))
        return
    t = Table(title="reward quality on the policy's own candidates")
    for col in ("run", "reward", "outcome AUC", "step AUC", "top-1", "random", "pos. bias", "cands", "solvable"):
        t.add_column(col, justify="right")

    def fmt(x: float | None) -> str:
        return "-" if x is None or x != x else f"{x:.3f}"

    for r in results:
        rows = [(f"{Path(r.run).name} (all pooled)", r.quality)] + [
            (f"  {b.strategy_label} n={b.budget}", b.quality) for b in r.by_budget]
        for name, q in rows:
            t.add_row(name, r.reward or "-", fmt(q.outcome_auc), fmt(q.step_auc), fmt(q.top1_when_solvable),
                      fmt(q.top1_random), fmt(q.position_bias), f"{q.n_correct}/{q.n_candidates}",
                      f"{q.n_solvable}/{q.n_problems}")
    cli_console().print(t)
    print("top-1: how often the top-scored candidate is correct on problems with a correct one (random: what a random "
          "scorer gets); pos. bias: Spearman of a correct step's index vs its score (0 = unbiased)")


def register(tts_app: typer.Typer) -> None:
    tts_app.command("eval-reward")(eval_reward_cmd)
