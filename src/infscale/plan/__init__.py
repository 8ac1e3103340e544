"""infscale.plan: what to train under inference budgets (pure: numpy only).

- `shapes`: vectorised enumeration of hardware-friendly shapes in a parameter range (`enumerate_shapes`, `ShapeGrid`).
- `optimum`: argmin predicted loss under latency / N / D / training-FLOP budgets and the loss-vs-latency frontier.
- `lifetime`: Sardana et al.'s lifetime cost (training + inference FLOPs or dollars) and its inverse.
- `adapters`: fitted laws and latency profiles as the planner's plain callables.
- `select`: Bian et al.'s model-selection workflow (rank, shortlist, train, evaluate, choose).
"""

from infscale.plan.adapters import (
    latency_from_profile,
    law_arch_terms,
    loss_from_law,
    memory_from_workload,
    resolve_profile,
    unpriced_choices,
)
from infscale.plan.lifetime import (
    FLOPS_COST,
    CostModel,
    LifetimePlan,
    lifetime_cost,
    lifetime_optimal,
    lowest_loss_for_budget,
    tokens_for_loss,
)
from infscale.plan.optimum import PlanConstraints, PlanResult, dominated_by, pareto_frontier, plan_shapes
from infscale.plan.shapes import FAMILIES, ShapeGrid, ShapeRules, enumerate_shapes, get_family, params_band

__all__ = [
    "FAMILIES", "FLOPS_COST", "CostModel", "LifetimePlan", "PlanConstraints", "PlanResult", "ShapeGrid", "ShapeRules",
    "dominated_by", "enumerate_shapes", "get_family", "latency_from_profile", "law_arch_terms", "lifetime_cost",
    "lifetime_optimal", "loss_from_law", "memory_from_workload", "lowest_loss_for_budget", "pareto_frontier", "params_band", "plan_shapes", "resolve_profile",
    "tokens_for_loss", "unpriced_choices",
]
