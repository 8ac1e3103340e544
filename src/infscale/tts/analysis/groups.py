"""Accuracy per problem group (MATH's level and subject), with Wilson intervals (pure).

A benchmark mixes easy and hard problems; a strategy that wins on average may lose at level 5. Each record carries its
problem's ``groups`` (`infscale.tts.core.tasks.Problem.groups`); here every (group key, group value, model, strategy,
aggregation, budget) gets its accuracy over the problems in it and a 95% Wilson interval (few problems per level: a
normal interval would leave [0, 1])."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupAccuracy:
    key: str
    """The group's name (``level``, ``subject``)."""
    value: str
    model: str
    strategy: str
    """``strategy+aggregation`` as the operating points name it."""
    budget: int
    n_problems: int
    accuracy: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (``(nan, nan)`` for ``n = 0``)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_by_group(records: Iterable[Any]) -> list[GroupAccuracy]:
    """Every group's accuracy per (model, strategy+aggregation, budget), from the records' ``correct`` verdicts;
    failed records and records without groups are left out. Sorted by key, value (levels numerically), model,
    strategy, budget."""
    cells: dict[tuple[str, str, str, str, int], list[bool]] = {}
    for r in records:
        if r.error is not None or not getattr(r, "groups", None):
            continue
        for agg, ok in r.correct.items():
            label = r.strategy if agg == r.strategy else f"{r.strategy}+{agg}"
            for key, value in r.groups.items():
                cells.setdefault((key, str(value), r.model, label, int(r.budget)), []).append(bool(ok))
    out = []
    for (key, value, model, label, budget), oks in cells.items():
        lo, hi = wilson_interval(sum(oks), len(oks))
        out.append(GroupAccuracy(key=key, value=value, model=model, strategy=label, budget=budget,
                                 n_problems=len(oks), accuracy=sum(oks) / len(oks), ci_low=lo, ci_high=hi))

    def order(g: GroupAccuracy) -> tuple[Any, ...]:
        numeric = g.value.lstrip("-").isdigit()
        return (g.key, 0 if numeric else 1, int(g.value) if numeric else 0, g.value, g.model, g.strategy, g.budget)

    return sorted(out, key=order)
