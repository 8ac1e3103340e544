"""Constrained optimum and the loss-vs-latency Pareto frontier over a grid of shapes (Bian et al.'s optimisation, §1).

Problem: ``argmin_shape L(N, D, R)`` subject to any of ``latency(shape) <= T``, ``N <= N_C``, ``D <= D_C`` and training
FLOPs ``6 N D <= C``. The loss never rises with D, so each shape trains on the most tokens its budgets allow,
``D = min(D_C, C / 6N)``, unless the caller fixes D. Everything is evaluated on whole numpy arrays.

The loss and the latency enter as plain callables (`LossFn`, `LatencyFn`) so any law or hardware model plugs in, and tests
use closed-form functions. When no shape is feasible, `InfeasibleError` names the binding constraint and the closest
feasible point: the shape that needs the smallest relaxation, and the limit that would admit it.

Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from infscale.errors import InfeasibleError
from infscale.plan.shapes import ShapeGrid

__all__ = [
    "LossFn",
    "LatencyFn",
    "PlanConstraints",
    "PlanResult",
    "pareto_frontier",
    "baseline_verdict",
    "fastest_within",
    "dominated_by",
    "plan_shapes",
    "measured_override",
]

LossFn = Callable[..., np.ndarray]
"""``loss(n_params, n_tokens, aspect_ratio) -> loss`` on arrays (a fitted law's ``predict``); a function with a true
``reads_grid`` attribute also takes the `ShapeGrid` (``loss(n, d, R, grid)``): an architecture-conditional law reads
the shapes' KV heads and FFN widths from it."""


def grid_loss(loss_fn: LossFn, grid: ShapeGrid, n_params: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    """``loss_fn`` on every shape of ``grid`` at ``n_tokens``."""
    r = grid.aspect_ratio.astype(np.float64)
    return loss_fn(n_params, n_tokens, r, grid) if getattr(loss_fn, "reads_grid", False) else loss_fn(n_params,
                                                                                                       n_tokens, r)
LatencyFn = Callable[[ShapeGrid], np.ndarray]
"""``latency(grid) -> seconds per request`` for every shape of a grid."""
MemoryFn = Callable[[ShapeGrid], np.ndarray]
"""``memory(grid) -> bytes`` a served shape needs (weights + KV cache at the workload)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanConstraints:
    """Budgets of the planning problem. ``None`` leaves a constraint out."""

    max_latency_s: float | None = None
    """T: latency limit per request on the hardware profile, seconds."""
    max_params: float | None = None
    """N_C: most parameters."""
    max_tokens: float | None = None
    """D_C: most training tokens."""
    max_train_flops: float | None = None
    """C: most training FLOPs (``6 N D``)."""
    n_tokens: float | None = None
    """Fixed training tokens D for every shape; ``None``: the most the budgets allow."""
    max_memory_bytes: float | None = None
    """M: device memory for serving (weights + KV cache at the workload), bytes; from the hardware profile."""

    def __post_init__(self) -> None:
        for name in ("max_latency_s", "max_params", "max_tokens", "max_train_flops", "n_tokens", "max_memory_bytes"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"PlanConstraints.{name} must be a positive number, got {value!r}")
        if self.n_tokens is None and self.max_tokens is None and self.max_train_flops is None:
            raise ValueError("PlanConstraints: give n_tokens, max_tokens or max_train_flops (the loss needs a D)")

    def tokens_for(self, n_params: np.ndarray) -> np.ndarray:
        """Training tokens per shape: fixed, or ``min(D_C, C / 6N)``."""
        n = np.asarray(n_params, dtype=np.float64)
        if self.n_tokens is not None:
            return np.full(n.shape, float(self.n_tokens))
        d = np.full(n.shape, np.inf)
        if self.max_tokens is not None:
            d = np.minimum(d, self.max_tokens)
        if self.max_train_flops is not None:
            d = np.minimum(d, self.max_train_flops / (6.0 * n))
        return d


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class PlanResult:
    """Every candidate scored, the feasible set, the optimum and the loss-vs-latency frontier."""

    grid: ShapeGrid
    n_tokens: np.ndarray
    """Training tokens D of each shape."""
    loss: np.ndarray
    """Predicted loss of each shape."""
    latency_s: np.ndarray
    """Latency of each shape (predicted, or measured where a record exists); NaN without a latency model."""
    latency_measured: np.ndarray
    """True where the latency comes from a measurement."""
    train_flops: np.ndarray
    """``6 N D``."""
    memory_bytes: np.ndarray
    """Serving memory of each shape (weights + KV cache); NaN without a memory model."""
    admissible: np.ndarray
    """Meets every constraint but the latency limit (the frontier is drawn over these)."""
    feasible: np.ndarray
    """Meets every constraint."""
    best: int
    """Position of the optimum in `grid`."""
    frontier: np.ndarray
    """Positions of the Pareto-optimal admissible shapes, by increasing latency."""
    constraints: PlanConstraints

    def row(self, i: int) -> dict[str, object]:
        """One candidate as a flat record (for tables and JSON)."""
        g = self.grid
        return {
            "label": g.label(i), "d_model": int(g.d_model[i]), "n_layers": int(g.n_layers[i]),
            "n_heads": int(g.n_heads[i]), "n_kv_heads": int(g.n_kv_heads[i]), "head_dim": int(g.head_dim[i]),
            "d_ff": int(g.d_ff[i]), "n_params": int(g.n_params[i]), "aspect_ratio": float(g.aspect_ratio[i]),
            "ffn_ratio": float(g.ffn_ratio[i]), "kv_group": float(g.kv_group[i]),
            "n_tokens": float(self.n_tokens[i]), "train_flops": float(self.train_flops[i]),
            "loss": float(self.loss[i]),
            "latency_s": float(self.latency_s[i]) if np.isfinite(self.latency_s[i]) else None,
            "latency_measured": bool(self.latency_measured[i]),
            "memory_bytes": float(self.memory_bytes[i]) if np.isfinite(self.memory_bytes[i]) else None,
            "feasible": bool(self.feasible[i]),
            "on_frontier": bool(np.isin(i, self.frontier)),
        }

    def dominators(self, i: int) -> np.ndarray:
        """Admissible shapes at least as good as ``i`` in loss and latency and better in one (empty: undominated)."""
        cand = np.flatnonzero(self.admissible)
        hit = dominated_by(self.loss[i], self.latency_s[i], self.loss[cand], self.latency_s[cand])
        return cand[hit]

    def ranked(self) -> np.ndarray:
        """Feasible positions by increasing predicted loss (ties: lower latency first)."""
        pos = np.flatnonzero(self.feasible)
        order = np.lexsort((self.latency_s[pos], self.loss[pos]))
        return pos[order]


def pareto_frontier(cost: Sequence[float] | np.ndarray, loss: Sequence[float] | np.ndarray) -> np.ndarray:
    """Positions of the points no other point beats (no more ``cost`` and strictly lower ``loss``), by increasing
    cost; of points equal in both, the first. The one frontier of the toolkit: loss vs latency in the planner,
    ``-accuracy`` vs FLOPs in the test-time compute analysis.

    Sort by (cost, loss); a point is on the frontier when its loss is strictly below every loss before it.
    """
    loss = np.asarray(loss, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if loss.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((loss, cost))
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(loss[order])[:-1]])
    return order[loss[order] < best_before].astype(np.int64)


def dominated_by(loss_i: float, latency_i: float, loss: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Mask of the points that dominate ``(loss_i, latency_i)``: no worse in both, strictly better in one."""
    no_worse = (loss <= loss_i) & (latency <= latency_i)
    return no_worse & ((loss < loss_i) | (latency < latency_i))


def measured_override(grid: ShapeGrid, latency_s: np.ndarray,
                      measured: Mapping[tuple[int, int, int, int], float]) -> tuple[np.ndarray, np.ndarray]:
    """Replace predictions by measurements keyed ``(d_model, n_layers, n_heads, n_kv_heads)``; returns (latency, mask)."""
    out = np.array(latency_s, dtype=np.float64, copy=True)
    mask = np.zeros(len(grid), dtype=bool)
    for (d, layers, heads, kv), value in measured.items():
        hit = (grid.d_model == d) & (grid.n_layers == layers) & (grid.n_heads == heads) & (grid.n_kv_heads == kv)
        out[hit] = value
        mask |= hit
    return out, mask


# name, CLI flag, unit, format
_CONSTRAINTS = (
    ("latency", "max_latency_s", "--max-latency", "s", "{:.3g}"),
    ("parameters", "max_params", "--max-params", "", "{:.4g}"),
    ("training tokens", "max_tokens", "--max-tokens", "", "{:.4g}"),
    ("training FLOPs", "max_train_flops", "--max-train-flops", "", "{:.4g}"),
    ("memory", "max_memory_bytes", "device memory", " B", "{:.3g}"),
)


def plan_shapes(
    grid: ShapeGrid,
    loss_fn: LossFn,
    constraints: PlanConstraints,
    latency_fn: LatencyFn | None = None,
    *,
    measured: Mapping[tuple[int, int, int, int], float] | None = None,
    memory_fn: MemoryFn | None = None,
) -> PlanResult:
    """Score every shape, apply the constraints, return the optimum and the frontier (raises `InfeasibleError`).

    ``memory_fn`` gives each shape's serving memory; with ``constraints.max_memory_bytes`` a shape that does not fit
    the device is infeasible (an infeasible plan can name ``memory`` as its binding constraint)."""
    if len(grid) == 0:
        raise InfeasibleError("no candidate shapes: the parameter range and the family rules admit no shape")
    if constraints.max_latency_s is not None and latency_fn is None and not measured:
        raise ValueError("plan_shapes: a latency limit needs a latency model (latency_fn) or measurements")
    n = grid.n_params.astype(np.float64)
    d = constraints.tokens_for(n)
    flops = 6.0 * n * d
    loss = np.asarray(grid_loss(loss_fn, grid, n, d), dtype=np.float64)
    if loss.shape != n.shape:
        raise ValueError(f"plan_shapes: the loss function returned shape {loss.shape}, expected {n.shape}")
    latency = np.full(n.shape, np.nan) if latency_fn is None else np.asarray(latency_fn(grid), dtype=np.float64)
    measured_mask = np.zeros(n.shape, dtype=bool)
    if measured:
        latency, measured_mask = measured_override(grid, latency, measured)

    if constraints.max_memory_bytes is not None and memory_fn is None:
        raise ValueError("plan_shapes: a memory limit needs a memory model (memory_fn)")
    memory = np.full(n.shape, np.nan) if memory_fn is None else np.asarray(memory_fn(grid), dtype=np.float64)
    values = {"max_latency_s": latency, "max_params": n, "max_tokens": d, "max_train_flops": flops,
              "max_memory_bytes": memory}
    # ratio value / limit per active constraint; > 1 violates
    ratios = {key: values[key] / getattr(constraints, key) for _, key, *_ in _CONSTRAINTS
              if getattr(constraints, key) is not None}
    ok = {key: np.isfinite(r) & (r <= 1.0) for key, r in ratios.items()}
    finite = np.isfinite(loss)
    admissible = finite.copy()
    for key, mask in ok.items():
        if key != "max_latency_s":
            admissible &= mask
    feasible = admissible & ok.get("max_latency_s", True)

    if not feasible.any():
        raise InfeasibleError(_infeasible_message(grid, ratios, ok, finite, values, constraints))

    pos = np.flatnonzero(feasible)
    lat_key = np.where(np.isnan(latency[pos]), 0.0, latency[pos])
    best = int(pos[np.lexsort((lat_key, loss[pos]))[0]])
    front_pos = np.flatnonzero(admissible & np.isfinite(latency))
    frontier = front_pos[pareto_frontier(latency[front_pos], loss[front_pos])]
    return PlanResult(grid=grid, n_tokens=d, loss=loss, latency_s=latency, latency_measured=measured_mask,
                      train_flops=flops, memory_bytes=memory, admissible=admissible, feasible=feasible, best=best, frontier=frontier,
                      constraints=constraints)


def _infeasible_message(grid: ShapeGrid, ratios: dict[str, np.ndarray], ok: dict[str, np.ndarray],
                        finite: np.ndarray, values: dict[str, np.ndarray], constraints: PlanConstraints) -> str:
    """One line: the binding constraint, the closest feasible point and the relaxation that admits it."""
    if not finite.any():
        return "infeasible: the loss law gives no finite prediction for any candidate shape"
    keys = list(ratios)
    # binding: a constraint whose removal alone leaves a feasible shape; otherwise the one violated the most
    binding = []
    for key in keys:
        others = finite.copy()
        for other in keys:
            if other != key:
                others &= ok[other]
        if others.any():
            binding.append(key)
    excess = np.zeros(len(grid))
    for key in keys:
        r = np.where(np.isfinite(ratios[key]), ratios[key], np.inf)
        excess = excess + np.log(np.maximum(r, 1.0))
    excess = np.where(finite, excess, np.inf)
    closest = int(np.argmin(excess))  # the shape needing the smallest total relative relaxation
    if not binding:
        worst = {key: float(np.min(np.where(finite, ratios[key], np.inf))) for key in keys}
        binding = [max(worst, key=worst.get)]
    spec = {key: (name, flag, unit, fmt) for name, key, flag, unit, fmt in _CONSTRAINTS}
    names = " and ".join(f"{spec[k][0]} <= {spec[k][3].format(getattr(constraints, k))}{spec[k][2]} ({spec[k][1]})"
                         for k in binding)
    relax = ", ".join(f"{spec[k][1]} {spec[k][3].format(values[k][closest])}" for k in keys
                      if ratios[k][closest] > 1.0)
    point = (f"{grid.label(closest)} (N={grid.n_params[closest]:.4g}, D={values['max_tokens'][closest]:.4g}"
             + (f", latency={values['max_latency_s'][closest]:.3g}s" if "max_latency_s" in keys else "") + ")")
    return f"infeasible: binding constraint {names}; closest feasible point {point} needs {relax}"


def fastest_within(result: PlanResult, max_loss_increase: float) -> int:
    """The fastest feasible shape whose predicted loss is at most ``max_loss_increase`` (a fraction) above the lowest
    predicted loss among the feasible shapes: the "accurate and fast" pick of a fixed size (ties: lower loss)."""
    if not max_loss_increase >= 0:
        raise ValueError(f"fastest_within: max_loss_increase must be >= 0, got {max_loss_increase!r}")
    pos = np.flatnonzero(result.feasible & np.isfinite(result.latency_s))
    if pos.size == 0:
        raise InfeasibleError("no feasible shape has a latency to compare")
    near = pos[result.loss[pos] <= result.loss[pos].min() * (1.0 + max_loss_increase)]
    return int(near[np.lexsort((result.loss[near], result.latency_s[near]))[0]])


def baseline_verdict(result: PlanResult, i: int) -> dict[str, object]:
    """Candidate ``i`` (a baseline placed on the grid) as a row, with who dominates it: how many admissible shapes,
    the fastest of them (ties: lowest loss) and the one with the lowest loss."""
    return _with_dominators(result, result.row(i), result.dominators(i))


def _with_dominators(result: PlanResult, row: dict[str, object], doms: np.ndarray) -> dict[str, object]:
    """``row`` with who dominates it among ``doms`` (positions in ``result``): how many, the fastest (ties: lowest
    loss) and the one with the lowest loss."""
    row["dominated"] = bool(doms.size)
    row["n_dominating"] = int(doms.size)
    if doms.size:
        fastest = int(doms[np.lexsort((result.loss[doms], result.latency_s[doms]))[0]])
        row["dominated_by"] = result.grid.label(fastest)
        row["dominated_by_latency_s"] = float(result.latency_s[fastest])
        row["dominated_by_loss"] = float(result.loss[fastest])
        row["best_dominating"] = result.grid.label(int(doms[np.argmin(result.loss[doms])]))
    return row


def foreign_baseline_verdict(result: PlanResult, shape_grid: ShapeGrid, loss_fn: LossFn,
                             latency_fn: LatencyFn | None = None, memory_fn: MemoryFn | None = None,
                             measured: Mapping[tuple[int, int, int, int], float] | None = None) -> dict[str, object]:
    """`baseline_verdict` for a one-shape grid scored on its own (a baseline whose vocabulary, tying or FFN kind
    differs from the candidates'): the same tokens, law, latency and memory models, compared with the plan's
    admissible shapes. Its ``on_frontier`` / ``feasible`` say whether it would be on the frontier / within budgets."""
    g, cons = shape_grid, result.constraints
    n = g.n_params.astype(np.float64)
    d = cons.tokens_for(n)
    loss = np.asarray(grid_loss(loss_fn, g, n, d), dtype=np.float64)
    latency = np.full(1, np.nan) if latency_fn is None else np.asarray(latency_fn(g), dtype=np.float64)
    was_measured = np.zeros(1, dtype=bool)
    if measured:
        latency, was_measured = measured_override(g, latency, measured)
    memory = np.full(1, np.nan) if memory_fn is None else np.asarray(memory_fn(g), dtype=np.float64)
    values = {"max_latency_s": latency, "max_params": n, "max_tokens": d, "max_train_flops": 6.0 * n * d,
              "max_memory_bytes": memory}
    ok = {key: bool(np.isfinite(values[key][0]) and values[key][0] <= getattr(cons, key))
          for _, key, *_ in _CONSTRAINTS if getattr(cons, key) is not None}
    admissible = all(v for k, v in ok.items() if k != "max_latency_s")
    cand = np.flatnonzero(result.admissible)
    doms = cand[dominated_by(loss[0], latency[0], result.loss[cand], result.latency_s[cand])]
    alone = PlanResult(grid=g, n_tokens=d, loss=loss, latency_s=latency, latency_measured=was_measured,
                       train_flops=6.0 * n * d, memory_bytes=memory, admissible=np.array([admissible]),
                       feasible=np.array([all(ok.values())]), best=0,
                       frontier=np.array([0] if admissible and np.isfinite(latency[0]) and not doms.size else [],
                                         dtype=np.int64), constraints=cons)
    row = alone.row(0)
    row["vocab_size"] = int(g.vocab_size)
    return _with_dominators(result, row, doms)
