"""Seed B in miniature (issue item 4): are small policies + REBASE Pareto-optimal against larger ones + majority vote?

Drives the tts engine's public API: trains policy models of three sizes on the synthetic arithmetic task
(`infscale.tts.train_small.train`, skipped when the checkpoint exists), uses the bundled arithmetic PRM (or trains one
with ``--train-prm``), runs greedy, sampling (one pool, subsampled to MV / BoN / WV at n = 1, 2, 4, ...), beam, MCTS and
REBASE at several budgets with `infscale.tts.runner.run` (append-only, resumable), then analyses all records with
`infscale.tts.analysis` under both FLOPs accountings and reports, with figures, whether each smaller model with REBASE
matches or beats each larger model with majority voting at no more FLOPs. It reports what it finds, also when that
disagrees with the paper.

CPU-heavy: run under the shared lock, e.g.
``flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/seed_b_mini.py --out runs/seed_b_mini``
(``--quick``: a minutes-long smoke version with tiny training and few problems).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SIZES = {"mini-d64x2": (64, 2, 2), "mini-d128x4": (128, 4, 4), "mini-d192x6": (192, 6, 6)}


def train_models(out: Path, train_s: float, steps: int, train_prm: bool) -> tuple[dict[str, Path], Path | None]:
    from infscale.tts.train_small import SmallTrainConfig, train

    ckpts = {}
    for name, (d, layers, heads) in SIZES.items():
        path = out / "models" / f"{name}.pt"
        if not path.exists():
            print(f"training {name} (d_model {d}, {layers} layers, <= {train_s:.0f} s)", flush=True)
            train("policy", SmallTrainConfig(d_model=d, n_layers=layers, n_heads=heads, max_time_s=train_s,
                                             max_steps=steps), path, log_every=0)
        ckpts[name] = path
    prm = None
    if train_prm:
        prm = out / "models" / "prm-d128x4.pt"
        if not prm.exists():
            train("prm", SmallTrainConfig(max_time_s=train_s, max_steps=steps), prm, log_every=0)
    return ckpts, prm


def run_all(out: Path, ckpts: dict[str, Path], prm: Path | None, problems: int, budgets: list[int]) -> list[Path]:
    from infscale.tts.config import RunConfig
    from infscale.tts.runner import run

    dirs = []
    for name, ckpt in ckpts.items():
        cfg = RunConfig.model_validate({
            "run": name, "out_dir": str(out / "runs"), "model_name": name,
            "task": {"name": "arith", "params": {"n_problems": problems, "difficulty": 4, "seed": 1000}},
            "generator": {"name": "torch", "params": {"checkpoint": str(ckpt), "seed": 0}},
            "reward": {"name": "torch_prm", "params": {} if prm is None else {"checkpoint": str(prm)}},
            "strategies": [{"name": "greedy"}, {"name": "sampling", "budgets": [max(budgets)]},
                           {"name": "beam", "budgets": budgets}, {"name": "mcts", "budgets": budgets},
                           {"name": "rebase", "budgets": budgets}],
            "search": {"temperature": 1.0, "max_tokens": 160, "max_step_tokens": 32, "depth_cap": 10,
                       "rebase_temperature": 0.2},
        })
        summary = run(cfg)
        print(f"{name}: {summary.written} records written, {summary.skipped} already there, {summary.failed} failed",
              flush=True)
        dirs.append(Path(summary.records_path))
    return dirs


def verdicts(points, accounting: str) -> list[dict]:
    """Each smaller model's best REBASE point within each larger model's majority-vote budget."""
    out = []
    sizes = {p.model: p.n_params for p in points}
    for big in sorted({m for m in sizes}, key=sizes.get):
        for mv in (p for p in points if p.model == big and p.strategy == "sampling+majority"):
            budget = mv.flops_for(accounting)
            for small in (m for m in sizes if sizes[m] < sizes[big]):
                cands = [p for p in points if p.model == small and p.strategy.startswith("rebase+")
                         and p.flops_for(accounting) <= budget]
                best = max(cands, key=lambda p: p.accuracy, default=None)
                out.append({"accounting": accounting, "large": big, "large_n": mv.n, "large_flops": budget,
                            "large_acc": mv.accuracy, "small": small,
                            "small_strategy": None if best is None else best.strategy,
                            "small_n": None if best is None else best.n,
                            "small_flops": None if best is None else best.flops_for(accounting),
                            "small_acc": None if best is None else best.accuracy,
                            "small_wins": best is not None and best.accuracy >= mv.accuracy})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/seed_b_mini"))
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--train-s", type=float, default=150.0, help="wall-clock cap per model")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--train-prm", action="store_true", help="train a PRM instead of using the bundled one")
    ap.add_argument("--quick", action="store_true", help="smoke version: 20 s training, 4 problems, budgets 2 4")
    args = ap.parse_args()
    if args.quick:
        args.train_s, args.steps, args.problems, args.budgets = 20.0, 60, 4, [2, 4]

    ckpts, prm = train_models(args.out, args.train_s, args.steps, args.train_prm)
    record_files = run_all(args.out, ckpts, prm, args.problems, args.budgets)

    from infscale.report.tts_plots import plot_accuracy_vs_flops
    from infscale.tts.analysis import operating_points_from_records, pareto_frontier
    from infscale.tts.runner import read_records

    records = [r for f in record_files for r in read_records(f)]
    points, _ = operating_points_from_records(records, n_bootstrap=1000, random_state=0)
    report = {"n_records": len(records), "verdicts": [], "frontier": {}}
    for accounting in ("ours", "seed_b"):
        f = [p.flops_for(accounting) for p in points]
        front = [points[i] for i in pareto_frontier(f, [p.accuracy for p in points])]
        report["frontier"][accounting] = [(p.model, p.strategy, p.n, p.flops_for(accounting), p.accuracy)
                                          for p in front]
        report["verdicts"] += verdicts(points, accounting)
        plot_accuracy_vs_flops(points, args.out / f"accuracy_vs_flops_{accounting}.png", accounting=accounting,
                               title=f"seed B in miniature ({accounting} FLOPs)")
        print(f"\nPareto frontier ({accounting} FLOPs):")
        for m, s, n, fl, a in report["frontier"][accounting]:
            print(f"  {m:12s} {s:20s} n={n:<3d} {fl:10.3g} FLOPs  {100 * a:5.1f}%")
    print("\nsmaller model + REBASE vs larger model + majority vote, within the larger one's FLOPs:")
    for v in report["verdicts"]:
        small = "none within budget" if v["small_acc"] is None else (
            f"{v['small_strategy']} n={v['small_n']} {100 * v['small_acc']:.1f}% at {v['small_flops']:.3g}")
        print(f"  [{v['accounting']}] {v['large']} MV n={v['large_n']} {100 * v['large_acc']:.1f}% at "
              f"{v['large_flops']:.3g}  vs  {v['small']} {small}  -> {'small wins' if v['small_wins'] else 'large wins'}")
    (args.out / "seed_b_mini.json").write_text(json.dumps(report, indent=1))
    wins = [v["small_wins"] for v in report["verdicts"] if v["accounting"] == "ours"]
    print(f"\nsmaller+REBASE matches or beats larger+MV in {sum(wins)} of {len(wins)} comparisons (our FLOPs)")


if __name__ == "__main__":
    main()
