"""Benchmark: accuracy-at-n curves (MV, WV, BoN, pass@k) for 500 problems x pool 256 x 1,000 bootstrap replicates.

Vectorised `infscale.tts.analysis.accuracy_at_n` against a straightforward Python loop computing the same estimand
(per replicate: resample the problems, draw one random n-subset per problem, vote with a Counter / dict, take the best
score; pass@k by its formula). The loop is timed on a few replicates and scaled linearly to 1,000 (each replicate does
the same work); the printout says so. Both estimates are compared (they agree within Monte Carlo error).

Run under the shared CPU lock: ``flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_tts_analysis.py``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import Counter

import numpy as np

from infscale.tts.analysis import CandidatePools, accuracy_at_n, default_ns


def synthetic_pools(n_problems: int, pool_size: int, seed: int) -> CandidatePools:
    """Realistic pools: 4 frequent answers (Dirichlet), a tail of 60 rare wrong answers, 5% unanswered; class 0 is
    correct in 80% of problems; scores = class quality + noise."""
    rng = np.random.default_rng(seed)
    main = rng.dirichlet(np.full(4, 0.7), size=n_problems) * 0.8
    tail = np.full((n_problems, 60), 0.15 / 60)
    probs = np.concatenate([main, tail], axis=1)
    full = np.concatenate([probs, np.full((n_problems, 1), 0.05)], axis=1)
    cum = np.cumsum(full, axis=1)
    cum[:, -1] = 1.0
    u = rng.random((n_problems, pool_size))
    ids = np.array([np.searchsorted(cum[i], u[i], side="right") for i in range(n_problems)])
    ids = np.where(ids >= probs.shape[1], -1, ids)
    quality = rng.random((n_problems, probs.shape[1])) * 0.5
    quality[:, 0] += 0.3
    scores = np.clip(np.take_along_axis(quality, np.clip(ids, 0, None), axis=1)
                     + 0.15 * rng.standard_normal(ids.shape), 0.0, 1.0)
    scores = np.where(ids >= 0, scores, np.nan)
    correct = np.where(rng.random(n_problems) < 0.8, 0, -1)
    return CandidatePools(answer_ids=ids, scores=scores, correct_ids=correct)


def loop_accuracy(pools: CandidatePools, ns: list[int], n_reps: int, seed: int) -> dict[str, list[float]]:
    """The straightforward version: Python loops over replicates, n and problems."""
    rnd = random.Random(seed)
    answers = pools.answer_ids.tolist()
    scores = [[s if math.isfinite(s) else -math.inf for s in row] for row in pools.scores.tolist()]
    gold = pools.correct_ids.tolist()
    p_count, m = pools.n_problems, pools.pool_size
    n_correct = [sum(1 for a in ans if g >= 0 and a == g) for ans, g in zip(answers, gold, strict=True)]
    sums = {a: [0.0] * len(ns) for a in ("majority_vote", "weighted_vote", "best_of_n", "pass")}
    for _ in range(n_reps):
        sample = [rnd.randrange(p_count) for _ in range(p_count)]
        for j, n in enumerate(ns):
            tot = {a: 0.0 for a in sums}
            for p in sample:
                ans, sc, g = answers[p], scores[p], gold[p]
                subset = rnd.sample(range(m), n)
                votes = Counter(ans[i] for i in subset if ans[i] >= 0)
                if g >= 0 and g in votes:
                    top = max(votes.values())
                    if votes[g] == top:
                        tot["majority_vote"] += 1.0 / sum(1 for v in votes.values() if v == top)
                wsum: dict[int, float] = {}
                for i in subset:
                    if ans[i] >= 0:
                        wsum[ans[i]] = wsum.get(ans[i], 0.0) + max(sc[i] if sc[i] > -math.inf else 0.0, 1e-9)
                if g >= 0 and g in wsum:
                    top = max(wsum.values())
                    if wsum[g] == top:
                        tot["weighted_vote"] += 1.0 / sum(1 for v in wsum.values() if v == top)
                best = max(sc[i] for i in subset)
                tops = [i for i in subset if sc[i] == best]
                tot["best_of_n"] += sum(1.0 for i in tops if g >= 0 and ans[i] == g) / len(tops)
                tot["pass"] += 1.0 - (math.comb(m - n_correct[p], n) / math.comb(m, n))
            for a in sums:
                sums[a][j] += tot[a] / p_count
    return {a: [v / n_reps for v in vals] for a, vals in sums.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--pool", type=int, default=256)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--loop-reps", type=int, default=3, help="replicates the loop is timed on (scaled linearly)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    pools = synthetic_pools(args.problems, args.pool, seed=0)
    ns = [int(n) for n in default_ns(args.pool)]
    aggs = ("majority_vote", "weighted_vote", "best_of_n", "pass")
    print(f"{args.problems} problems x pool {args.pool} x {args.bootstrap} bootstraps, n = {ns}, aggregations {aggs}")

    vec_times, curves = [], None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        curves = accuracy_at_n(pools, ns, aggregations=aggs, n_bootstrap=args.bootstrap, random_state=r)
        vec_times.append(time.perf_counter() - t0)
    vec_s = statistics.median(vec_times)
    print(f"vectorised: median {vec_s:.3f} s over {args.repeats} runs ({', '.join(f'{t:.3f}' for t in vec_times)})")

    loop_times, loop_acc = [], None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        loop_acc = loop_accuracy(pools, ns, args.loop_reps, seed=r)
        loop_times.append(time.perf_counter() - t0)
    per_rep = statistics.median(loop_times) / args.loop_reps
    loop_s = per_rep * args.bootstrap
    print(f"python loop: median {statistics.median(loop_times):.3f} s for {args.loop_reps} replicates "
          f"-> scaled linearly to {args.bootstrap} replicates: {loop_s:.1f} s (timed on a subset, not run in full)")

    assert curves is not None and loop_acc is not None
    inside = total = 0
    for a in aggs:
        loop_a = np.asarray(loop_acc[a])
        diff = np.max(np.abs(loop_a - curves[a].accuracy))
        ok_n = (loop_a >= curves[a].ci_low - 1e-12) & (loop_a <= curves[a].ci_high + 1e-12)
        inside, total = inside + int(ok_n.sum()), total + ok_n.size
        print(f"  {a:10s} acc@n {np.round(curves[a].accuracy, 3).tolist()}  max |loop - vectorised| = {diff:.4f}")
    print(f"loop estimates (mean of its {args.loop_reps} replicates) inside the vectorised 95% bootstrap interval: "
          f"{inside} of {total}")
    ok = "meets" if vec_s < 5.0 else "MISSES"
    print(f"vectorised time {vec_s:.2f} s ({ok} the < 5 s target)")
    print(f"speed-up vs python loop: {loop_s / vec_s:.1f}x")


if __name__ == "__main__":
    main()
