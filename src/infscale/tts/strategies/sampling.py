"""Greedy decoding and independent sampling (Wu et al., docs/references.md §2).

``greedy`` writes one temperature-0 solution (its budget is fixed at 1; it is not scored). The sampling strategies
draw ``n`` independent full solutions in one request and score them with the reward model when there is one;
``sampling`` reports majority vote and the others are the same draw named after the aggregation they report
(``majority_vote``, ``best_of_n``, ``weighted_vote``). Every aggregation is computed on every pool, and the analysis
subsamples the largest pool to any smaller n.
"""

from __future__ import annotations

from infscale.tts.core.search import Search, SearchContext
from infscale.tts.core.spec import StrategySpec


def greedy(ctx: SearchContext) -> Search:
    """One temperature-0 solution."""
    return (yield from ctx.sample_solutions(1, temperature=0.0, scored=False))


def sampling(ctx: SearchContext) -> Search:
    """``budget`` independent full solutions, scored."""
    return (yield from ctx.sample_solutions(ctx.budget))


GREEDY = StrategySpec(name="greedy", label="greedy", search=greedy, reports="greedy", fixed_budget=1)
SAMPLING = StrategySpec(name="sampling", label="sampling", search=sampling, iid=True, reports="majority_vote")
MAJORITY_VOTE = StrategySpec(name="majority_vote", label="sampling", search=sampling, iid=True,
                             reports="majority_vote")
BEST_OF_N = StrategySpec(name="best_of_n", label="sampling", search=sampling, iid=True, needs_reward=True,
                         reports="best_of_n")
WEIGHTED_VOTE = StrategySpec(name="weighted_vote", label="sampling", search=sampling, iid=True, needs_reward=True,
                             reports="weighted_vote")
