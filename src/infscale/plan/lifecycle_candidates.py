"""Candidate configurations for the life-cycle planner (`infscale.plan.lifecycle.Configs`).

The strategies are names the caller chose (the registered strategy specs, `infscale.tts.core.spec.planner_strategies`);
every one is priced alike, ``n`` samples of the output per query, and those named in ``scored`` also pay for the
reward model's passes over their ``n`` solutions.

- `configs_from_shapes`: every shape of a `ShapeGrid` x every strategy x its budgets, served on a hardware profile.
  Per query at serving batch b with n samples: the prompt's prefill once per query (the n samples share its KV
  cache), the decode of ``n b`` sequences together, and for reward-model strategies the reward model's prefill over
  the n solutions (``n b`` sequences of prompt + output tokens). Latency is the policy's plus the reward model's;
  device-seconds per query are a batch's latency over b. FLOPs are Sardana's ``2 N`` per token: ``2 N (P + n T)``
  for the policy, ``2 N_prm n (P + T)`` for the reward model. Memory: both models' weights plus the KV of
  ``b (P + n T)`` policy tokens and ``n b (P + T)`` reward-model tokens.
- `configs_from_sizes`: a log grid of parameter counts with no shape (Sardana's setting: FLOPs only, no latency).
- `configs_from_points`: models already trained (a sunk cost) with measured operating points (Wu et al.'s tables,
  `tts analyze` results): accuracy and FLOPs per query as measured.

Pure: numpy, infscale.arch and the analytic latency model.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from infscale.arch import TransformerShape, ffn_matrices
from infscale.latency.model import DTYPE_BYTES, HardwareProfile, Workload, predict_latency_arrays
from infscale.plan.lifecycle import Configs, Deployment
from infscale.plan.shapes import ShapeGrid

__all__ = ["configs_from_points", "configs_from_shapes", "configs_from_sizes", "strategy_table"]


def strategy_table(strategies: Mapping[str, Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strategy, n, is-largest-n) rows for ``{strategy: budgets}``; greedy always has n = 1."""
    names, ns, top = [], [], []
    for s, budgets in strategies.items():
        values = [1] if s == "greedy" else sorted({int(b) for b in budgets})
        if not values or min(values) < 1:
            raise ValueError(f"strategy {s!r}: budgets must be integers >= 1")
        names += [s] * len(values)
        ns += values
        top += [v == values[-1] for v in values]
    return np.array(names), np.array(ns, dtype=np.int64), np.array(top, dtype=bool)


def _prm_terms(prm: TransformerShape | None, profile: HardwareProfile, d: Deployment, n: int,
               dtype: str) -> tuple[float, float, float]:
    """(latency s, FLOPs, memory bytes) of the reward model scoring n solutions of one batch."""
    if prm is None:
        raise ValueError("a reward-model strategy needs a reward model shape (prm)")
    rows = d.batch * n
    out = predict_latency_arrays(
        profile, d_model=prm.d_model, n_layers=prm.n_layers, n_heads=prm.n_heads, n_kv_heads=prm.kv_heads,
        d_ff=prm.ffn_hidden, vocab_size=prm.vocab_size, head_dim=prm.hd, ffn_matrices=ffn_matrices(prm.ffn_kind),
        workload=Workload(batch=rows, input_len=d.prompt_tokens + d.output_tokens, output_len=1, dtype=dtype))
    n_prm = float(prm.n_params)
    elem = DTYPE_BYTES[dtype]
    kv = 2.0 * prm.n_layers * prm.d_kv * rows * (d.prompt_tokens + d.output_tokens) * elem
    return float(out["prefill_s"]), 2.0 * n_prm * n * (d.prompt_tokens + d.output_tokens), n_prm * elem + kv


def configs_from_shapes(grid: ShapeGrid, strategies: Mapping[str, Sequence[int]], d: Deployment,
                        profile: HardwareProfile, *, tokens_range: tuple[float, float],
                        params_range: tuple[float, float] | None = None, prm: TransformerShape | None = None,
                        dtype: str = "bf16", scored: Collection[str] = ()) -> Configs:
    """Every shape x strategy x budget, priced on ``profile`` for deployment ``d`` (see the module docstring)."""
    if len(grid) == 0:
        raise ValueError("no candidate shapes: the size range and the family rules admit none")
    names, ns, top = strategy_table(strategies)
    g, k = len(grid), len(names)
    kw = dict(d_model=grid.d_model, n_layers=grid.n_layers, n_heads=grid.n_heads, n_kv_heads=grid.n_kv_heads,
              d_ff=grid.d_ff, vocab_size=grid.vocab_size, head_dim=grid.head_dim,
              ffn_matrices=ffn_matrices(grid.ffn_kind))
    prefill = predict_latency_arrays(profile, **kw, workload=Workload(
        batch=d.batch, input_len=d.prompt_tokens, output_len=1, dtype=dtype))["prefill_s"]
    elem = DTYPE_BYTES[dtype]
    n_params = grid.n_params.astype(np.float64)
    lat = np.empty((g, k))
    mem = np.empty((g, k))
    prm_lat = np.zeros((g, k))
    prm_flops = np.zeros((g, k))
    for j, (s, n) in enumerate(zip(names, ns, strict=True)):
        decode = predict_latency_arrays(profile, **kw, workload=Workload(
            batch=d.batch * int(n), input_len=d.prompt_tokens, output_len=d.output_tokens, dtype=dtype))["decode_s"]
        kv_tokens = d.batch * (d.prompt_tokens + int(n) * d.output_tokens)
        mem[:, j] = n_params * elem + 2.0 * grid.n_layers * grid.d_kv * kv_tokens * elem
        lat[:, j] = prefill + decode
        if s in scored:
            p_lat, p_flops, p_mem = _prm_terms(prm, profile, d, int(n), dtype)
            prm_lat[:, j], prm_flops[:, j] = p_lat, p_flops
            mem[:, j] += p_mem
    serve_flops = 2.0 * n_params[:, None] * (d.prompt_tokens + ns[None, :] * d.output_tokens)
    lo, hi = params_range if params_range is not None else (n_params.min(), n_params.max())
    edge = (n_params <= lo * 1.05) | (n_params >= hi / 1.05)
    labels = np.array([grid.label(i) for i in range(g)], dtype=object)
    return Configs(
        model=np.repeat(labels, k), n_params=np.repeat(n_params, k),
        aspect_ratio=np.repeat(grid.aspect_ratio.astype(np.float64), k),
        strategy=np.tile(names, g), n=np.tile(ns, g), latency_s=(lat + prm_lat).ravel(), memory_bytes=mem.ravel(),
        serve_s=(lat / d.batch).ravel(), prm_s=(prm_lat / d.batch).ravel(), serve_flops=serve_flops.ravel(),
        prm_flops=prm_flops.ravel(), tokens_min=np.full(g * k, float(tokens_range[0])),
        tokens_max=np.full(g * k, float(tokens_range[1])), sunk=np.zeros(g * k, dtype=bool),
        measured_accuracy=np.full(g * k, np.nan), at_size_bound=np.repeat(edge, k), at_n_bound=np.tile(top, g),
        d_model=np.repeat(grid.d_model.astype(np.float64), k), ffn_ratio=np.repeat(grid.ffn_ratio, k),
        kv_group=np.repeat(grid.kv_group.astype(np.float64), k))


