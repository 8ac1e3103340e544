"""Adapters from infscale's fitted laws and latency profiles to the planner's plain callables (`LossFn`, `LatencyFn`).

The planner itself only needs functions of arrays; these wrap a fitted law (anything with ``predict(n_params, n_tokens,
aspect_ratio=None)``) and the analytic latency predictor of `infscale.latency.model` (imported when first used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from infscale.plan.optimum import LatencyFn, LossFn
from infscale.plan.shapes import ShapeGrid

__all__ = ["Law", "Workload", "loss_from_law", "latency_from_profile"]


class Law(Protocol):
    """What the planner needs from a fitted law."""

    def predict(self, n_params: Any, n_tokens: Any, aspect_ratio: Any = None) -> np.ndarray: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """One inference request as seed A times it (HF generate, batch 1, 128 in / 256 out)."""

    batch_size: int = 1
    """Sequences per request."""
    prompt_tokens: int = 128
    """Input tokens per sequence (prefill)."""
    new_tokens: int = 256
    """Generated tokens per sequence (decode steps)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "prompt_tokens", "new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Workload.{name} must be a positive integer, got {value!r}")


def loss_from_law(law: Law) -> LossFn:
    """``loss(N, D, R)`` from a fitted law; R is passed only when it is known (not all NaN)."""

    def loss(n_params: np.ndarray, n_tokens: np.ndarray, aspect_ratio: np.ndarray) -> np.ndarray:
        r = None if aspect_ratio is None or np.all(np.isnan(aspect_ratio)) else aspect_ratio
        return np.asarray(law.predict(n_params, n_tokens, aspect_ratio=r), dtype=np.float64)

    return loss


def latency_from_profile(profile: Any, workload: Workload = Workload()) -> LatencyFn:
    """Latency per request of every shape of a grid from a hardware profile (object or registered name)."""
    from infscale.latency import model as latency_model

    if isinstance(profile, str):
        profile = latency_model.get_profile(profile)

    def latency(grid: ShapeGrid) -> np.ndarray:
        out = latency_model.predict_latency_arrays(
            profile, d_model=grid.d_model, n_layers=grid.n_layers, n_heads=grid.n_heads, n_kv_heads=grid.n_kv_heads,
            d_ff=grid.d_ff, vocab_size=grid.vocab_size, head_dim=grid.head_dim, batch_size=workload.batch_size,
            prompt_tokens=workload.prompt_tokens, new_tokens=workload.new_tokens,
        )
        return np.asarray(getattr(out, "latency_s", out), dtype=np.float64)

    return latency
