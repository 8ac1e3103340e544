"""Test-time strategies (registry by name) and the engine that runs one on one problem.

Seed B's strategies (docs/references.md §2): ``greedy``; ``sampling`` (and its named aggregations ``majority_vote``,
``best_of_n``, ``weighted_vote``); step-level ``beam`` search; ``mcts`` (UCT with C = 1, PRM value, running-mean
backup); ``rebase`` (reward-balanced search with the released code's sequential width allocation). Every strategy
returns all its candidates, unfinished ones included; the engine aggregates them (majority, best-of-n, weighted vote,
with per-solution scores from step scores by last/min/mean/prod), times generation and scoring, and prices every
request in the FLOPs ledger.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from infscale.errors import InputError
from infscale.registry import Registry
from infscale.tts.core.config import SearchSettings
from infscale.tts.core.generation import Completion, Generator, SamplingParams, derive_seed
from infscale.tts.core.ledger import LedgerBuilder
from infscale.tts.core.records import IID_STRATEGIES, Candidate, ProblemRecord
from infscale.tts.core.rewards import Reward
from infscale.tts.core.tasks import Problem, Task

# ----- score aggregation -----------------------------------------------------------------------------------------

SCORE_AGGREGATIONS: Registry[Callable[[Sequence[float]], float]] = Registry("score aggregation")
SCORE_AGGREGATIONS.register("last", lambda s: s[-1])
SCORE_AGGREGATIONS.register("min", min)
SCORE_AGGREGATIONS.register("mean", lambda s: sum(s) / len(s))
SCORE_AGGREGATIONS.register("prod", lambda s: math.prod(s))


def aggregate(step_scores: Sequence[float], how: str = "last") -> float | None:
    """Per-solution score from its step scores (seed B: last by default; min, mean, prod)."""
    return SCORE_AGGREGATIONS.get(how)(step_scores) if step_scores else None


def majority_vote(candidates: Sequence[Candidate]) -> str | None:
    """Most frequent answer among finished candidates (ties: the answer seen first)."""
    votes = Counter(c.answer for c in candidates if c.finished and c.answer is not None)
    if not votes:
        return None
    order = {a: i for i, a in reversed(list(enumerate(c.answer for c in candidates)))}
    return max(votes, key=lambda a: (votes[a], -order[a]))


def best_of_n(candidates: Sequence[Candidate]) -> str | None:
    """Answer of the highest-scoring finished candidate."""
    pool = [c for c in candidates if c.finished and c.answer is not None and c.score is not None]
    return max(pool, key=lambda c: c.score).answer if pool else None  # type: ignore[arg-type,return-value]


def weighted_vote(candidates: Sequence[Candidate]) -> str | None:
    """Answer with the largest total score over finished candidates (reward-weighted majority)."""
    totals: dict[str, float] = defaultdict(float)
    for c in candidates:
        if c.finished and c.answer is not None and c.score is not None:
            totals[c.answer] += c.score
    return max(totals, key=totals.__getitem__) if totals else None


# ----- tree search ------------------------------------------------------------------------------------------------

@dataclass(eq=False)
class Node:
    """A partial solution in a search tree."""

    steps: list[str]
    parent: Node | None = None
    depth: int = 0
    path_tokens: int = 0
    """Completion tokens along the path from the root."""
    prefix_tokens: int = 0
    """Tokens of prompt + path (what a child's request re-reads; all of it is in the KV cache once produced)."""
    finished: bool = False
    terminal: bool = False
    finish_reason: str | None = None
    """``stop``/``eos`` for a finished node, ``length`` (its path fills the policy's context), ``depth`` (depth cap),
    ``None`` while it can still be expanded."""
    step_scores: tuple[float, ...] = ()
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    q: float = 0.0
    expanded_before: bool = False

    @property
    def text(self) -> str:
        return "".join(self.steps)

    @property
    def reward(self) -> float:
        return self.step_scores[-1] if self.step_scores else 0.0


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


# ----- the engine -------------------------------------------------------------------------------------------------


class Engine:
    """Runs strategies for one (task, generator, reward) and turns their candidates into `ProblemRecord`s."""

    def __init__(self, task: Task, generator: Generator, reward: Reward | None = None,
                 settings: SearchSettings | None = None) -> None:
        self.task, self.generator, self.reward = task, generator, reward
        self.settings = settings or SearchSettings()
        SCORE_AGGREGATIONS.get(self.settings.aggregation)  # validate the name early
        self._seed: int | None = None
        self._calls = 0

    # -- accounted calls ---------------------------------------------------------------------------------------
    def _begin(self, seed: int | None) -> None:
        self._seed, self._calls = seed, 0
        self.ledger = LedgerBuilder(self.generator.shape, getattr(self.reward, "shape", None))
        self.generation_s = 0.0
        self.scoring_s = 0.0

    def gen(self, prompts: Sequence[str], n: Sequence[int], params: SamplingParams,
            cached_tokens: Sequence[int]) -> list[list[Completion]]:
        if self._seed is not None:  # the k-th call of a unit gets the k-th seed of that unit, whatever ran before
            params = replace(params, seed=derive_seed(self._seed, self._calls))
            self._calls += 1
        t0 = time.perf_counter()
        out = self.generator.generate(prompts, n, params)
        self.generation_s += time.perf_counter() - t0
        for comps, cached in zip(out, cached_tokens, strict=True):
            self.ledger.add_request(comps, cached)
        return out

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[tuple[float, ...]]:
        if self.reward is None or not candidates:
            return [() for _ in candidates]
        t0 = time.perf_counter()
        scored = self.reward.score(problem, prompt, candidates)
        self.scoring_s += time.perf_counter() - t0
        self.ledger.add_reward([s.n_tokens for s in scored])
        return [s.scores for s in scored]

    @property
    def context_tokens(self) -> int | None:
        """The policy's context window in tokens, ``None`` when its shape does not say."""
        ctx = getattr(self.generator.shape, "context_length", None)
        return int(ctx) if ctx else None

    def params(self, *, temperature: float | None = None, max_tokens: int | None = None,
               stop: tuple[str, ...] = ()) -> SamplingParams:
        s = self.settings
        return SamplingParams(temperature=s.temperature if temperature is None else temperature, top_p=s.top_p,
                              max_tokens=max_tokens or s.max_tokens, stop=stop, seed=None)

    # -- candidates ---------------------------------------------------------------------------------------------
    def candidate(self, problem: Problem, text: str, finished: bool, step_scores: Sequence[float],
                  prompt_tokens: int, completion_tokens: int, finish_reason: str | None = None) -> Candidate:
        answer = self.task.parse_answer(text)
        return Candidate(text=text, answer=answer, finished=finished, step_scores=tuple(step_scores),
                         score=aggregate(step_scores, self.settings.aggregation), prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens, correct=self.task.is_correct(answer, problem.gold),
                         finish_reason=finish_reason)

    def node_candidate(self, problem: Problem, node: Node, prompt_tokens: int) -> Candidate:
        return self.candidate(problem, node.text, node.finished, node.step_scores, prompt_tokens, node.path_tokens,
                              node.finish_reason)

    # -- tree helpers --------------------------------------------------------------------------------------------
    def expand(self, problem: Problem, prompt: str, nodes: Sequence[Node], widths: Sequence[int]) -> list[Node]:
        """Sample one step for ``widths[i]`` children of each node; score the new nodes with the reward model.

        A child is terminal when it is final, at the depth cap, or when its path fills the policy's context (no token
        could be generated after it): that last one ends unfinished with finish reason ``length`` instead of asking
        the generator for a prompt it cannot hold."""
        todo = [(nd, w) for nd, w in zip(nodes, widths, strict=True) if w > 0]
        if not todo:
            return []
        params = self.params(max_tokens=self.settings.max_step_tokens,
                             stop=tuple(self.task.step_stop) + tuple(self.task.final_stop))
        cached = []
        for nd, _ in todo:
            cached.append(nd.prefix_tokens if (nd.parent is not None or nd.expanded_before) else 0)
            nd.expanded_before = True
        outs = self.gen([prompt + nd.text for nd, _ in todo], [w for _, w in todo], params, cached)
        ctx = self.context_tokens
        children = []
        for (nd, _), comps in zip(todo, outs, strict=True):
            for comp in comps:
                steps = [*nd.steps, comp.text]
                text = "".join(steps)
                final = comp.finish_reason == "eos" or self.task.is_final(text)
                depth = nd.depth + 1
                prefix = comp.prompt_tokens + comp.completion_tokens
                if final:
                    reason: str | None = comp.finish_reason
                elif ctx is not None and prefix >= ctx:
                    reason = "length"
                elif depth >= self.settings.depth_cap:
                    reason = "depth"
                else:
                    reason = None
                child = Node(steps=steps, parent=nd, depth=depth, path_tokens=nd.path_tokens + comp.completion_tokens,
                             prefix_tokens=prefix, finished=final, terminal=reason is not None,
                             finish_reason=reason)
                nd.children.append(child)
                children.append(child)
        scores = self.score(problem, prompt, [c.steps for c in children])
        for c, s in zip(children, scores, strict=True):
            c.step_scores = tuple(s)
        return children

    def need_reward(self, strategy: str) -> None:
        if self.reward is None:
            raise InputError(f"strategy {strategy!r} needs a reward model (set `reward:` in the config)")

    # -- running -----------------------------------------------------------------------------------------------
    def run(self, strategy: str, problem: Problem, budget: int, *, run_name: str = "", model_name: str = "",
            reward_name: str | None = None, seed: int | None = None) -> ProblemRecord:
        """One unit of work. With ``seed`` every generator call of the unit is seeded from it (and its position in
        the unit), so the record depends on nothing that ran before it; without, the generator's own stream runs on."""
        fn = STRATEGIES.get(strategy)
        self._begin(seed)
        t0 = time.perf_counter()
        candidates = fn(self, problem, budget)
        wall = time.perf_counter() - t0
        answers: dict[str, str | None] = {}
        if strategy == "greedy":
            answers["greedy"] = candidates[0].answer if candidates else None
        answers["majority_vote"] = majority_vote(candidates)
        if any(c.score is not None for c in candidates):
            answers["best_of_n"] = best_of_n(candidates)
            answers["weighted_vote"] = weighted_vote(candidates)
        correct = {}
        if problem.gold is not None:
            correct = {k: bool(self.task.is_correct(a, problem.gold)) for k, a in answers.items()}
        return ProblemRecord(run=run_name, model=model_name, n_params=self.generator.shape.n_params,
                             strategy=strategy, budget=budget, problem_id=problem.problem_id, gold=problem.gold,
                             candidates=tuple(candidates), answers=answers, correct=correct,
                             ledger=self.ledger.freeze(), wall_s=wall, generation_s=self.generation_s,
                             scoring_s=self.scoring_s, reward=reward_name)


StrategyFn = Callable[[Engine, Problem, int], list[Candidate]]
STRATEGIES: Registry[StrategyFn] = Registry("strategy")
NEEDS_REWARD = frozenset({"best_of_n", "weighted_vote", "beam", "mcts", "rebase"})
"""Strategies that cannot run without a reward model."""
STEP_SCORED = frozenset({"beam", "mcts", "rebase"})
"""Strategies that steer by the rewards of unfinished paths: an outcome-only reward scores every such path alike
(0.0), so they would choose at random; the runner refuses the pair."""


def _sample_solutions(eng: Engine, problem: Problem, n: int, temperature: float | None = None) -> list[Candidate]:
    prompt = eng.task.prompt(problem)
    params = eng.params(temperature=temperature, stop=tuple(eng.task.final_stop))
    comps = eng.gen([prompt], [n], params, [0])[0]
    steps = [eng.task.split_steps(c.text) for c in comps]
    scores = eng.score(problem, prompt, steps)
    return [eng.candidate(problem, c.text, c.finish_reason != "length", s, c.prompt_tokens, c.completion_tokens,
                          c.finish_reason) for c, s in zip(comps, scores, strict=True)]


@STRATEGIES.register("greedy")
def greedy(eng: Engine, problem: Problem, budget: int) -> list[Candidate]:
    """One temperature-0 solution (the budget is ignored)."""
    return _sample_solutions(eng, problem, 1, temperature=0.0)


def _iid_strategy(name: str) -> StrategyFn:
    def strategy(eng: Engine, problem: Problem, budget: int) -> list[Candidate]:
        if name in NEEDS_REWARD:
            eng.need_reward(name)
        return _sample_solutions(eng, problem, budget)

    strategy.__name__ = strategy.__qualname__ = f"{name}_strategy"
    strategy.__doc__ = (f"``budget`` independent full solutions (reported answer: {name}); every aggregation is "
                        "computed on them.")
    return strategy


for _name in sorted(IID_STRATEGIES):
    STRATEGIES.register(_name, _iid_strategy(_name))


def _root(eng: Engine, problem: Problem) -> tuple[str, Node, int]:
    prompt = eng.task.prompt(problem)
    n_prompt = eng.generator.count_tokens(prompt)
    return prompt, Node(steps=[], prefix_tokens=n_prompt), n_prompt


@STRATEGIES.register("rebase")
def rebase(eng: Engine, problem: Problem, budget: int) -> list[Candidate]:
    """REBASE (docs/references.md §2): sample ``budget`` first steps; at each depth the completed nodes reduce the budget
    (``B_i = B_{i-1} - C_i``), the unfinished ones get ``rebase_widths(rewards, B_i, T_b)`` children. Stops when the
    budget is spent, nothing is left to expand or the depth cap is reached; completed leaves are returned, then the
    unfinished nodes left at the end (marked unfinished)."""
    eng.need_reward("rebase")
    prompt, root, n_prompt = _root(eng, problem)
    completed: list[Node] = []
    unfinished: list[Node] = []
    frontier = eng.expand(problem, prompt, [root], [budget])
    remaining = budget
    while frontier:
        done = [nd for nd in frontier if nd.finished]
        completed += done
        remaining -= len(done)
        unfinished += [nd for nd in frontier if nd.terminal and not nd.finished]  # depth cap reached
        open_nodes = [nd for nd in frontier if not nd.terminal]
        if remaining <= 0 or not open_nodes:
            unfinished += open_nodes
            break
        widths = rebase_widths([nd.reward for nd in open_nodes], remaining, eng.settings.rebase_temperature)
        frontier = eng.expand(problem, prompt, open_nodes, widths)
    return [eng.node_candidate(problem, nd, n_prompt) for nd in completed + unfinished]


@STRATEGIES.register("beam")
def beam_search(eng: Engine, problem: Problem, budget: int) -> list[Candidate]:
    """Step-level beam search with the PRM: ``budget`` rows per depth; the best ``budget // beam_width`` unfinished
    nodes (by the last step's reward) each get ``beam_width`` children; finished nodes leave the beam. Stops when
    ``budget`` solutions finished, nothing is active or the depth cap is reached."""
    eng.need_reward("beam")
    prompt, root, n_prompt = _root(eng, problem)
    m = max(1, min(eng.settings.beam_width, budget))
    keep = max(1, budget // m)
    finished: list[Node] = []
    frontier = eng.expand(problem, prompt, [root], [budget])
    leftover: list[Node] = []
    while frontier:
        finished += [nd for nd in frontier if nd.finished]
        leftover += [nd for nd in frontier if nd.terminal and not nd.finished]
        active = [nd for nd in frontier if not nd.terminal]
        if len(finished) >= budget or not active:
            leftover += active
            break
        best = sorted(active, key=lambda nd: -nd.reward)[:keep]
        frontier = eng.expand(problem, prompt, best, [m] * len(best))
    return [eng.node_candidate(problem, nd, n_prompt) for nd in finished + leftover]


@STRATEGIES.register("mcts")
def mcts(eng: Engine, problem: Problem, budget: int) -> list[Candidate]:
    """MCTS as seed B's baseline: ``budget`` expansions; select by UCT (C = ``mcts_c``); expand the root to
    ``mcts_root_width`` children and other nodes to ``mcts_width``; with ``mcts_rollouts`` (default) each new node is
    completed by one sampled rollout whose final reward is its value, else its value is its own PRM reward; values
    are backed up as running means. Returns the rollouts, every terminal leaf (finished or depth-capped) and the
    unexpanded leaves (unfinished)."""
    eng.need_reward("mcts")
    s = eng.settings
    prompt, root, n_prompt = _root(eng, problem)
    rollouts: list[Candidate] = []
    for _ in range(budget):
        node = uct_select(root, s.mcts_c)
        if node.terminal:
            backup(node, node.reward)
            continue
        width = s.mcts_root_width if node is root else s.mcts_width
        children = eng.expand(problem, prompt, [node], [width])
        values = (_rollouts(eng, problem, prompt, children, n_prompt, rollouts) if s.mcts_rollouts
                  else [c.reward for c in children])
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
    return rollouts + [eng.node_candidate(problem, nd, n_prompt) for nd in leaves]


def _rollouts(eng: Engine, problem: Problem, prompt: str, nodes: Sequence[Node], n_prompt: int,
              out: list[Candidate]) -> list[float]:
    """Complete every non-terminal node with one sampled continuation (its K/V prefix cached), score it, append it
    to ``out`` as a candidate; returns each node's value (the rollout's final reward; a terminal node's own)."""
    todo = [nd for nd in nodes if not nd.terminal]
    values = {id(nd): nd.reward for nd in nodes if nd.terminal}
    if todo:
        params = eng.params(stop=tuple(eng.task.final_stop))
        comps = eng.gen([prompt + nd.text for nd in todo], [1] * len(todo), params, [nd.prefix_tokens for nd in todo])
        cap = eng.settings.depth_cap  # a rollout is a path too: cut at the cap, unfinished, like the tree's
        full = [[*nd.steps, *eng.task.split_steps(c[0].text)] for nd, c in zip(todo, comps, strict=True)]
        paths = [steps[:cap] for steps in full]
        scores = eng.score(problem, prompt, paths)
        for nd, (comp,), steps, whole, sc in zip(todo, comps, paths, full, scores, strict=True):
            reason = "depth" if len(whole) > cap else comp.finish_reason
            out.append(eng.candidate(problem, "".join(steps), reason not in ("length", "depth"), sc, n_prompt,
                                     nd.path_tokens + comp.completion_tokens, reason))
            values[id(nd)] = sc[-1] if sc else 0.0
    return [values[id(nd)] for nd in nodes]


def with_settings(settings: SearchSettings, **changes: object) -> SearchSettings:
    return settings.model_copy(update=changes)
