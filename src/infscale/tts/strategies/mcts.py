"""Monte Carlo tree search as Wu et al.'s baseline: UCT selection, PRM values, running-mean backup."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from infscale.configio import Strict
from infscale.tts.core.config import MAX_BUDGET
from infscale.tts.core.records import Candidate
from infscale.tts.core.search import Generate, Node, Search, SearchContext
from infscale.tts.core.spec import StrategySpec


class MctsSettings(Strict):
    root_width: int = Field(4, ge=1, le=MAX_BUDGET)
    """Children of the root's expansion."""
    width: int = Field(2, ge=1, le=MAX_BUDGET)
    """Children of every other expansion."""
    c: float = Field(1.0, ge=0, allow_inf_nan=False)
    """UCT's exploration constant."""
    rollouts: bool = True
    """Classic MCTS simulation: every new node is completed by one sampled rollout to a final answer whose reward is
    the node's value (the rollout is a candidate; its FLOPs are counted). Off: a node's value is its own step reward,
    and a budget below the solution's depth never reaches an answer."""


def uct(child: Node, parent_visits: int, c: float = 1.0) -> float:
    """``Q(child) + c * sqrt(ln N(parent) / N(child))``; unvisited children first (infinity)."""
    if child.visits == 0:
        return math.inf
    return child.q + c * math.sqrt(math.log(parent_visits) / child.visits)


def uct_select(root: Node, c: float = 1.0) -> Node:
    """Descend from ``root`` by maximal UCT (first child on ties) to a node without children or a terminal one."""
    node = root
    while node.children and not node.terminal:
        node = max(node.children, key=lambda ch: uct(ch, node.visits, c))
    return node


def backup(node: Node | None, value: float) -> None:
    """Running-mean backup: every node from ``node`` to the root gets ``N += 1; Q += (v - Q) / N``."""
    while node is not None:
        node.visits += 1
        node.q += (value - node.q) / node.visits
        node = node.parent


def mcts(ctx: SearchContext) -> Search:
    """``budget`` expansions; select by UCT; expand the root to ``root_width`` children and other nodes to ``width``;
    with ``rollouts`` each new node is completed by one sampled rollout whose final reward is its value, else its
    value is its own PRM reward; values are backed up as running means. Returns the rollouts, every terminal leaf
    (finished or depth-capped) and the unexpanded leaves (unfinished)."""
    o = ctx.options
    root = ctx.root()
    rollouts: list[Candidate] = []
    for _ in range(ctx.budget):
        node = uct_select(root, o.c)
        if node.terminal:
            backup(node, node.reward)
            continue
        children = yield from ctx.expand([node], [o.root_width if node is root else o.width])
        values = (yield from _rollouts(ctx, children, rollouts)) if o.rollouts else [c.reward for c in children]
        for child, value in zip(children, values, strict=True):
            backup(child, value)
    leaves: list[Node] = []
    stack = [root]
    while stack:
        nd = stack.pop()
        if nd.children:
            stack.extend(reversed(nd.children))
        elif nd is not root:
            leaves.append(nd)
    leaves.sort(key=lambda nd: not nd.finished)
    return rollouts + [ctx.node_candidate(nd) for nd in leaves]


def _rollouts(ctx: SearchContext, nodes: Sequence[Node], out: list[Candidate]) -> Search:
    """Complete every non-terminal node with one sampled continuation (its K/V prefix cached), score it, append it
    to ``out`` as a candidate; returns each node's value (the rollout's final reward; a terminal node's own)."""
    todo = [nd for nd in nodes if not nd.terminal]
    values = {id(nd): nd.reward for nd in nodes if nd.terminal}
    if todo:
        params = ctx.params(stop=tuple(ctx.task.final_stop))
        comps = yield Generate(tuple(ctx.prompt + nd.text for nd in todo), (1,) * len(todo), params,
                               tuple(nd.prefix_tokens for nd in todo))
        cap = ctx.settings.depth_cap  # a rollout is a path too: cut at the cap, unfinished, like the tree's
        full = [[*nd.steps, *ctx.task.split_steps(c[0].text)] for nd, c in zip(todo, comps, strict=True)]
        paths = [steps[:cap] for steps in full]
        scores = yield from ctx.score(paths)
        for nd, (comp,), steps, whole, sc in zip(todo, comps, paths, full, scores, strict=True):
            reason = "depth" if len(whole) > cap else comp.finish_reason
            out.append(ctx.candidate("".join(steps), reason not in ("length", "depth"), sc, ctx.n_prompt,
                                     nd.path_tokens + comp.completion_tokens, reason))
            values[id(nd)] = sc[-1] if sc else 0.0
    return [values[id(nd)] for nd in nodes]


SPEC = StrategySpec(name="mcts", label="MCTS", search=mcts, needs_reward=True, step_scored=True,
                    reward_steers=True, settings=MctsSettings, rows_of=lambda budget, o: max(o.root_width, o.width))
