"""`infscale tts run CONFIG` and `infscale tts train`: thin wrappers over `infscale.workflows.tts_run` /
`infscale.tts.own_models.train`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json
from infscale.errors import InputError, RunFailed


def run_cmd(
    config: str = typer.Argument(..., help="YAML run config, or a bundled recipe name (tts_arith_own, tts_gsm_smollm2)."),
    out: Path = typer.Option(None, "--out", help="Run directory (records.jsonl, config.yaml); default: the config's "
                                                 "out_dir/run."),
    max_problems: int = typer.Option(None, help="Override the config's max_problems."),
    shard: str = typer.Option(None, "--shard", help="I/K: run every K-th unit from the I-th (a Slurm array task), "
                                                    "into records.shard-I-of-K.jsonl; `tts analyze` merges them."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run strategies on a task; append every problem's candidates and FLOPs ledger to records.jsonl (resumable).
    Many problems run at once (the scheduler); `executor: ray` in the config spreads them over Ray actors."""
    from infscale.configio import check_number  # lazy: pydantic
    from infscale.workflows.tts_run import load_run_config, parse_shard, run_tts  # lazy: numpy, pydantic

    check_number("--max-problems", max_problems, low=1, inclusive=True)
    where = parse_shard(shard) if shard is not None else (1, 1)
    cfg = load_run_config(config)
    if max_problems is not None:
        cfg = cfg.model_copy(update={"max_problems": max_problems})
    result = run_tts(cfg, out=out, shard=where)  # progress: a bar on a terminal, a line per unit otherwise (stderr)
    if json_out:
        emit_json(result.to_dict())
    else:
        _print_summary(result)
    if result.failed:
        raise RunFailed(f"{result.failed} of {result.written} problems failed (recorded with their error); rerun "
                        "the same command to retry them")


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
    from infscale.configio import check_number  # lazy: pydantic
    from infscale.tts.own_models.train import PRM_DATA, train_policy_and_prm  # lazy: numpy, pydantic, torch

    for flag, value in (("--policy-steps", policy_steps), ("--lm-steps", lm_steps), ("--prm-steps", prm_steps)):
        check_number(flag, value, low=1, inclusive=True, high=1_000_000)
    check_number("--seed", seed, inclusive=True)
    check_number("--prm-problems", prm_problems, low=1, inclusive=True, high=1_000_000)
    if prm_data not in PRM_DATA:
        raise InputError(f"--prm-data {prm_data!r}: expected one of {', '.join(PRM_DATA)}")
    for kind, metrics in train_policy_and_prm(out_dir, policy_steps, lm_steps, seed, prm_data, prm_problems,
                                              prm_steps).items():
        print(f"{kind}: {metrics}")


def _print_summary(result) -> None:
    title = (f"{result.run}{f' shard {result.shard}' if result.shard else ''} (reward: {result.reward}): "
             f"{result.written} written, {result.skipped} resumed, {result.failed} failed; "
             f"{result.generated_tokens:,} tokens in {result.wall_s:.1f} s ({result.tokens_per_s:,.0f} tokens/s, "
             f"{result.executor} executor)")
    table = Table(title=title)
    for col in ("strategy", "budget", "problems", "majority acc", "weighted acc", "tokens/problem",
                "policy FLOPs/problem", "reward FLOPs/problem", "Wu et al. FLOPs"):
        table.add_column(col, justify="right" if col != "strategy" else "left")

    def acc(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for r in result.rows:
        table.add_row(r.strategy, str(r.budget), str(r.problems) + (f" ({r.failed} failed)" if r.failed else ""),
                      acc(r.majority_accuracy), acc(r.weighted_accuracy), f"{r.tokens_per_problem:.0f}",
                      f"{r.policy_flops_per_problem:.3g}", f"{r.reward_flops_per_problem:.3g}",
                      f"{r.wu2025_flops_per_problem:.3g}")
    cli_console().print(table)
    print(f"records: {result.records_path}")


def register(tts_app: typer.Typer) -> None:
    tts_app.command("run")(run_cmd)
    tts_app.command("train")(train_cmd)
