"""`infscale tts run CONFIG` and `infscale tts train`: thin wrappers over `infscale.tts.core.runner` / `infscale.tts.own_models.train`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def run_cmd(
    config: Path = typer.Argument(..., help="YAML run config (see src/infscale/recipes/tts_*.yaml)."),
    max_problems: int = typer.Option(None, help="Override the config's max_problems."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run strategies on a task; append every problem's candidates and FLOPs ledger to records.jsonl (resumable)."""
    import json
    from dataclasses import asdict

    from infscale.configio import check_number
    from infscale.tts.core.config import load_config
    from infscale.tts.core.runner import run

    check_number("--max-problems", max_problems, low=1, inclusive=True)
    cfg = load_config(config)
    if max_problems is not None:
        cfg = cfg.model_copy(update={"max_problems": max_problems})
    summary = run(cfg)  # progress: a bar on a terminal, one line per unit otherwise (standard error)
    if json_out:
        print(json.dumps(asdict(summary)))
    else:
        _print_summary(cfg.run, summary)
    if summary.failed:
        print(f"error: {summary.failed} of {summary.written} problems failed (recorded with their error); rerun "
              "the same command to retry them", file=sys.stderr)
        raise typer.Exit(1)

def train_cmd(
    out_dir: Path = typer.Option(Path("infscale-out/tts-models"), help="Where arith_policy.pt, arith_lm.pt and "
                                                                       "arith_prm.pt go."),
    policy_steps: int = typer.Option(600, help="Optimizer steps of the policy (d64x4)."),
    lm_steps: int = typer.Option(750, help="Optimizer steps of the PRM's language model (d128x4)."),
    seed: int = typer.Option(0),
    prm_data: str = typer.Option("likelihood", help="PRM: 'likelihood' (the language model's token likelihoods, "
                                                    "calibrated on the policy's samples labelled by the exact "
                                                    "checker), 'policy' (a tag head fine-tuned on those samples) or "
                                                    "'injected' (a tag head on errors injected into reference "
                                                    "solutions)."),
    prm_problems: int = typer.Option(1200, help="Problems the policy samples 4 solutions of (likelihood, policy)."),
    prm_steps: int = typer.Option(400, help="Optimizer steps of a tag-head PRM (policy, injected)."),
) -> None:
    """Train the project's own small policy and PRM on the synthetic arithmetic task (CPU; budgets in steps, so a
    busy machine trains the same models, only slower: about 15 minutes on 2 cores)."""
    from infscale.configio import check_number
    from infscale.errors import InputError
    from infscale.tts.own_models.train import PRM_DATA, train_policy_and_prm

    for flag, value in (("--policy-steps", policy_steps), ("--lm-steps", lm_steps), ("--prm-steps", prm_steps)):
        check_number(flag, value, low=1, inclusive=True, high=1_000_000)
    check_number("--seed", seed, inclusive=True)
    check_number("--prm-problems", prm_problems, low=1, inclusive=True, high=1_000_000)
    if prm_data not in PRM_DATA:
        raise InputError(f"--prm-data {prm_data!r}: expected one of {', '.join(PRM_DATA)}")
    for kind, metrics in train_policy_and_prm(out_dir, policy_steps, lm_steps, seed, prm_data, prm_problems,
                                              prm_steps).items():
        print(f"{kind}: {metrics}")


def _print_summary(run_name: str, summary) -> None:
    from rich.table import Table

    from infscale.cli.output import console as cli_console
    from infscale.tts.core.runner import read_records

    records = [r for r in read_records(Path(summary.records_path)) if r.error is None]
    table = Table(title=f"{run_name} (reward: {summary.reward}): {summary.written} written, {summary.skipped} resumed, "
                        f"{summary.failed} failed")
    for col in ("strategy", "budget", "problems", "majority acc", "weighted acc", "tokens/problem",
                "FLOPs/problem", "seed-B FLOPs"):
        table.add_column(col, justify="right" if col != "strategy" else "left")
    groups: dict[tuple[str, int], list] = {}
    for r in records:
        groups.setdefault((r.strategy, r.budget), []).append(r)
    for (strategy, budget), rs in sorted(groups.items()):
        def acc(key: str, rs: list = rs) -> str:
            vals = [r.correct[key] for r in rs if key in r.correct]
            return f"{sum(vals) / len(vals):.3f}" if vals else "-"
        n = len(rs)
        table.add_row(strategy, str(budget), str(n), acc("majority_vote"), acc("weighted_vote"),
                      f"{sum(r.ledger.generated_tokens for r in rs) / n:.0f}",
                      f"{sum(r.ledger.total_flops for r in rs) / n:.3g}",
                      f"{sum(r.ledger.seed_b_flops for r in rs) / n:.3g}")
    cli_console().print(table)
    print(f"records: {summary.records_path}")


def register(tts_app: typer.Typer) -> None:
    tts_app.command("run")(run_cmd)
    tts_app.command("train")(train_cmd)
