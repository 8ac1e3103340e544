"""`infscale tts eval-reward RUNS...`: the reward's outcome/step AUC, top-1 when solvable and position bias on the
policy's own candidates. Thin: `infscale.workflows.reward_eval` computes, this prints."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json_line
from infscale.errors import InputError
from infscale.workflows.reward_eval import evaluate_processbench, evaluate_runs, parse_params


def eval_reward_cmd(
    runs: list[Path] = typer.Argument(None, help="Run directories of `infscale tts run` (records + config)."),
    processbench: Path = typer.Option(None, "--processbench", help="Score a ProcessBench-format file (problem, "
                                      "steps, label) with --reward instead of runs."),
    reward: str = typer.Option(None, "--reward", help="The reward model for --processbench (registered name)."),
    reward_param: list[str] = typer.Option(None, "--reward-param", help="KEY=VALUE setting of the reward "
                                           "(repeatable; e.g. path=/models/Qwen2.5-Math-PRM-7B)."),
    threshold: float = typer.Option(0.5, "--threshold", help="A step scored below it is the reward's call of the "
                                    "earliest error (ProcessBench)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object per run."),
) -> None:
    """How well a reward ranks the policy's own solutions (outcome and step AUC, top-1, position bias, ProcessBench
    F1, best-of-n with and without it), or finds the earliest error of a ProcessBench-format file."""

    if processbench is not None:
        if runs or not reward:
            raise InputError("--processbench scores a file with --reward NAME (and --reward-param KEY=VALUE), no runs")
        pb = evaluate_processbench(processbench, reward, parse_params(reward_param or []), threshold)
        if json_out:
            emit_json_line(pb.to_dict())
            return
        s = pb.score
        cli_console().print(
            f"ProcessBench on {pb.path} with {pb.reward} (threshold {s.threshold}): F1 {s.f1:.3f} | accuracy on "
            f"erroneous {s.error_accuracy:.3f} ({s.n_erroneous}) | on correct {s.correct_accuracy:.3f} "
            f"({s.n_correct}) | step AUC {pb.step_auc:.3f} over {pb.n_steps} steps, {pb.reward_tokens} tokens read")
        return
    results = evaluate_runs(runs or [], threshold)
    if json_out:
        for r in results:
            emit_json_line(r.to_dict())
        return
    _print(results)


def _name(row: object, rows: list) -> str:
    """The strategy's label, with its registered name where several strategies of the run share the label (the
    sampling strategies: ``sampling (best_of_n)``)."""
    label, name = row.strategy_label, row.strategy  # type: ignore[attr-defined]
    shared = len({x.strategy for x in rows if x.strategy_label == label}) > 1
    return f"{label} ({name})" if shared and name != label else label


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def _print(results: list) -> None:
    console = cli_console()
    t = Table(title="reward quality on the policy's own candidates")
    for col in ("run", "reward", "outcome AUC", "step AUC", "top-1", "random", "PB F1", "pos. bias", "cands",
                "solvable"):
        t.add_column(col, justify="right")
    for r in results:
        rows = [(f"{Path(r.run).name} (all pooled)", r.quality)] + [
            (f"  {_name(b, r.by_budget)} n={b.budget}", b.quality) for b in r.by_budget]
        for name, q in rows:
            pb = q.processbench
            t.add_row(name, r.reward or "-", _fmt(q.outcome_auc), _fmt(q.step_auc), _fmt(q.top1_when_solvable),
                      _fmt(q.top1_random), _fmt(pb.f1 if pb else None), _fmt(q.position_bias),
                      f"{q.n_correct}/{q.n_candidates}", f"{q.n_solvable}/{q.n_problems}")
    console.print(t)
    for r in results:
        if not r.best_of_n:
            continue
        b = Table(title=f"{Path(r.run).name}: best-of-n with the reward vs without it (accuracy)")
        for col in ("strategy", "n", "best-of-n", "majority vote", "random pick", "pass@n (oracle)"):
            b.add_column(col, justify="right")
        for row in r.best_of_n:
            b.add_row(_name(row, r.best_of_n), str(row.n), _fmt(row.best_of_n), _fmt(row.majority_vote),
                      _fmt(row.random_pick), _fmt(row.oracle))
        console.print(b)
    console.print("top-1: how often the top-scored candidate is correct on problems with a correct one (random: what a "
                  "random scorer gets); PB F1: ProcessBench's F1 of the earliest-error call (tasks that check steps); "
                  "pos. bias: Spearman of a correct step's index vs its score (0 = unbiased)")


def register(tts_app: typer.Typer) -> None:
    tts_app.command("eval-reward")(eval_reward_cmd)
