"""Tree search vs plain sampling at equal n, same backend (the project's own torch policy + PRM, CPU).

For sampling, beam search and REBASE at the same n on the same arithmetic problems, measures per repeat:
- controller overhead = (wall - generation - scoring) / wall: the time the strategy code itself costs;
- throughput = generated tokens / wall time (end to end) and generated tokens / generation time (generator only).
Acceptance (issue 6): overhead < 5 % of wall time; tree-search tokens/s >= 0.8x sampling's.
The policy and PRM reuse K/V of prefixes they ran before (tts/prefix_cache.py); both stores are emptied before every
(strategy, problem) run, outside the timed region, so a run reuses only what it computed itself, never another
strategy's or repeat's work on the same problem.
Medians over repeats; the last line is the headline ratio. Run under the CPU lock:
    flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_tts.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--problems", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--difficulty", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefix-cache-mb", type=float, default=64.0,
                    help="prefix K/V store of the policy and of the PRM (0: off, every prefix recomputed)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from infscale.tts.backends.torch import TorchGenerator
    from infscale.tts.core.config import SearchSettings
    from infscale.tts.core.rewards import TorchPRM
    from infscale.tts.core.scheduler import Engine
    from infscale.tts.core.tasks import ArithmeticTask

    task = ArithmeticTask(n_problems=args.problems, difficulty=args.difficulty, seed=777)
    problems = task.load()
    gen = TorchGenerator(seed=0, prefix_cache_mb=args.prefix_cache_mb)
    prm = TorchPRM(task, prefix_cache_mb=args.prefix_cache_mb)
    eng = Engine(task, gen, prm, SearchSettings(max_tokens=160, max_step_tokens=32, depth_cap=10))
    eng.run("sampling", problems[0], 4)  # warm-up
    strategies = ["sampling", "beam", "rebase"]
    rows: dict[str, dict[str, list[float]]] = {s: {"wall": [], "gen": [], "score": [], "tok": [], "ovh": [],
                                                   "tps": [], "gtps": [], "acc": []} for s in strategies}
    for rep in range(args.repeats):
        for s in strategies:  # interleaved so drifts hit every strategy alike
            wall = gen_s = score_s = 0.0
            tokens = correct = 0
            for p in problems:
                for store in (gen.prefix_store, prm.prefix_store):
                    if store is not None:
                        store.clear()
                t0 = time.perf_counter()
                rec = eng.run(s, p, args.n, seed=rep)
                wall += time.perf_counter() - t0
                gen_s += rec.generation_s
                score_s += rec.scoring_s
                tokens += rec.ledger.generated_tokens
                correct += bool(rec.correct.get("weighted_vote"))
            r = rows[s]
            r["wall"].append(wall)
            r["gen"].append(gen_s)
            r["score"].append(score_s)
            r["tok"].append(tokens)
            r["ovh"].append((wall - gen_s - score_s) / wall)
            r["tps"].append(tokens / wall)
            r["gtps"].append(tokens / gen_s)
            r["acc"].append(correct / len(problems))
    med = {s: {k: statistics.median(v) for k, v in r.items()} for s, r in rows.items()}
    print(f"policy {gen.shape.label} ({gen.shape.n_params:,} params), PRM {prm.shape.label}; n={args.n}, "
          f"{args.problems} problems x {args.repeats} repeats, {args.threads} threads, prefix K/V store "
          f"{args.prefix_cache_mb:g} MB; medians")
    print(f"{'strategy':<10}{'wall s':>9}{'gen s':>8}{'score s':>9}{'tokens':>9}{'overhead':>10}{'tok/s':>9}"
          f"{'gen tok/s':>11}{'wv acc':>8}")
    for s in strategies:
        m = med[s]
        print(f"{s:<10}{m['wall']:>9.2f}{m['gen']:>8.2f}{m['score']:>9.2f}{m['tok']:>9.0f}{m['ovh']:>9.2%}"
              f"{m['tps']:>9.0f}{m['gtps']:>11.0f}{m['acc']:>8.2f}")
    for s in ("beam", "rebase"):
        print(f"{s}: controller overhead {med[s]['ovh']:.2%} (< 5%: {med[s]['ovh'] < 0.05}); tokens/s vs sampling "
              f"{med[s]['tps'] / med['sampling']['tps']:.2f}x end to end, "
              f"{med[s]['gtps'] / med['sampling']['gtps']:.2f}x in the generator (>= 0.8x: "
              f"{med[s]['tps'] / med['sampling']['tps'] >= 0.8})")
    worst = min(med[s]["tps"] / med["sampling"]["tps"] for s in ("beam", "rebase"))
    print(f"tree-search tokens/s vs sampling (worst of beam, rebase): {worst:.2f}x")


if __name__ == "__main__":
    main()
