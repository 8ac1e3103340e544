"""The life-cycle planner: what to train (N, D, shape) *and* how to decode it (strategy, n) for a whole deployment, at
the least lifetime cost.

Every candidate configuration ``i`` is one (model, strategy, n): a shape to train (or a model already trained, whose
training is a sunk cost), a test-time strategy and its budget. `Configs` holds them as arrays, with what serving one
query costs (seconds on the device, FLOPs, with the reward model's share apart), its latency and its serving memory
(`infscale.plan.lifecycle_candidates` builds them from shapes and a latency profile, or from measured operating points).

The accuracy of a configuration trained on D tokens is a chain (`AccuracyChain`):
``L = law(N, D, R) -> base = 1 - Err(L)`` (the loss -> accuracy link) ``-> acc = curve_s(base, n)`` (the test-time
curves). Each link inverts in closed form or by bisection, so for an accuracy target the planner finds, for every
configuration at once, the fewest training tokens that reach it (`required_tokens`), and then

    cost_i = D_i * train_per_token_i + Q * serve_per_query_i        (USD, or FLOPs when no price is given)

subject to latency <= S, memory <= M, D within its bounds; the optimum is the cheapest feasible configuration.
With a cost ceiling instead, each configuration spends what serving leaves on training tokens and the most accurate
one wins. Everything is numpy over whole arrays (benchmarks/bench_lifecycle.py: > 10^5 configurations); the
cost-vs-accuracy frontier and the crossover in query volume are in `infscale.plan.lifecycle_sweeps`.

Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from infscale.errors import InfeasibleError
from infscale.plan.lifetime import tokens_for_loss
from infscale.plan.optimum import LossFn

__all__ = ["AccuracyChain", "Configs", "Deployment", "LifecycleSolution", "Prices",
           "required_tokens", "solve_lifecycle"]



@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """What the model will serve over its life."""

    queries: float
    """Lifetime queries Q."""
    prompt_tokens: int
    output_tokens: int
    """Generated tokens per sample (a search of budget n generates about n of these)."""
    batch: int = 1
    """Queries served together."""
    max_latency_s: float | None = None
    """Latency limit per query, all samples and the reward model included."""
    accuracy_target: float | None = None
    loss_target: float | None = None
    """Sardana et al.'s form: a loss to reach (greedy only; no accuracy link needed)."""
    cost_ceiling: float | None = None
    """Most lifetime cost (training + serving), in the prices' unit; without a target the planner maximises accuracy
    under it."""
    max_memory_bytes: float | None = None
    """Device memory for serving (weights of the policy and the reward model + KV cache)."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.queries) and self.queries >= 0):
            raise ValueError(f"Deployment.queries must be a finite number >= 0, got {self.queries!r}")
        if self.accuracy_target is not None and self.loss_target is not None:
            raise ValueError("Deployment: give accuracy_target or loss_target, not both")
        if self.accuracy_target is not None and not 0.0 < self.accuracy_target < 1.0:
            raise ValueError(f"Deployment.accuracy_target must be in (0, 1), got {self.accuracy_target!r}")
        for name in ("max_latency_s", "loss_target", "cost_ceiling", "max_memory_bytes"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"Deployment.{name} must be a positive number, got {value!r}")

    @property
    def mode(self) -> str:
        """``min_cost`` (a target to reach at the least cost) or ``max_accuracy`` (the best under the ceiling)."""
        return "min_cost" if self.accuracy_target is not None or self.loss_target is not None else "max_accuracy"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """How FLOPs and device-seconds become the cost unit."""

    usd_per_hour: float | None = None
    """Price of one device hour; ``None`` counts FLOPs (Sardana's eq. 2)."""
    train_flops_per_s: float = 1.0
    """Achieved training FLOP/s: the profile's peak times its training MFU."""

    @property
    def unit(self) -> str:
        return "FLOPs" if self.usd_per_hour is None else "USD"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Configs:
    """Candidate configurations as parallel arrays (one row per model x strategy x n)."""

    model: np.ndarray
    """Label of the model (shape label or name)."""
    n_params: np.ndarray
    aspect_ratio: np.ndarray
    """``d_model / n_layers`` (NaN without a shape)."""
    strategy: np.ndarray
    n: np.ndarray
    latency_s: np.ndarray
    """Per query at the serving batch, reward model included (NaN: unknown)."""
    memory_bytes: np.ndarray
    """Serving memory (NaN: unknown)."""
    serve_s: np.ndarray
    """Device-seconds per query of the policy (a batch's latency shared by its queries)."""
    prm_s: np.ndarray
    """Device-seconds per query of the reward model."""
    serve_flops: np.ndarray
    prm_flops: np.ndarray
    tokens_min: np.ndarray
    tokens_max: np.ndarray
    """Bounds of the training tokens D (equal: D fixed)."""
    sunk: np.ndarray
    """Already trained: no training cost, accuracy measured (`measured_accuracy`)."""
    measured_accuracy: np.ndarray
    """Measured accuracy of a sunk configuration (NaN otherwise)."""
    at_size_bound: np.ndarray = field(default=None)  # type: ignore[assignment]
    """True where the model is the smallest or largest of the searched sizes."""
    at_n_bound: np.ndarray = field(default=None)  # type: ignore[assignment]
    """True where n is the largest budget searched for the strategy."""
    fixed_train_flops: np.ndarray = field(default=None)  # type: ignore[assignment]
    """Training FLOPs of a measured model whose training is still to pay (0: none, or a sunk cost)."""
    strategy_names: tuple[str, ...] | None = None
    strategy_code: np.ndarray | None = None
    """``strategy`` as indices into ``strategy_names`` (computed on construction when not given)."""
    d_model: np.ndarray = field(default=None)  # type: ignore[assignment]
    ffn_ratio: np.ndarray = field(default=None)  # type: ignore[assignment]
    """MLP-to-attention parameter ratio of the shape (NaN without one)."""
    kv_group: np.ndarray = field(default=None)  # type: ignore[assignment]
    """Query heads per KV head of the shape (NaN without one): what an architecture-conditional law reads."""

    def __post_init__(self) -> None:
        size = len(self.n_params)
        for name in ("model", "aspect_ratio", "strategy", "n", "latency_s", "memory_bytes", "serve_s", "prm_s",
                     "serve_flops", "prm_flops", "tokens_min", "tokens_max", "sunk", "measured_accuracy"):
            if len(getattr(self, name)) != size:
                raise ValueError(f"Configs.{name} has {len(getattr(self, name))} rows, expected {size}")
        for name in ("at_size_bound", "at_n_bound"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(size, dtype=bool))
        if self.fixed_train_flops is None:
            object.__setattr__(self, "fixed_train_flops", np.zeros(size))
        for name in ("d_model", "ffn_ratio", "kv_group"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(size, np.nan))
        if self.strategy_code is None or self.strategy_names is None:
            names, code = np.unique(np.asarray(self.strategy).astype(str), return_inverse=True)
            object.__setattr__(self, "strategy_names", tuple(str(s) for s in names))
            object.__setattr__(self, "strategy_code", code.astype(np.int64).ravel())

    def __len__(self) -> int:
        return len(self.n_params)

    def row(self, i: int) -> dict[str, object]:
        return {"model": str(self.model[i]), "n_params": float(self.n_params[i]), "strategy": str(self.strategy[i]),
                "n": int(self.n[i]), "latency_s": _num(self.latency_s[i]), "memory_bytes": _num(self.memory_bytes[i]),
                "aspect_ratio": _num(self.aspect_ratio[i]), "ffn_ratio": _num(self.ffn_ratio[i]),
                "kv_group": _num(self.kv_group[i]), "sunk": bool(self.sunk[i])}


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AccuracyChain:
    """``acc = curves(link(law(N, D, R)), strategy, n)``; without a link the chain scores loss (``-L``) only."""

    loss_fn: LossFn
    link: object | None = None
    """An accuracy link (`infscale.laws.downstream`): ``predict(L) -> error``, ``loss_for_error(err)``."""
    curves: object | None = None
    """`infscale.laws.testtime.TestTimeCurves`; ``None``: greedy only."""

    def loss(self, c: Configs, tokens: np.ndarray) -> np.ndarray:
        if getattr(self.loss_fn, "reads_grid", False):  # an architecture-conditional law reads the shapes
            return np.asarray(self.loss_fn(c.n_params, tokens, c.aspect_ratio, c), dtype=np.float64)
        return np.asarray(self.loss_fn(c.n_params, tokens, c.aspect_ratio), dtype=np.float64)

    def base_accuracy(self, c: Configs, tokens: np.ndarray) -> np.ndarray:
        return 1.0 - self.link.predict(self.loss(c, tokens))

    def accuracy(self, c: Configs, tokens: np.ndarray) -> np.ndarray:
        """Accuracy of every configuration trained on ``tokens`` (measured for sunk ones); ``-loss`` without a link."""
        out = np.array(c.measured_accuracy, dtype=np.float64, copy=True)
        train = ~c.sunk
        if not train.any():
            return out
        sub, tok = (c, tokens) if train.all() else (_take(c, train), np.asarray(tokens)[train])
        if self.link is None:
            out[train] = -self.loss(sub, tok)
            return out
        base = self.base_accuracy(sub, tok)
        out[train] = base if self.curves is None else self.curves.predict_coded(
            base, sub.strategy_code, sub.n, sub.strategy_names)
        return out

    def required_loss(self, c: Configs, target: float, *, is_loss: bool) -> np.ndarray:
        """The loss each configuration must reach for the target (``-inf``: no loss does)."""
        if is_loss:
            return np.full(len(c), float(target))
        if self.link is None:
            raise ValueError("AccuracyChain: an accuracy target needs an accuracy link")
        base = np.full(len(c), float(target)) if self.curves is None else \
            self.curves.base_for_accuracy(target, c.strategy, c.n)
        loss = self.link.loss_for_error(1.0 - base)
        return np.where(np.isnan(base), -np.inf, loss)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LifecycleSolution:
    """Every configuration scored, the feasible set and the optimum with its cost breakdown."""

    configs: Configs
    tokens: np.ndarray
    """Training tokens of each configuration (its least for the target, or what the ceiling leaves)."""
    accuracy: np.ndarray
    train_cost: np.ndarray
    serve_cost: np.ndarray
    """Lifetime serving cost of the policy (Q queries)."""
    prm_cost: np.ndarray
    """Lifetime cost of the reward model's passes."""
    feasible: np.ndarray
    best: int
    unit: str
    mode: str
    binding: tuple[str, ...] = ()
    """Constraints whose removal alone would change the optimum to a cheaper (or more accurate) one."""
    at_bound: tuple[str, ...] = ()
    """Search bounds the optimum lies on (``largest n``, ``size range``, ``most training tokens``)."""

    @property
    def cost(self) -> np.ndarray:
        return self.train_cost + self.serve_cost + self.prm_cost

    def row(self, i: int) -> dict[str, object]:
        c = self.configs
        out = c.row(i)
        out.update({"train_tokens": float(self.tokens[i]), "accuracy": float(self.accuracy[i]),
                    "train_cost": float(self.train_cost[i]), "serve_cost": float(self.serve_cost[i]),
                    "prm_cost": float(self.prm_cost[i]), "cost": float(self.cost[i]), "unit": self.unit,
                    "train_flops": float(c.fixed_train_flops[i] if c.sunk[i] else 6.0 * c.n_params[i] * self.tokens[i]),
                    "feasible": bool(self.feasible[i])})
        return out


def _rates(c: Configs, prices: Prices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost per training token, per query of the policy, per query of the reward model."""
    train_flops = np.where(c.sunk, 0.0, 6.0 * c.n_params)
    if prices.usd_per_hour is None:
        return train_flops, c.serve_flops, c.prm_flops
    per_s = prices.usd_per_hour / 3600.0
    return train_flops / prices.train_flops_per_s * per_s, c.serve_s * per_s, c.prm_s * per_s


def _fixed(c: Configs, prices: Prices) -> np.ndarray:
    """Training cost of measured models still to train (`Configs.fixed_train_flops`) in the cost unit."""
    if prices.usd_per_hour is None:
        return c.fixed_train_flops
    return c.fixed_train_flops / prices.train_flops_per_s * prices.usd_per_hour / 3600.0


def _limits(c: Configs, d: Deployment) -> dict[str, np.ndarray]:
    """Ratio value / limit per active serving constraint (> 1 violates; NaN counts as a violation)."""
    out = {}
    if d.max_latency_s is not None:
        out["latency"] = c.latency_s / d.max_latency_s
    if d.max_memory_bytes is not None:
        out["memory"] = c.memory_bytes / d.max_memory_bytes
    return out


def _ok(ratio: np.ndarray) -> np.ndarray:
    return np.isfinite(ratio) & (ratio <= 1.0 + 1e-12)


def required_tokens(c: Configs, chain: AccuracyChain, d: Deployment) -> np.ndarray:
    """Fewest training tokens reaching the target for every configuration (``inf``: unreachable within its bounds;
    measured configurations: the tokens they were trained on when their measured accuracy reaches it)."""
    is_loss = d.loss_target is not None
    target = d.loss_target if is_loss else d.accuracy_target
    need = np.full(len(c), np.inf)
    if (~c.sunk).any():
        trainable = c if not c.sunk.any() else _take(c, ~c.sunk)
        loss = np.full(len(c), -np.inf)
        loss[~c.sunk] = chain.required_loss(trainable, target, is_loss=is_loss)
        train = ~c.sunk & (loss > -np.inf)
        sub = _take(c, train)
        need[train] = tokens_for_loss(chain.loss_fn, sub.n_params, loss[train], aspect_ratio=sub.aspect_ratio, shapes=sub,
                                      max_tokens=max(float(np.max(sub.tokens_max, initial=1.0)) * 4.0, 2.0),
                                      iterations=64)
    need = np.maximum(need, c.tokens_min)
    need = np.where(need > c.tokens_max * (1 + 1e-9), np.inf, need)
    if c.sunk.any():
        reach = c.measured_accuracy >= target if not is_loss else np.zeros(len(c), dtype=bool)
        need = np.where(c.sunk, np.where(reach, c.tokens_max, np.inf), need)
    return need


def _take(c: Configs, mask: np.ndarray) -> Configs:
    arrays = [f for f in Configs.__dataclass_fields__ if f != "strategy_names"]
    return replace(c, **{f: getattr(c, f)[mask] for f in arrays})


def solve_lifecycle(c: Configs, chain: AccuracyChain, d: Deployment, prices: Prices,
                    tokens_needed: np.ndarray | None = None, explain: bool = True) -> LifecycleSolution:
    """The least-cost configuration reaching the target (or the most accurate under the ceiling); raises
    `InfeasibleError` with one line naming the binding constraint and the closest feasible configuration."""
    if len(c) == 0:
        raise InfeasibleError("infeasible: no candidate configuration (empty size range or strategy list)")
    per_token, per_query, prm_query = _rates(c, prices)
    serve, prm = d.queries * per_query, d.queries * prm_query
    limits = _limits(c, d)
    serving_ok = np.ones(len(c), dtype=bool)
    for r in limits.values():
        serving_ok &= _ok(r)
    if d.mode == "min_cost":
        tokens = required_tokens(c, chain, d) if tokens_needed is None else tokens_needed
        tokens_needed = tokens
        reach = np.isfinite(tokens)
        tokens_f = np.where(reach, tokens, c.tokens_max)
        train = per_token * tokens_f + _fixed(c, prices)
        cost = train + serve + prm
        feasible = reach & serving_ok & (True if d.cost_ceiling is None else cost <= d.cost_ceiling)
        accuracy = chain.accuracy(c, tokens_f)
        key = np.where(feasible, cost, np.inf)
    else:
        ceiling = np.inf if d.cost_ceiling is None else d.cost_ceiling
        fixed = _fixed(c, prices)
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = np.where(per_token > 0, (ceiling - serve - prm) / per_token, c.tokens_max)
        tokens_f = np.where(c.sunk, c.tokens_max, np.clip(spend, c.tokens_min, c.tokens_max))
        affordable = np.where(c.sunk, serve + prm + fixed <= ceiling, spend >= c.tokens_min * (1 - 1e-12))
        train = per_token * tokens_f + fixed
        accuracy = chain.accuracy(c, tokens_f)
        feasible = affordable & serving_ok & np.isfinite(accuracy)
        cost = train + serve + prm
        key = None
    if not feasible.any():
        if not explain:
            raise InfeasibleError("infeasible")
        raise InfeasibleError(_infeasible(c, chain, d, prices, limits, feasible))
    first, second = (key, -accuracy) if key is not None else (np.where(feasible, -accuracy, np.inf), cost)
    ties = np.flatnonzero(first == first.min())
    best = int(ties[np.argmin(second[ties])])
    sol = LifecycleSolution(configs=c, tokens=tokens_f, accuracy=accuracy, train_cost=train, serve_cost=serve,
                            prm_cost=prm, feasible=feasible, best=best, unit=prices.unit, mode=d.mode)
    if not explain:
        return sol
    return replace(sol, binding=_binding(c, chain, d, prices, sol, tokens_needed if key is not None else None),
                   at_bound=_at_bound(c, sol))


def _objective(sol: LifecycleSolution) -> float:
    return float(sol.cost[sol.best]) if sol.mode == "min_cost" else -float(sol.accuracy[sol.best])


def _binding(c: Configs, chain: AccuracyChain, d: Deployment, prices: Prices, sol: LifecycleSolution,
             tokens_needed: np.ndarray | None) -> tuple[str, ...]:
    """Each constraint whose removal alone gives a better optimum; the target itself in min-cost mode."""
    base = _objective(sol)
    out = ["accuracy target" if d.accuracy_target is not None else "loss target"] if d.mode == "min_cost" else []
    for name, field_name in (("latency", "max_latency_s"), ("memory", "max_memory_bytes"),
                             ("cost ceiling", "cost_ceiling")):
        if getattr(d, field_name) is None:
            continue
        try:
            relaxed = solve_lifecycle(c, chain, replace(d, **{field_name: None}), prices, tokens_needed,
                                      explain=False)
        except InfeasibleError:
            continue
        if _objective(relaxed) < base - 1e-9 * max(abs(base), 1.0):
            out.append(name)
    return tuple(out)


def _at_bound(c: Configs, sol: LifecycleSolution) -> tuple[str, ...]:
    i = sol.best
    out = []
    if c.at_n_bound[i] and c.strategy[i] != "greedy":
        out.append(f"largest n searched for {c.strategy[i]} ({int(c.n[i])})")
    if c.at_size_bound[i]:
        out.append("an end of the size range")
    if not c.sunk[i] and c.tokens_max[i] > c.tokens_min[i] and sol.tokens[i] >= c.tokens_max[i] * (1 - 1e-9):
        out.append(f"most training tokens allowed ({c.tokens_max[i]:.3g})")
    return tuple(out)


def _label(c: Configs, i: int) -> str:
    s = str(c.strategy[i])
    return f"{c.model[i]} + {s}" + ("" if s == "greedy" else f" n={int(c.n[i])}")


def _infeasible(c: Configs, chain: AccuracyChain, d: Deployment, prices: Prices, limits: dict[str, np.ndarray],
                feasible: np.ndarray) -> str:
    """One line: the binding constraint and the closest feasible configuration."""
    names = {"latency": (f"latency <= {d.max_latency_s or 0:.3g} s", d.max_latency_s),
             "memory": (f"memory <= {d.max_memory_bytes or 0:.3g} B", d.max_memory_bytes)}
    serving_ok = np.ones(len(c), dtype=bool)
    for r in limits.values():
        serving_ok &= _ok(r)
    if d.mode == "min_cost":
        target = (f"accuracy >= {d.accuracy_target:.3g}" if d.accuracy_target is not None
                  else f"loss <= {d.loss_target:.4g}")
        reach = np.isfinite(required_tokens(c, chain, d))
        if not (reach & serving_ok).any():
            if serving_ok.any():  # the target is what cannot be met: report the best reachable
                best = solve_lifecycle(c, chain, replace(d, accuracy_target=None, loss_target=None, cost_ceiling=None),
                                       prices, explain=False)
                i = best.best
                got = (f"accuracy {best.accuracy[i]:.3g}" if d.accuracy_target is not None
                       else f"loss {-best.accuracy[i]:.4g}")
                return (f"infeasible: binding constraint {target}; closest feasible configuration {_label(c, i)} "
                        f"(N={c.n_params[i]:.3g}, D={best.tokens[i]:.3g}) reaches {got}")
            return _serving_closest(c, limits, names, reach, target)
        if d.cost_ceiling is not None:
            sol = solve_lifecycle(c, chain, replace(d, cost_ceiling=None), prices, explain=False)
            return (f"infeasible: binding constraint cost <= {d.cost_ceiling:.4g} {prices.unit}; closest feasible "
                    f"configuration {_label(c, sol.best)} needs {sol.cost[sol.best]:.4g} {prices.unit}")
        return _serving_closest(c, limits, names, reach, target)
    if not serving_ok.any():
        return _serving_closest(c, limits, names, np.ones(len(c), dtype=bool), "")
    per_token, per_query, prm_query = _rates(c, prices)
    need = d.queries * (per_query + prm_query) + per_token * np.where(c.sunk, 0.0, c.tokens_min) + _fixed(c, prices)
    i = int(np.flatnonzero(serving_ok)[np.argmin(need[serving_ok])])
    return (f"infeasible: binding constraint cost <= {d.cost_ceiling:.4g} {prices.unit}; closest feasible "
            f"configuration {_label(c, i)} needs {need[i]:.4g} {prices.unit}")


def _serving_closest(c: Configs, limits: dict[str, np.ndarray], names: dict[str, tuple[str, float | None]],
                     reach: np.ndarray,
                     target: str) -> str:
    keys = list(limits)
    binding = [k for k in keys if (reach & np.all([_ok(limits[o]) for o in keys if o != k] or [True], axis=0)).any()]
    excess = np.zeros(len(c))
    for k in keys:
        r = np.where(np.isfinite(limits[k]), limits[k], np.inf)
        excess = excess + np.log(np.maximum(r, 1.0))
    excess = np.where(reach, excess, np.inf)
    if not np.isfinite(excess).any():
        return f"infeasible: binding constraint {target}: no configuration reaches it at any latency or memory"
    i = int(np.argmin(excess))
    if not binding:
        binding = [max(keys, key=lambda k: float(np.min(np.where(reach, limits[k], np.inf))))]
    relax = ", ".join(f"{k} {limits[k][i] * names[k][1]:.3g}" for k in keys if limits[k][i] > 1.0)
    return (f"infeasible: binding constraint {' and '.join(names[k][0] for k in binding)}; closest feasible "
            f"configuration {_label(c, i)} (N={c.n_params[i]:.3g}) needs {relax}")
