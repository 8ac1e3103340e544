"""What a strategy sees while it runs on one problem: `SearchContext`, the requests it yields, and search-tree nodes.

A strategy is a Python generator function (``def search(ctx): ...``) that *yields* requests and receives their
results: ``comps = yield Generate(...)`` (one generator request: prompts, samples per prompt, sampling settings) and
``scores = yield Score(...)`` (one reward request: the step texts of paths to score). It returns its candidates. It
never calls a model itself, so the scheduler (`infscale.tts.core.scheduler`) can run many problems' strategies at
once and answer all their pending requests with one generator call and one reward call: sampling sends every
problem's samples together, a tree search every problem's frontier of the current depth.

Helpers compose with ``yield from``: ``children = yield from ctx.expand(nodes, widths)`` samples one step for each
node and scores the new paths; ``cands = yield from ctx.sample_solutions(n)`` samples and scores ``n`` full solutions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from infscale.tts.core.aggregation import aggregate
from infscale.tts.core.config import SearchSettings
from infscale.tts.core.generation import Completion, SamplingParams, derive_seed
from infscale.tts.core.records import Candidate
from infscale.tts.core.tasks import Problem, Task

__all__ = ["Generate", "Node", "Score", "Search", "SearchContext"]


@dataclass(frozen=True, slots=True)
class Generate:
    """One generator request of a unit: ``n[i]`` samples of ``prompts[i]``; ``cached[i]`` prompt tokens of it are
    already in the KV cache (a tree path produced earlier), for the FLOPs ledger."""

    prompts: tuple[str, ...]
    n: tuple[int, ...]
    params: SamplingParams
    cached: tuple[int, ...]

    @property
    def rows(self) -> int:
        return sum(self.n)


@dataclass(frozen=True, slots=True)
class Score:
    """One reward request of a unit: every path as its list of step texts (after the unit's prompt)."""

    paths: tuple[tuple[str, ...], ...]


Search = Generator[Generate | Score, Any, list[Candidate]]
"""What a strategy's search function returns when called: a generator of requests whose value is the candidates."""


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


class SearchContext:
    """One unit of work as a strategy sees it: the problem, its budget, the shared search settings, the strategy's
    own settings (``options``), and the helpers that turn requests into candidates and tree nodes."""

    def __init__(self, *, task: Task, problem: Problem, budget: int, settings: SearchSettings, options: Any,
                 count_tokens: Callable[[str], int], context_tokens: int | None, seed: int) -> None:
        self.task, self.problem, self.budget = task, problem, budget
        self.settings, self.options = settings, options
        self.context_tokens = context_tokens
        """The policy's context window in tokens (``None``: unknown)."""
        self.seed = seed
        self.prompt = task.prompt(problem)
        self._count_tokens = count_tokens
        self._n_prompt: int | None = None

    # ----- requests ---------------------------------------------------------------------------------------------
    def params(self, *, temperature: float | None = None, max_tokens: int | None = None,
               stop: tuple[str, ...] = ()) -> SamplingParams:
        s = self.settings
        return SamplingParams(temperature=s.temperature if temperature is None else temperature, top_p=s.top_p,
                              max_tokens=max_tokens or s.max_tokens, stop=stop)

    def rng(self, *tag: object) -> random.Random:
        """A random stream of this unit for a strategy's own draws (particle resampling), keyed by ``tag``."""
        return random.Random(derive_seed(self.seed, "strategy", *tag))

    def score(self, paths: Sequence[Sequence[str]]) -> Generator[Score, Any, list[tuple[float, ...]]]:
        """The reward of every step of every path (empty tuples without a reward model)."""
        if not paths:
            return []
        return (yield Score(tuple(tuple(p) for p in paths)))

    # ----- candidates -------------------------------------------------------------------------------------------
    @property
    def n_prompt(self) -> int:
        """Tokens of the problem's prompt (the policy's tokenizer)."""
        if self._n_prompt is None:
            self._n_prompt = self._count_tokens(self.prompt)
        return self._n_prompt

    def candidate(self, text: str, finished: bool, step_scores: Sequence[float], prompt_tokens: int,
                  completion_tokens: int, finish_reason: str | None = None) -> Candidate:
        answer = self.task.parse_answer(text)
        return Candidate(text=text, answer=answer, finished=finished, step_scores=tuple(step_scores),
                         score=aggregate(step_scores, self.settings.aggregation), prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens, correct=self.task.is_correct(answer, self.problem.gold),
                         finish_reason=finish_reason)

    def node_candidate(self, node: Node) -> Candidate:
        return self.candidate(node.text, node.finished, node.step_scores, self.n_prompt, node.path_tokens,
                              node.finish_reason)

    def sample_solutions(self, n: int, *, temperature: float | None = None,
                         scored: bool = True) -> Generator[Generate | Score, Any, list[Candidate]]:
        """``n`` independent full solutions of the prompt (scored by the reward model when ``scored``)."""
        params = self.params(temperature=temperature, stop=tuple(self.task.final_stop))
        comps: list[list[Completion]] = yield Generate((self.prompt,), (n,), params, (0,))
        row = comps[0]
        steps = [self.task.split_steps(c.text) for c in row]
        scores = (yield from self.score(steps)) if scored else [() for _ in row]
        return [self.candidate(c.text, c.finish_reason != "length", s, c.prompt_tokens, c.completion_tokens,
                               c.finish_reason) for c, s in zip(row, scores, strict=True)]

    # ----- trees ------------------------------------------------------------------------------------------------
    def root(self) -> Node:
        return Node(steps=[], prefix_tokens=self.n_prompt)

    def expand(self, nodes: Sequence[Node], widths: Sequence[int]) -> Generator[Generate | Score, Any, list[Node]]:
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
        outs: list[list[Completion]] = yield Generate(tuple(self.prompt + nd.text for nd, _ in todo),
                                                      tuple(w for _, w in todo), params, tuple(cached))
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
        scores = yield from self.score([c.steps for c in children])
        for c, s in zip(children, scores, strict=True):
            c.step_scores = tuple(s)
        return children
