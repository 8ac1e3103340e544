"""Strategies, one registered `StrategySpec` each: a new strategy is one file and one registration.

A spec says everything the rest of infscale needs to know about a strategy:
- ``search``: its search function (a generator of requests, `infscale.tts.core.search`), run by the scheduler;
- ``needs_reward`` (refused without a reward model), ``step_scored`` (steers by the rewards of unfinished paths, so
  an outcome-only reward is refused), ``iid`` (its candidates are i.i.d. full solutions: the analysis subsamples
  them), ``reward_steers`` (the reward chose the candidates: every aggregation of its records pays the reward's
  FLOPs);
- ``label``: its name as users know it, in tables and plots;
- ``settings``: its own settings model (a `Strict` pydantic model: the ``settings:`` of its entry in a run config);
- ``reports``: the aggregation whose answer it reports, the one the life-cycle planner reads its curve from
  (sampling strategies are named after theirs; searches report weighted vote);
- the planner prices every strategy the same way, ``n`` samples of the deployment's output per query, plus the
  reward model's passes over the ``n`` solutions when ``needs_reward``.

The strategies of the papers are registered by name below (their files under `infscale.tts.strategies`); a plugin
registers its own through the ``infscale.plugins`` entry point group (`infscale.registry`)::

    from infscale.tts.core.spec import STRATEGIES, StrategySpec
    STRATEGIES.register("my_search", StrategySpec(name="my_search", label="my search", search=my_search, ...))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infscale.configio import Strict, validate_config
from infscale.errors import InputError
from infscale.registry import Registry
from infscale.tts.core.records import SCORED_AGGREGATIONS
from infscale.tts.core.search import Search, SearchContext

__all__ = ["STRATEGIES", "NoSettings", "StrategySpec", "get_strategy"]


class NoSettings(Strict):
    """A strategy without settings of its own (any key given is an error)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySpec:
    name: str
    label: str
    """The strategy's name as users know it (``REBASE``, ``beam search``, ``sampling``)."""
    search: Callable[[SearchContext], Search]
    needs_reward: bool = False
    step_scored: bool = False
    """Steers by the rewards of unfinished paths (an outcome-only reward would score every such path alike)."""
    iid: bool = False
    """Candidates are i.i.d. full solutions of one request."""
    reward_steers: bool = False
    """The reward model chose which candidates were produced."""
    reports: str = "weighted_vote"
    """The aggregation whose answer the strategy reports (``greedy``, ``majority_vote``, ``best_of_n``,
    ``weighted_vote``)."""
    settings: type[Strict] = NoSettings
    fixed_budget: int | None = None
    """A strategy whose budget is fixed (greedy: 1) runs once whatever budgets a config lists."""
    rows_of: Callable[[int, Any], int] | None = None
    """The most sequences one unit decodes in one request, from its budget and settings (default: the budget)."""

    def options(self, given: Mapping[str, Any] | None, where: str = "strategy settings") -> Any:
        """Its settings model validated from a config's ``settings:`` mapping (an error names the field)."""
        return validate_config(dict(given or {}), self.settings, where)

    def check(self, reward: Any, task: Any) -> None:
        """Refuse, in one line and before anything runs, a strategy that needs a reward model without one, or one
        that steers by step rewards with a reward that scores finished solutions only."""
        if self.needs_reward and reward is None:
            raise InputError(f"strategy {self.name!r} needs a reward model: set `reward:` in the config")
        if self.step_scored and reward is not None and reward.outcome_only:
            raise InputError(f"strategy {self.name!r} steers by the reward of each step, but reward {reward.name!r} "
                             f"on task {task.name!r} scores finished solutions only (every unfinished path would "
                             "score alike): use a process reward model (torch_prm, hf_prm) or an outcome strategy "
                             "(best_of_n, weighted_vote)")

    def budgets(self, budgets: list[int]) -> list[int]:
        return [self.fixed_budget] if self.fixed_budget is not None else list(budgets)

    def rows(self, budget: int, options: Any) -> int:
        """The most sequences one unit of it decodes in one request: what the scheduler's batch limits count."""
        if self.rows_of is not None:
            return max(1, int(self.rows_of(budget, options)))
        return self.fixed_budget or budget


STRATEGIES: Registry[StrategySpec] = Registry("strategy")
for _name, _where in (("greedy", "sampling:GREEDY"), ("sampling", "sampling:SAMPLING"),
                      ("majority_vote", "sampling:MAJORITY_VOTE"), ("best_of_n", "sampling:BEST_OF_N"),
                      ("weighted_vote", "sampling:WEIGHTED_VOTE"), ("beam", "beam:SPEC"), ("mcts", "mcts:SPEC"),
                      ("rebase", "rebase:SPEC"), ("particle_filter", "particle_filter:SPEC")):
    STRATEGIES.register(_name, f"infscale.tts.strategies.{_where}")


def get_strategy(name: str) -> StrategySpec:
    """The spec registered as ``name`` (an unknown name lists the known ones); a registered object that is not a
    `StrategySpec` is an error naming it."""
    spec = STRATEGIES.get(name)
    if not isinstance(spec, StrategySpec):
        raise InputError(f"strategy {name!r} is registered as {type(spec).__name__}, not a StrategySpec")
    return spec


# ----- the life-cycle planner's view --------------------------------------------------------------------------------
def planner_strategies() -> dict[str, StrategySpec]:
    """The strategies the life-cycle planner chooses among, by name: every registered one (plugins included) except
    a sampling strategy named after an aggregation it does not report (``sampling``: its curve is ``majority_vote``'s).
    The planner prices each as ``n`` samples per query, plus the reward model when it ``needs_reward``."""
    out = {}
    for name in STRATEGIES.names():
        spec = get_strategy(name)
        if spec.iid and spec.reports != name:
            continue
        out[name] = spec
    return out


def planner_name(label: str) -> str:
    """The planner's strategy for an operating point's ``strategy+aggregation`` label: ``greedy``; a sampling
    strategy read with an aggregation that names a planner strategy (``sampling+best_of_n`` -> ``best_of_n``); a
    search read with the aggregation it reports (``rebase+weighted_vote`` -> ``rebase``). Other labels
    (``rebase+majority_vote``) stay as they are: measured points of them can be chosen, not planned for."""
    method, sep, agg = label.partition("+")
    if not sep or method not in STRATEGIES:
        return label
    spec = get_strategy(method)
    if agg == "greedy" or method == "greedy":
        return "greedy"
    if spec.iid:  # read as another sampling strategy's reported aggregation: that strategy (`planner_strategies`)
        named = get_strategy(agg) if agg in STRATEGIES else None
        return agg if named is not None and named.iid and named.reports == agg else label
    return method if agg == spec.reports else label


def uses_reward(label: str) -> bool:
    """Whether the answers of an operating point paid for a reward model: a planner strategy that needs one, a search
    the reward steered, or an answer chosen by the reward (best-of-n, weighted vote)."""
    method, _, agg = label.partition("+")
    if method in STRATEGIES:
        spec = get_strategy(method)
        if spec.reward_steers or (not agg and spec.needs_reward):
            return True
    return agg in SCORED_AGGREGATIONS
