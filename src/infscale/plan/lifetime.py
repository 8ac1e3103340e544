"""Lifetime cost: training plus inference, as Sardana et al. (ICML 2024, "Beyond Chinchilla-Optimal").

FLOPs (their eq. 2): minimise ``6 N D_tr + 2 N D_inf`` subject to ``L(N, D_tr) = l``. For each N the loss constraint is
one equation in D_tr (the loss falls monotonically in D), solved here by bisection in ``log D`` on whole arrays (Sardana
use Newton; the root is the same). The cost is then a one-dimensional function of N, minimised on a log grid refined
around its best point.

Dollars (their §3): every phase runs at its own utilisation, ``cost = price / (3600 peak) * (6 N D_tr / u_train
+ 2 N D_prefill / u_prefill + 2 N D_decode / u_decode)``; FLOPs are the special case of unit weights.
The inverse problem, `lowest_loss_for_budget`, finds the lowest loss a total budget buys for a given inference demand.

The loss is any ``loss(n_params, n_tokens, aspect_ratio)`` callable (a fitted law); ``aspect_ratio`` is held fixed.
Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from infscale.errors import InfeasibleError
from infscale.laws.fitted import search_bound
from infscale.plan.optimum import LossFn

__all__ = [
    "CostModel",
    "FLOPS_COST",
    "LifetimePlan",
    "tokens_for_loss",
    "lifetime_cost",
    "lifetime_optimal",
    "lowest_loss_for_budget",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CostModel:
    """Cost per FLOP of each phase: ``usd_per_hour / (3600 * peak_flops * utilisation)``; defaults count raw FLOPs."""

    usd_per_hour: float | None = None
    """Price of one accelerator hour; ``None`` counts FLOPs instead of dollars."""
    peak_flops: float = 1.0
    """Peak FLOP/s of the accelerator (e.g. 312e12 for an A100 in bf16)."""
    util_train: float = 1.0
    """Model FLOPs utilisation during training."""
    util_prefill: float = 1.0
    """Utilisation while processing prompts (compute-bound, high)."""
    util_decode: float = 1.0
    """Utilisation while generating (memory-bound at small batch, low)."""

    def __post_init__(self) -> None:
        for name in ("peak_flops", "util_train", "util_prefill", "util_decode"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"CostModel.{name} must be positive, got {value!r}")
        for name in ("util_train", "util_prefill", "util_decode"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"CostModel.{name} is a utilisation in (0, 1], got {getattr(self, name)!r}")
        if self.usd_per_hour is not None and not self.usd_per_hour > 0:
            raise ValueError(f"CostModel.usd_per_hour must be positive, got {self.usd_per_hour!r}")

    @property
    def unit(self) -> str:
        return "FLOPs" if self.usd_per_hour is None else "USD"

    def per_flop(self, utilisation: float) -> float:
        if self.usd_per_hour is None:
            return 1.0
        return self.usd_per_hour / (3600.0 * self.peak_flops * utilisation)


FLOPS_COST = CostModel()


@dataclass(frozen=True, slots=True, kw_only=True)
class LifetimePlan:
    """A model size and training length with its lifetime cost."""

    n_params: float
    train_tokens: float
    loss: float
    train_flops: float
    """``6 N D_tr``."""
    inference_flops: float
    """``2 N (D_prefill + D_decode)``."""
    cost: float
    """Lifetime cost in `unit` (FLOPs or USD)."""
    unit: str
    at_bound: str | None = None
    """``"min N"`` / ``"max N"`` when the search ended on an end of its size range (the true optimum may lie beyond
    it: this is the best point searched, not an optimum); ``None`` for an interior optimum."""

    @property
    def tokens_per_param(self) -> float:
        return self.train_tokens / self.n_params

    @property
    def total_flops(self) -> float:
        return self.train_flops + self.inference_flops

    def to_dict(self) -> dict[str, float | str | None]:
        return {"n_params": self.n_params, "train_tokens": self.train_tokens, "tokens_per_param": self.tokens_per_param,
                "loss": self.loss, "train_flops": self.train_flops, "inference_flops": self.inference_flops,
                "total_flops": self.total_flops, "cost": self.cost, "unit": self.unit, "at_bound": self.at_bound}


def _loss(loss_fn: LossFn, n: np.ndarray, d: np.ndarray, aspect_ratio: float | np.ndarray | None,
          shapes: Any = None) -> np.ndarray:
    r = np.full(np.shape(n), np.nan) if aspect_ratio is None else \
        np.broadcast_to(np.asarray(aspect_ratio, dtype=np.float64), np.shape(n))
    if getattr(loss_fn, "reads_grid", False):
        return np.asarray(loss_fn(n, d, r, shapes), dtype=np.float64)
    return np.asarray(loss_fn(n, d, r), dtype=np.float64)


def tokens_for_loss(loss_fn: LossFn, n_params: np.ndarray, loss_target: float | np.ndarray, *,
                    aspect_ratio: float | np.ndarray | None = None, max_tokens: float = 1e20,
                    iterations: int = 80, shapes: Any = None) -> np.ndarray:
    """Training tokens D with ``L(N, D, R) = loss_target`` for each N (a target and an aspect ratio per N, or one
    for all); ``inf`` where even ``max_tokens`` falls short, 1 where any D does. ``shapes`` (one per N: a
    `ShapeGrid` or the planner's `Configs`) for a loss that reads them (``reads_grid``).

    Bisection in ``log D`` on ``[1, max_tokens]`` (the loss is non-increasing in D); 80 halvings of a 46-nat bracket
    leave a relative error below 1e-12.
    """
    n = np.atleast_1d(np.asarray(n_params, dtype=np.float64))
    loss_target = np.broadcast_to(np.asarray(loss_target, dtype=np.float64), n.shape)
    lo = np.zeros(n.shape)
    hi = np.full(n.shape, np.log(max_tokens))
    reachable = _loss(loss_fn, n, np.exp(hi), aspect_ratio, shapes) <= loss_target
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = _loss(loss_fn, n, np.exp(mid), aspect_ratio, shapes) > loss_target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.where(reachable, np.exp(hi), np.inf)


def lifetime_cost(n_params: np.ndarray, train_tokens: np.ndarray, *, prefill_tokens: float = 0.0,
                  decode_tokens: float = 0.0, cost: CostModel = FLOPS_COST) -> np.ndarray:
    """``w_tr 6 N D_tr + w_pre 2 N D_prefill + w_dec 2 N D_decode`` with per-FLOP weights from `cost`."""
    n = np.asarray(n_params, dtype=np.float64)
    d = np.asarray(train_tokens, dtype=np.float64)
    return (cost.per_flop(cost.util_train) * 6.0 * n * d
            + cost.per_flop(cost.util_prefill) * 2.0 * n * prefill_tokens
            + cost.per_flop(cost.util_decode) * 2.0 * n * decode_tokens)


def _refine_min(objective, lo: float, hi: float, points: int = 257, rounds: int = 6) -> float:
    """argmin of a 1-D function of ``log N`` on ``[lo, hi]``: a grid, then zoomed grids around the best point."""
    for _ in range(rounds):
        grid = np.linspace(lo, hi, points)
        values = objective(grid)
        if not np.isfinite(values).any():
            return float("nan")
        k = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, points - 1)]
    return float(grid[k])


def _plan(n: float, d: float, loss: float, prefill_tokens: float, decode_tokens: float, cost: CostModel,
          at_bound: str | None = None) -> LifetimePlan:
    total = float(lifetime_cost(n, d, prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, cost=cost))
    return LifetimePlan(n_params=n, train_tokens=d, loss=loss, train_flops=6.0 * n * d,
                        inference_flops=2.0 * n * (prefill_tokens + decode_tokens), cost=total, unit=cost.unit,
                        at_bound=at_bound)


def lifetime_optimal(loss_fn: LossFn, loss_target: float, *, prefill_tokens: float = 0.0, decode_tokens: float = 0.0,
                     cost: CostModel = FLOPS_COST, aspect_ratio: float | None = None,
                     n_params_range: tuple[float, float] = (1e6, 1e13)) -> LifetimePlan:
    """The (N, D_tr) reaching ``loss_target`` at the lowest lifetime cost for the given inference demand (Sardana eq. 2).

    With no inference demand this is the Chinchilla compute-optimal model for that loss.
    """
    if prefill_tokens < 0 or decode_tokens < 0:
        raise ValueError("lifetime_optimal: inference token counts must be non-negative")
    lo, hi = np.log(n_params_range[0]), np.log(n_params_range[1])

    def objective(log_n: np.ndarray) -> np.ndarray:
        n = np.exp(log_n)
        d = tokens_for_loss(loss_fn, n, loss_target, aspect_ratio=aspect_ratio)
        return lifetime_cost(n, d, prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, cost=cost)

    best = _refine_min(objective, lo, hi)
    if not np.isfinite(best):
        floor = float(_loss(loss_fn, np.array([n_params_range[1]]), np.array([1e20]), aspect_ratio)[0])
        raise InfeasibleError(f"infeasible: binding constraint loss target {loss_target:g}; the law's lowest loss in "
                              f"range is {floor:.4g} (N={n_params_range[1]:.3g}, D=1e20); closest feasible point needs "
                              f"--loss-target {floor:.4g}")
    n = float(np.exp(best))
    d = float(tokens_for_loss(loss_fn, np.array([n]), loss_target, aspect_ratio=aspect_ratio)[0])
    return _plan(n, d, loss_target, prefill_tokens, decode_tokens, cost, search_bound(best, lo, hi))


def lowest_loss_for_budget(loss_fn: LossFn, budget: float, *, prefill_tokens: float = 0.0, decode_tokens: float = 0.0,
                           cost: CostModel = FLOPS_COST, aspect_ratio: float | None = None,
                           n_params_range: tuple[float, float] = (1e6, 1e13)) -> LifetimePlan:
    """The inverse: the lowest loss a lifetime budget (FLOPs or USD) buys, serving the given inference demand.

    For each N the training tokens are what remains of the budget after inference: ``D_tr = (budget - inference(N))
    / (w_tr 6 N)``; the loss is then minimised over N.
    """
    if not budget > 0:
        raise ValueError(f"lowest_loss_for_budget: budget must be positive, got {budget!r}")
    w_tr = cost.per_flop(cost.util_train)
    lo, hi = np.log(n_params_range[0]), np.log(n_params_range[1])

    def tokens(n: np.ndarray) -> np.ndarray:
        inference = lifetime_cost(n, 0.0, prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, cost=cost)
        return (budget - inference) / (w_tr * 6.0 * n)

    def objective(log_n: np.ndarray) -> np.ndarray:
        n = np.exp(log_n)
        d = tokens(n)
        ok = d >= 1.0
        out = np.full(n.shape, np.inf)
        if ok.any():
            out[ok] = _loss(loss_fn, n[ok], d[ok], aspect_ratio)
        return out

    best = _refine_min(objective, lo, hi)
    if not np.isfinite(best):
        n0 = n_params_range[0]
        need = float(lifetime_cost(n0, 1.0, prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, cost=cost))
        raise InfeasibleError(f"infeasible: binding constraint budget {budget:g} {cost.unit}; serving the inference "
                              f"demand alone exceeds it; closest feasible point N={n0:.3g} needs a budget of {need:.4g}")
    n = float(np.exp(best))
    d = float(tokens(np.array([n]))[0])
    loss = float(_loss(loss_fn, np.array([n]), np.array([d]), aspect_ratio)[0])
    return _plan(n, d, loss, prefill_tokens, decode_tokens, cost, search_bound(best, lo, hi))
