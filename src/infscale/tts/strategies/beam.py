"""Step-level beam search with a process reward model (Wu et al.'s baseline; search-and-learn's PRM beam search)."""

from __future__ import annotations

from pydantic import Field

from infscale.configio import Strict
from infscale.tts.core.config import MAX_BUDGET
from infscale.tts.core.search import Node, Search, SearchContext
from infscale.tts.core.spec import StrategySpec


class BeamSettings(Strict):
    width: int = Field(4, ge=1, le=MAX_BUDGET)
    """Children of each kept beam; ``budget // width`` beams are kept."""


def beam_search(ctx: SearchContext) -> Search:
    """``budget`` rows per depth; the best ``budget // width`` unfinished nodes (by the last step's reward) each get
    ``width`` children; finished nodes leave the beam. Stops when ``budget`` solutions finished, nothing is active or
    the depth cap is reached."""
    budget = ctx.budget
    m = max(1, min(ctx.options.width, budget))
    keep = max(1, budget // m)
    finished: list[Node] = []
    frontier = yield from ctx.expand([ctx.root()], [budget])
    leftover: list[Node] = []
    while frontier:
        finished += [nd for nd in frontier if nd.finished]
        leftover += [nd for nd in frontier if nd.terminal and not nd.finished]
        active = [nd for nd in frontier if not nd.terminal]
        if len(finished) >= budget or not active:
            leftover += active
            break
        best = sorted(active, key=lambda nd: -nd.reward)[:keep]
        frontier = yield from ctx.expand(best, [m] * len(best))
    return [ctx.node_candidate(nd) for nd in finished + leftover]


SPEC = StrategySpec(name="beam", label="beam search", search=beam_search, needs_reward=True, step_scored=True,
                    reward_steers=True, settings=BeamSettings)