def configs_from_sizes(n_params: np.ndarray, strategies: Mapping[str, Sequence[int]], d: Deployment, *,
                       tokens_range: tuple[float, float], prm_n_params: float | None = None,
                       scored: Collection[str] = ()) -> Configs:
    """Parameter counts without a shape: FLOPs only (latency and memory unknown), as Sardana et al. plan."""
    names, ns, top = strategy_table(strategies)
    n = np.asarray(n_params, dtype=np.float64)
    g, k = len(n), len(names)
    uses = np.array([s in scored for s in names], dtype=bool)
    if uses.any() and prm_n_params is None:
        raise ValueError("a reward-model strategy needs the reward model's size (prm)")
    prm = np.where(uses, 2.0 * (prm_n_params or 0.0) * ns * (d.prompt_tokens + d.output_tokens), 0.0)
    nan = np.full(g * k, np.nan)
    edge = (n == n.min()) | (n == n.max())
    return Configs(
        model=np.repeat(np.array([f"N={v:.4g}" for v in n], dtype=object), k), n_params=np.repeat(n, k),
        aspect_ratio=nan.copy(), strategy=np.tile(names, g), n=np.tile(ns, g), latency_s=nan.copy(),
        memory_bytes=nan.copy(), serve_s=nan.copy(), prm_s=nan.copy(),
        serve_flops=(2.0 * n[:, None] * (d.prompt_tokens + ns[None, :] * d.output_tokens)).ravel(),
        prm_flops=np.tile(prm, g), tokens_min=np.full(g * k, float(tokens_range[0])),
        tokens_max=np.full(g * k, float(tokens_range[1])), sunk=np.zeros(g * k, dtype=bool),
        measured_accuracy=nan.copy(), at_size_bound=np.repeat(edge, k), at_n_bound=np.tile(top, g))


def configs_from_points(model: Sequence[str], n_params: Sequence[float], strategy: Sequence[str], n: Sequence[int],
                        accuracy: Sequence[float], flops_per_query: Sequence[float],
                        prm_flops_per_query: Sequence[float] | None = None,
                        train_tokens: Sequence[float] | None = None, prm_train_flops: float = 0.0,
                        scored: Sequence[bool] | None = None) -> Configs:
    """Models with measured operating points, accuracy as measured. Without ``train_tokens`` their training is a sunk
    cost; with it each model's ``6 N D`` is paid once (the planner then weighs training a larger model against
    serving a smaller one with more samples). ``prm_train_flops``: the reward model's training, paid by every
    configuration that scores with it (``scored``, one flag per point); 0 when the reward model already exists."""
    size = len(model)
    nan = np.full(size, np.nan)
    n_arr = np.asarray(n, dtype=np.int64)
    strat = np.asarray(strategy, dtype=object)
    top = np.zeros(size, dtype=bool)
    models = np.asarray(model, dtype=object)
    trained = np.zeros(size) if train_tokens is None else np.asarray(train_tokens, dtype=np.float64)
    for key in {(m, s) for m, s in zip(models, strat, strict=True)}:
        m = (models == key[0]) & (strat == key[1])
        top[m] = n_arr[m] == n_arr[m].max()
    return Configs(
        model=models, n_params=np.asarray(n_params, dtype=np.float64), aspect_ratio=nan.copy(), strategy=strat,
        n=n_arr, latency_s=nan.copy(), memory_bytes=nan.copy(), serve_s=nan.copy(), prm_s=nan.copy(),
        serve_flops=np.asarray(flops_per_query, dtype=np.float64),
        prm_flops=np.zeros(size) if prm_flops_per_query is None else np.asarray(prm_flops_per_query, np.float64),
        tokens_min=trained.copy(), tokens_max=trained.copy(), sunk=np.ones(size, dtype=bool),
        measured_accuracy=np.asarray(accuracy, dtype=np.float64), at_n_bound=top,
        fixed_train_flops=6.0 * np.asarray(n_params, np.float64) * trained
        + prm_train_flops * (np.zeros(size) if scored is None else np.asarray(scored, dtype=np.float64)))
