"""Particle filtering (Puri et al. 2025, "A probabilistic inference approach to inference-time scaling of LLMs using
particle-based Monte Carlo methods", arXiv 2502.01618; docs/references.md).

``n`` particles (partial solutions) move one step at a time: each particle's latest step reward is its weight,
``w_i ∝ exp(r_i / T)`` (a softmax at the resampling temperature ``T``), ``n`` particles are drawn from the population
with replacement by those weights, and every drawn particle that is not finished is extended by one sampled step and
scored. A finished particle is carried as it is (it can be drawn again, or lose its place). The search stops when
every particle is finished or stopped (the depth cap, the context), and returns the final population, repeats
included: a particle drawn k times votes k times. Unlike beam search and REBASE, a weak path survives with
probability proportional to its weight instead of being pruned, which the paper credits for robustness to an
imperfect reward model. The draws are keyed by the unit's seed and the step (`SearchContext.rng`).
"""

from __future__ import annotations

import math
from collections import Counter

from pydantic import Field

from infscale.configio import Strict
from infscale.tts.core.search import Node, Search, SearchContext
from infscale.tts.core.spec import StrategySpec


class ParticleFilterSettings(Strict):
    resample_temperature: float = Field(0.2, gt=0, allow_inf_nan=False)
    """T of the resampling weights ``exp(r / T)``: lower follows the reward model more greedily."""


def resampling_weights(rewards: list[float], temperature: float) -> list[float]:
    """Softmax of ``rewards / temperature`` (shifted by the maximum, so no weight overflows)."""
    top = max(rewards)
    e = [math.exp((r - top) / temperature) for r in rewards]
    total = sum(e)
    return [x / total for x in e]


def particle_filter(ctx: SearchContext) -> Search:
    n, temperature = ctx.budget, ctx.options.resample_temperature
    particles = yield from ctx.expand([ctx.root()], [n])
    step = 0
    while any(not p.terminal for p in particles):
        step += 1
        weights = resampling_weights([p.reward for p in particles], temperature)
        drawn = ctx.rng("resample", step).choices(range(len(particles)), weights=weights, k=n)
        kept = [particles[i] for i in sorted(drawn) if particles[i].terminal]
        grow = Counter(i for i in drawn if not particles[i].terminal)
        nodes: list[Node] = [particles[i] for i in sorted(grow)]
        children = yield from ctx.expand(nodes, [grow[i] for i in sorted(grow)])
        particles = kept + children
    particles.sort(key=lambda p: not p.finished)
    return [ctx.node_candidate(p) for p in particles]


SPEC = StrategySpec(name="particle_filter", label="particle filtering", search=particle_filter, needs_reward=True,
                    step_scored=True, reward_steers=True, settings=ParticleFilterSettings)
