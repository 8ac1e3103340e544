"""Sweeps of the life-cycle planner: the cost-vs-accuracy Pareto frontier over configurations x training tokens,
and the optimum at every lifetime query volume (where the choice of model and strategy changes).

Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from infscale.errors import InfeasibleError
from infscale.plan.lifecycle import (
    AccuracyChain,
    Configs,
    Deployment,
    Prices,
    _fixed,
    _limits,
    _ok,
    _rates,
    _take,
    required_tokens,
    solve_lifecycle,
)
from infscale.plan.optimum import pareto_frontier

__all__ = ["cost_frontier", "crossover_in_queries"]


def cost_frontier(c: Configs, chain: AccuracyChain, d: Deployment, prices: Prices,
                  points: int = 17) -> list[dict[str, object]]:
    """The cost-vs-accuracy Pareto frontier: every configuration meeting the serving constraints, trained on each of
    ``points`` token counts (log-spaced over its bounds); rows by increasing cost. Each token level is pruned to its
    own frontier first, so memory stays at one level's size."""
    per_token, per_query, prm_query = _rates(c, prices)
    ok = np.ones(len(c), dtype=bool)
    for r in _limits(c, d).values():
        ok &= _ok(r)
    sub = _take(c, ok)
    if len(sub) == 0:
        return []
    fixed = _fixed(sub, prices) + d.queries * (per_query[ok] + prm_query[ok])
    lo, hi = np.log(np.maximum(sub.tokens_min, 1.0)), np.log(np.maximum(sub.tokens_max, 1.0))
    keep_i, keep_t, keep_a, keep_c = [], [], [], []
    for frac in np.linspace(0.0, 1.0, points if (~sub.sunk).any() else 1):
        tok = np.where(sub.sunk, sub.tokens_max, np.exp(lo + (hi - lo) * frac))
        acc = chain.accuracy(sub, tok)
        cost = per_token[ok] * tok + fixed
        front = pareto_frontier(cost, -acc)
        keep_i.append(front)
        keep_t.append(tok[front])
        keep_a.append(acc[front])
        keep_c.append(cost[front])
    idx, tok, acc, cost = (np.concatenate(v) for v in (keep_i, keep_t, keep_a, keep_c))
    out = []
    for k in pareto_frontier(cost, -acc):
        row = sub.row(int(idx[k]))
        row.update({"train_tokens": float(tok[k]), "accuracy": float(acc[k]), "cost": float(cost[k]),
                    "unit": prices.unit})
        out.append(row)
    return out


def crossover_in_queries(c: Configs, chain: AccuracyChain, d: Deployment, prices: Prices,
                         queries: np.ndarray, tokens_needed: np.ndarray | None = None) -> list[dict[str, object]]:
    """The optimum at each lifetime query volume (the target's training tokens are computed once, or passed as
    ``tokens_needed``); rows mark where the chosen model or strategy changes (``changes``)."""
    tokens = tokens_needed
    if d.mode == "min_cost" and tokens is None:
        tokens = required_tokens(c, chain, d)
    out: list[dict[str, object]] = []
    prev = None
    for q in np.asarray(queries, dtype=np.float64):
        try:
            sol = solve_lifecycle(c, chain, replace(d, queries=float(q)), prices, tokens, explain=False)
        except InfeasibleError:
            out.append({"queries": float(q), "feasible": False})
            prev = None
            continue
        row = {"queries": float(q), "feasible": True, **sol.row(sol.best)}
        key = (row["model"], row["strategy"], row["n"])
        row["changes"] = prev is not None and key != prev
        prev = key
        out.append(row)
    return out
