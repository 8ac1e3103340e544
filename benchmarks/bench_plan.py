"""Enumerate and score ~10^5 candidate shapes: vectorised planner vs a per-shape Python loop (same shapes, same numbers).

Score = predicted loss (Bian et al.'s inference-aware law, the published 27-point fit) + predicted latency (A100 profile,
batch 1, 128 in / 256 out). The loop builds each `TransformerShape` in nested Python loops, checks the rules and the
parameter range, and calls the law and the latency predictor once per shape, as a script without the planner would.
Medians of repeated runs; the last line is the headline ratio. Run under the shared lock:

    flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_plan.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from infscale.arch import TransformerShape, swiglu_hidden
from infscale.latency.model import HARDWARE_PRESETS, Workload
from infscale.laws.fitted import FittedLaw
from infscale.plan import (
    PlanConstraints,
    ShapeGrid,
    ShapeRules,
    enumerate_shapes,
    latency_from_profile,
    loss_from_law,
    plan_shapes,
)

# docs/references.md §1, the 27-point main fit reproduced from Bian et al.'s scripts
LAW = FittedLaw.from_dict("inference_aware", {"A": 54754.43, "B": 778345.5, "E": 2.44751, "alpha": 0.614574,
                                              "eps": 0.00114621})
# Llama-style space: d_model a multiple of 64, heads of 64 or 128, GQA with 1/2/4/8 KV heads or MHA, 2-128 layers
RULES = ShapeRules(head_dims=(64, 128), kv_heads=(1, 2, 4, 8), d_model_multiple=64, d_model_min=256,
                   d_model_max=16384, n_layers_min=2, n_layers_max=128, vocab_size=50432)
RANGE = (5e7, 1e11)  # 104,729 shapes
CONSTRAINTS = PlanConstraints(max_latency_s=5.0, n_tokens=2e11)


def vectorised(latency_fn) -> tuple[int, int]:
    grid = enumerate_shapes(RULES, *RANGE)
    res = plan_shapes(grid, loss_from_law(LAW), CONSTRAINTS, latency_fn)
    return len(grid), res.best


def loop(latency_fn) -> tuple[int, tuple[int, int, int, int]]:
    """Per-shape reference: nested loops, one TransformerShape, one law call and one latency call per shape."""
    best, best_key, count = (np.inf, np.inf), None, 0
    for d in range(RULES.d_model_min, RULES.d_model_max + 1, RULES.d_model_multiple):
        for hd in RULES.head_dims:
            if d % hd:
                continue
            heads = d // hd
            kv_options = [k for k in RULES.kv_heads if k < heads and heads % k == 0] + [heads]
            for kv in kv_options:
                for layers in range(RULES.n_layers_min, RULES.n_layers_max + 1):
                    shape = TransformerShape(d_model=d, n_layers=layers, n_heads=heads, n_kv_heads=kv, head_dim=hd,
                                             d_ff=swiglu_hidden(d), vocab_size=RULES.vocab_size)
                    n = shape.n_params
                    if n > RANGE[1]:
                        break  # N grows with depth: deeper shapes of this width are out of range too
                    if n < RANGE[0]:
                        continue
                    count += 1
                    loss = float(LAW.predict(n, CONSTRAINTS.n_tokens, shape.aspect_ratio))
                    one = ShapeGrid.from_shapes([shape])
                    lat = float(latency_fn(one)[0])
                    if lat <= CONSTRAINTS.max_latency_s and (loss, lat) < best:
                        best, best_key = (loss, lat), (d, layers, heads, kv)
    return count, best_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of the vectorised planner")
    parser.add_argument("--loop-repeats", type=int, default=3, help="timed runs of the per-shape loop")
    parser.add_argument("--hardware", default="a100-40gb-bian2025", help="latency profile name")
    args = parser.parse_args()
    latency_fn = latency_from_profile(HARDWARE_PRESETS[args.hardware], Workload(batch=1, input_len=128, output_len=256))

    vectorised(latency_fn)  # warm-up (imports, caches)
    vec_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        n_shapes, best = vectorised(latency_fn)
        vec_times.append(time.perf_counter() - t0)
    loop_times = []
    for _ in range(args.loop_repeats):
        t0 = time.perf_counter()
        n_loop, best_key = loop(latency_fn)
        loop_times.append(time.perf_counter() - t0)

    grid = enumerate_shapes(RULES, *RANGE)
    key = (int(grid.d_model[best]), int(grid.n_layers[best]), int(grid.n_heads[best]), int(grid.n_kv_heads[best]))
    assert n_loop == n_shapes, f"loop saw {n_loop} shapes, planner {n_shapes}"
    assert key == best_key, f"loop optimum {best_key} != planner optimum {key}"
    vec, ref = statistics.median(vec_times), statistics.median(loop_times)
    print(f"shapes enumerated and scored: {n_shapes} (same set and same optimum {grid.label(best)} in both)")
    print(f"vectorised planner: median {vec:.3f} s over {args.repeats} runs "
          f"({n_shapes / vec:,.0f} shapes/s; {vec * 1e5 / n_shapes:.3f} s per 1e5 shapes)")
    print(f"per-shape Python loop: median {ref:.2f} s over {args.loop_repeats} runs ({n_shapes / ref:,.0f} shapes/s)")
    print(f"target 1e5 shapes < 1 s: {'met' if vec * 1e5 / n_shapes < 1.0 else 'NOT met'}")
    print(f"speed-up vs per-shape loop: {ref / vec:.1f}x")


if __name__ == "__main__":
    main()
