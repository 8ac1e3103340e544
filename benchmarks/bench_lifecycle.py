"""The life-cycle planner's joint search vs a per-configuration Python loop (same configurations, same optimum).

Search space: the bundled `lifecycle_llm` deployment (Llama-style shapes 100M-10B x greedy / majority vote /
best-of-n / weighted vote / REBASE at n = 4, 16, 32; training tokens 5-2000 per parameter), Bian et al.'s published
27-point law, Gadre's link fitted on the bundled runs, test-time curves fitted on Wu et al.'s MATH500 tables, the
A100-80GB preset. The vectorised path builds every configuration (latency of each shape at each batch, memory,
FLOPs), finds the fewest training tokens reaching the accuracy target for all of them (bisection on whole arrays)
and solves. The loop does the same per configuration with scalars (latency model called once per configuration,
scalar bisection) on a uniform sample of configurations, because the full loop takes minutes; its time per
configuration is scaled to the whole space, and its optimum over the sample must equal the vectorised optimum over
the same sample. Medians of repeated runs; the last line is the headline ratio. Run under the shared lock:

    flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_lifecycle.py
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from infscale.arch import ffn_matrices
from infscale.configio import resolve_recipe
from infscale.latency.model import DTYPE_BYTES, HARDWARE, Workload, predict_latency_arrays
from infscale.laws.fitted import FittedLaw
from infscale.laws.testtime import TestTimeCurves
from infscale.plan.adapters import loss_from_law
from infscale.plan.lifecycle import AccuracyChain, Deployment, Prices, required_tokens, solve_lifecycle
from infscale.plan.lifecycle_candidates import configs_from_shapes
from infscale.plan.shapes import enumerate_shapes, get_family
from infscale.workflows.lifecycle import load_deploy
from infscale.workflows.lifecycle_inputs import fit_link, load_points

# Bian et al.'s published 27-point main fit
LAW = FittedLaw.from_dict("inference_aware", {"A": 54754.43, "B": 778345.5, "E": 2.44751, "alpha": 0.614574,
                                              "eps": 0.00114621})


def setup():
    path = resolve_recipe("lifecycle_llm")
    cfg = load_deploy(path)
    link, _ = fit_link(cfg.accuracy, Path(path).parent)
    pts = load_points("wu2025-math500", Path("."))
    base = pts.base_accuracy()
    curves = TestTimeCurves().fit([base[m] for m in pts.model], pts.strategy, pts.n, pts.accuracy)
    dep = cfg.deployment
    profile = HARDWARE.get(cfg.hardware.profile)
    d = Deployment(queries=dep.queries, prompt_tokens=dep.prompt_tokens, output_tokens=dep.output_tokens,
                   batch=dep.batch, max_latency_s=dep.max_latency_s, accuracy_target=dep.accuracy_target,
                   max_memory_bytes=profile.memory_bytes)
    prices = Prices(usd_per_hour=cfg.hardware.usd_per_hour,
                    train_flops_per_s=profile.peak_flops("bf16") * cfg.hardware.train_mfu)
    return cfg, AccuracyChain(loss_fn=loss_from_law(LAW), link=link, curves=curves), d, prices, profile


def vectorised(cfg, chain, d, prices, profile):
    rules = get_family(cfg.candidates.family).with_(vocab_size=cfg.candidates.vocab_size)
    grid = enumerate_shapes(rules, cfg.candidates.min_params, cfg.candidates.max_params)
    prm = cfg.prm.shape()
    c = configs_from_shapes(grid, {s: tuple(v) for s, v in cfg.strategies.items()}, d, profile,
                            tokens_range=(1.0, 1.0), prm=prm, scored=SCORED)
    lo, hi = cfg.candidates.tokens_per_param
    c = replace(c, tokens_min=lo * c.n_params, tokens_max=hi * c.n_params)
    sol = solve_lifecycle(c, chain, d, prices, required_tokens(c, chain, d), explain=False)
    return grid, c, sol


def _scored() -> set[str]:
    from infscale.tts.core.spec import planner_strategies

    return {name for name, spec in planner_strategies().items() if spec.needs_reward}


SCORED = _scored()


def loop(grid, c, idx, chain, d, prices, profile, prm_terms):
    """Per configuration, with scalars: latency, memory, required tokens by bisection, cost; the cheapest feasible.
    Configuration ``i`` is shape ``i // k`` of ``grid`` (``k`` strategy x n rows per shape)."""
    link, curves = chain.link, chain.curves
    p = LAW.params_
    per_s = prices.usd_per_hour / 3600.0
    elem = DTYPE_BYTES["bf16"]
    best, best_cost = None, math.inf
    k = len(c) // len(grid)
    for i in idx:
        s, n, g = str(c.strategy[i]), int(c.n[i]), i // k
        layers, kv, hd = int(grid.n_layers[g]), int(grid.n_kv_heads[g]), int(grid.head_dim[g])
        kw = dict(d_model=int(grid.d_model[g]), n_layers=layers, n_heads=int(grid.n_heads[g]), n_kv_heads=kv,
                  d_ff=int(grid.d_ff[g]), vocab_size=grid.vocab_size, head_dim=hd,
                  ffn_matrices=ffn_matrices(grid.ffn_kind))
        pre = float(predict_latency_arrays(profile, **kw, workload=Workload(
            batch=d.batch, input_len=d.prompt_tokens, output_len=1))["prefill_s"])
        dec = float(predict_latency_arrays(profile, **kw, workload=Workload(
            batch=d.batch * n, input_len=d.prompt_tokens, output_len=d.output_tokens))["decode_s"])
        prm_lat, _, prm_mem = prm_terms[n] if s in SCORED else (0.0, 0.0, 0.0)
        latency = pre + dec + prm_lat
        n_params = float(c.n_params[i])
        memory = n_params * elem + 2.0 * layers * kv * hd * d.batch * (d.prompt_tokens + n * d.output_tokens) * elem
        if latency > d.max_latency_s or memory + prm_mem > d.max_memory_bytes:
            continue
        if s == "greedy":
            base = d.accuracy_target
        else:
            u, v, w, cc = curves.coef_[s]
            x = math.log2(n)
            want = math.log(d.accuracy_target / (1 - d.accuracy_target))
            slope = 1 + cc * x
            if slope <= 0:
                continue
            base = 1 / (1 + math.exp(-(want - u - v * x - w * x * x) / slope))
        gap = (link.eps_ - (1 - base)) / link.k_
        if gap <= 0 or gap >= 1:
            continue
        loss_target = -math.log(gap) / link.gamma_
        r = float(c.aspect_ratio[i])
        # Bian et al.'s L = (E + A/N^a + B/D^a)(1 + eps R^a), in scalars
        head = p["E"] + p["A"] * n_params ** -p["alpha"]
        shape = 1.0 + p["eps"] * r ** p["alpha"]
        lo_t, hi_t = 0.0, math.log(float(c.tokens_max[i]) * 4.0)
        if (head + p["B"] * math.exp(hi_t) ** -p["alpha"]) * shape > loss_target:
            continue
        for _ in range(64):
            mid = 0.5 * (lo_t + hi_t)
            if (head + p["B"] * math.exp(mid) ** -p["alpha"]) * shape > loss_target:
                lo_t = mid
            else:
                hi_t = mid
        tokens = max(math.exp(hi_t), float(c.tokens_min[i]))
        if tokens > float(c.tokens_max[i]) * (1 + 1e-9):
            continue
        train = 6.0 * n_params * tokens / prices.train_flops_per_s * per_s
        serve = d.queries * ((pre + dec) / d.batch + prm_lat / d.batch) * per_s
        if train + serve < best_cost:
            best, best_cost = i, train + serve
    return best, best_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sample", type=int, default=3000, help="configurations the loop scores")
    args = parser.parse_args()
    cfg, chain, d, prices, profile = setup()
    from infscale.plan.lifecycle_candidates import _prm_terms

    vectorised(cfg, chain, d, prices, profile)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        grid, c, sol = vectorised(cfg, chain, d, prices, profile)
        times.append(time.perf_counter() - t0)
    prm = cfg.prm.shape()
    prm_terms = {n: _prm_terms(prm, profile, d, n, "bf16") for n in sorted({int(v) for v in c.n})}
    idx = np.random.default_rng(0).choice(len(c), size=min(args.sample, len(c)), replace=False)
    idx = np.sort(np.append(idx, sol.best))  # the sample holds the global optimum, so both must find it
    t0 = time.perf_counter()
    best, best_cost = loop(grid, c, idx.tolist(), chain, d, prices, profile, prm_terms)
    loop_s = time.perf_counter() - t0
    assert best == sol.best, f"loop optimum {c.model[best]} != vectorised {c.model[sol.best]}"
    assert math.isclose(best_cost, float(sol.cost[sol.best]), rel_tol=1e-6), (best_cost, float(sol.cost[sol.best]))
    vec = statistics.median(times)
    per_config = loop_s / len(idx)
    loop_full = per_config * len(c)
    print(f"configurations: {len(c):,} ({len(set(c.model.tolist())):,} shapes x {len(c) // len(set(c.model.tolist()))}"
          f" strategy x n); optimum {c.model[sol.best]} {c.strategy[sol.best]} n={int(c.n[sol.best])}, "
          f"{float(sol.cost[sol.best]):.4g} {sol.unit}")
    print(f"vectorised joint search (build + required tokens + solve): median {vec:.3f} s over {args.repeats} runs "
          f"(target < 2 s: {'met' if vec < 2.0 else 'NOT met'})")
    print(f"per-configuration loop: {loop_s:.2f} s for {len(idx):,} configurations ({per_config * 1e3:.3f} ms each; "
          f"same optimum and cost), {loop_full:.0f} s scaled to all {len(c):,}")
    print(f"speed-up vs per-configuration loop: {loop_full / vec:.0f}x")


if __name__ == "__main__":
    main()
