"""Benchmark: the 4,500-start Huber/L-BFGS fit (Hoffmann approach 3) on the bundled Chinchilla points, and variable
projection against it on every bundled dataset.

Batched numpy L-BFGS (`infscale.laws.HuberFitter`) against the baseline measured in the same run: a plain Python loop of
`scipy.optimize.minimize(method="L-BFGS-B")` with the same analytic gradient over the same 4,500 starts. Both run with one
BLAS thread (multi-threaded OpenBLAS slows scipy's small steps by an order of magnitude on a busy 2-core machine, which would
flatter the ratio). Also times 1,000 bootstrap refits warm-started from the optimum. Then `VarProFitter` (exponents
searched, coefficients solved) against the grid fit on every bundled dataset and law, interleaved repeats: objectives
side by side, median times. Medians over repeats; the last line is the headline ratio (variable projection vs the grid,
the median over datasets).

    flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_fit.py [--repeats 5] [--loop-repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from infscale.laws.bootstrap import bootstrap
from infscale.laws.fit import HuberFitter, scipy_loop_huber
from infscale.laws.io import load_runs
from infscale.laws.varpro import VarProFitter

CASES = (("chinchilla", "chinchilla"), ("gadre", "chinchilla"), ("sardana", "chinchilla"), ("bian2025", "chinchilla"),
         ("bian2025", "inference_aware"))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the batched fit and of the bootstrap")
    ap.add_argument("--loop-repeats", type=int, default=3, help="repeats of the scipy loop (about 20 s each)")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()

    runs = load_runs("chinchilla")
    with threadpool_limits(1):
        HuberFitter("chinchilla").fit(runs)  # warm-up (imports, caches)
        fit_times, fitter = [], None
        for _ in range(args.repeats):
            t, fitter = timed(lambda: HuberFitter("chinchilla").fit(runs))
            fit_times.append(t)
        n_starts = fitter.n_starts_
        loop_times, loop_f = [], None
        for _ in range(args.loop_repeats):
            t, (xs, fs) = timed(lambda: scipy_loop_huber("chinchilla", runs))
            loop_times.append(t)
            loop_f = float(np.min(fs))
        boot_times = []
        for k in range(args.repeats):
            t, boot = timed(lambda k=k: bootstrap(fitter, runs, args.n_boot, random_state=k))
            boot_times.append(t)

    ours_f = fitter.objective_
    rel = (ours_f - loop_f) / loop_f
    t_fit, t_loop, t_boot = (statistics.median(x) for x in (fit_times, loop_times, boot_times))
    print(f"data: bundled chinchilla points, {len(runs)} runs; {n_starts} grid starts; Huber delta 1e-3 on log loss")
    print("params (batched): " + ", ".join(f"{k}={v:.6g}" for k, v in fitter.params_.items()))
    print(f"objective: batched {ours_f:.12g}  scipy-loop best {loop_f:.12g}  relative difference {rel:+.2e} "
          f"({'same optimum' if abs(rel) <= 1e-6 or rel < 0 else 'DIFFERENT'} at 1e-6)")
    print(f"batched grid fit: median {t_fit:.3f} s over {len(fit_times)} (all: {', '.join(f'{t:.3f}' for t in fit_times)})")
    print(f"scipy loop:       median {t_loop:.3f} s over {len(loop_times)} (all: "
          f"{', '.join(f'{t:.2f}' for t in loop_times)})")
    print(f"{args.n_boot} bootstrap refits (warm start, batched): median {t_boot:.3f} s over {len(boot_times)}; "
          f"95% interval alpha [{boot.low['alpha']:.4f}, {boot.high['alpha']:.4f}]")
    print(f"targets: grid fit < 2 s: {'yes' if t_fit < 2 else 'NO'}; >= 20x: {'yes' if t_loop / t_fit >= 20 else 'NO'}; "
          f"bootstrap < 10 s: {'yes' if t_boot < 10 else 'NO'}")
    print(f"conservative ratio (fastest loop / median batched): {min(loop_times) / t_fit:.1f}x")
    print(f"speed-up vs scipy loop: {t_loop / t_fit:.1f}x")
    varpro(args.repeats)


def varpro(repeats: int) -> None:
    """Variable projection vs the grid fit on every bundled dataset: interleaved repeats, medians."""
    ratios = []
    for data, law in CASES:
        runs = load_runs(data)
        grid_t, vp_t = [], []
        with threadpool_limits(1):
            VarProFitter(law).fit(runs)  # warm-up
            for _ in range(repeats):
                t, grid = timed(lambda law=law, runs=runs: HuberFitter(law).fit(runs))
                grid_t.append(t)
                t, vp = timed(lambda law=law, runs=runs: VarProFitter(law).fit(runs))
                vp_t.append(t)
        tg, tv = statistics.median(grid_t), statistics.median(vp_t)
        ratios.append(tg / tv)
        verdict = "<= grid" if vp.objective_ <= grid.objective_ * (1 + 1e-9) else "ABOVE grid"
        print(f"varpro {data}/{law} ({len(runs)} runs): objective {vp.objective_:.10g} vs grid {grid.objective_:.10g} "
              f"({verdict}); median {tv * 1e3:.1f} ms vs {tg * 1e3:.1f} ms: {tg / tv:.1f}x")
    print(f"variable projection vs the 4,500-start grid (median over {len(CASES)} datasets): "
          f"{statistics.median(ratios):.1f}x (least {min(ratios):.1f}x)")


if __name__ == "__main__":
    main()
