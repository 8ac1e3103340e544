"""REBASE, reward-balanced search (Wu et al. 2025; docs/references.md §2), with the released code's
sequential width allocation."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from infscale.configio import Strict
from infscale.tts.core.search import Node, Search, SearchContext
from infscale.tts.core.spec import StrategySpec


class RebaseSettings(Strict):
    balance_temperature: float = Field(0.2, gt=0, allow_inf_nan=False)
    """The balance temperature T_b (paper 0.1, released config 0.2): lower gives the best nodes more children."""


def rebase_widths(rewards: Sequence[float], budget: int, temperature: float) -> list[int]:
    """REBASE's sequential allocation (released code): visit nodes by decreasing reward with ``w = budget`` and
    ``S = sum_j e_j``, ``e_j = exp(R_j / T_b)``; give ``n_j = ceil(w e_j / S)`` (capped at ``w``), then
    ``w -= n_j; S -= e_j``. Widths sum exactly to the budget; low-reward nodes may get 0."""
    if budget <= 0 or not rewards:
        return [0] * len(rewards)
    if temperature <= 0:
        raise ValueError("REBASE temperature must be > 0")
    top = max(rewards)
    e = [math.exp((r - top) / temperature) for r in rewards]  # shifting by the max leaves every ratio unchanged
    order = sorted(range(len(rewards)), key=lambda j: -rewards[j])
    widths = [0] * len(rewards)
    w, S = budget, sum(e)
    for j in order:
        if w <= 0:
            break
        share = w * e[j] / S
        nj = min(w, math.ceil(share - 1e-9 * max(1.0, share)))
        widths[j] = nj
        w -= nj
        S -= e[j]
    return widths


def rebase(ctx: SearchContext) -> Search:
    """Sample ``budget`` first steps; at each depth the completed nodes reduce the budget (``B_i = B_{i-1} - C_i``),
    the unfinished ones get ``rebase_widths(rewards, B_i, T_b)`` children. Stops when the budget is spent, nothing is
    left to expand or the depth cap is reached; returns the completed leaves, then the unfinished nodes left at the
    end (marked unfinished)."""
    completed: list[Node] = []
    unfinished: list[Node] = []
    frontier = yield from ctx.expand([ctx.root()], [ctx.budget])
    remaining = ctx.budget
    while frontier:
        done = [nd for nd in frontier if nd.finished]
        completed += done
        remaining -= len(done)
        unfinished += [nd for nd in frontier if nd.terminal and not nd.finished]  # depth cap reached
        open_nodes = [nd for nd in frontier if not nd.terminal]
        if remaining <= 0 or not open_nodes:
            unfinished += open_nodes
            break
        widths = rebase_widths([nd.reward for nd in open_nodes], remaining, ctx.options.balance_temperature)
        frontier = yield from ctx.expand(open_nodes, widths)
    return [ctx.node_candidate(nd) for nd in completed + unfinished]


SPEC = StrategySpec(name="rebase", label="REBASE", search=rebase, needs_reward=True, step_scored=True,
                    reward_steers=True, settings=RebaseSettings)
