"""Benchmark: forecasting test-time scaling from a pilot (500 problems x pilot 16, to n = 1,024) against measuring it.

`infscale.tts.analysis.forecast` reads a pilot of 16 samples per problem and forecasts pass@n, majority vote, weighted
vote and best-of-n with 90% intervals on its grid of n up to 1,024. The baseline is what the forecast replaces once the
samples are paid for: `accuracy_at_n` (exact where cheap, unbiased Monte Carlo otherwise, 200 bootstrap replicates) on
the full pool of 1,024 samples per problem at the same n. Both on the same synthetic pools (class probabilities drawn
per problem, reward scores around a correct and a wrong mean), interleaved repeats, medians. Printed besides the
times: how far the forecast lands from the full-pool measurement (mean and max absolute error in points). The last
line is the headline: the forecast's time and its ratio to the measurement's.

    flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_tts_forecast.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from infscale.tts.analysis.accuracy import accuracy_at_n
from infscale.tts.analysis.forecast import forecast, pilot_pools
from infscale.tts.analysis.saturation import sample_pools


def pools_of(n_problems: int, pool_size: int, seed: int):
    rng = np.random.default_rng(seed)
    q = rng.beta(0.6, 0.9, n_problems)
    wrong = rng.dirichlet(np.full(3, 0.7), n_problems) * (1 - q)[:, None] * 0.85
    probs = np.concatenate([q[:, None], wrong], axis=1)
    means = np.tile(np.array([0.7, 0.45, 0.45, 0.45]), (n_problems, 1))
    return sample_pools(probs, np.zeros(n_problems, dtype=int), pool_size, random_state=seed + 1, score_means=means,
                        score_noise=0.15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--pilot", type=int, default=16)
    ap.add_argument("--pool", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    pools = pools_of(args.problems, args.pool, 0)
    pilot = pilot_pools(pools, args.pilot)
    t_fc, t_meas = [], []
    fc = meas = None
    for _ in range(args.repeats):  # interleaved
        t0 = time.perf_counter()
        fc = forecast(pilot, args.pool)
        t_fc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        meas = accuracy_at_n(pools, fc.curves["pass"].ns, n_bootstrap=200, random_state=0)
        t_meas.append(time.perf_counter() - t0)
    ns = fc.curves["pass"].ns
    print(f"{args.problems} problems, pilot {args.pilot}, forecast to n = {args.pool} on {ns.size} n; measured on the "
          f"full pool of {args.pool} at the same n")
    for agg in ("pass", "majority_vote", "weighted_vote", "best_of_n"):
        err = 100 * np.abs(fc.curves[agg].accuracy - meas[agg].accuracy)
        inside = np.mean((meas[agg].accuracy >= fc.curves[agg].low) & (meas[agg].accuracy <= fc.curves[agg].high))
        print(f"  {agg:14s} forecast vs measured: mean |error| {err.mean():.2f} points, max {err.max():.2f}; "
              f"90% interval covers {inside:.0%} of the n")
    f_med, m_med = statistics.median(t_fc), statistics.median(t_meas)
    print(f"forecast: median {f_med:.3f} s over {args.repeats} (all: {', '.join(f'{t:.3f}' for t in t_fc)}); "
          f"target < 2 s: {'yes' if f_med < 2 else 'no'}")
    print(f"measuring the full pool: median {m_med:.3f} s (all: {', '.join(f'{t:.3f}' for t in t_meas)})")
    print(f"forecast from a pilot of {args.pilot} to n = {args.pool}: {f_med:.2f} s, {m_med / f_med:.1f}x faster "
          "than measuring the full pool")


if __name__ == "__main__":
    main()
