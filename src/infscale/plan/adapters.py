"""Adapters from infscale's fitted laws and latency profiles to the planner's plain callables (`LossFn`, `LatencyFn`).

The planner itself only needs functions of arrays; these wrap a fitted law (anything with ``predict(n_params, n_tokens,
aspect_ratio=None)``) and the analytic latency predictor of `infscale.latency.model` (imported when first used).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from infscale.arch import ffn_matrices, serving_memory_bytes
from infscale.latency import model as latency_model
from infscale.latency.model import HARDWARE
from infscale.laws.forms import Architecture
from infscale.plan.optimum import LatencyFn, LossFn, MemoryFn
from infscale.plan.shapes import ShapeGrid, ShapeRules

__all__ = ["Law", "law_arch_terms", "unpriced_choices", "loss_from_law", "latency_from_profile", "memory_from_workload", "resolve_profile"]


class Law(Protocol):
    """What the planner needs from a fitted law."""

    def predict(self, n_params: Any, n_tokens: Any, aspect_ratio: Any = None) -> np.ndarray: ...


def law_arch_terms(law: Law) -> tuple[str, ...]:
    """The `Architecture` variables a fitted law prices (``ffn_ratio``, ``kv_group``, ``d_model``); empty for a law
    of N, D and at most R."""
    return tuple(getattr(getattr(law, "law", None), "needs_arch", ()))


ARCH_CHOICES = {"kv_heads": ("kv_group", "KV heads"), "ffn_multipliers": ("ffn_ratio", "FFN widths")}
"""A shape family's searched field -> the law term that prices it, and its name in messages."""


def unpriced_choices(law: Law, rules: ShapeRules) -> list[tuple[str, str, tuple[Any, ...]]]:
    """The architecture choices ``rules`` searches (two options or more) that ``law`` has no term for, as
    ``(field, what, values)``: the law predicts one loss for every option, so the search picks the fastest or the
    cheapest for free. Plan and the life cycle word the refusal or the notice."""
    terms = law_arch_terms(law)
    out = []
    for field, (term, what) in ARCH_CHOICES.items():
        values = tuple(getattr(rules, field))
        options = len(values) + int(field == "kv_heads" and rules.include_mha and bool(values))
        if term not in terms and options >= 2:
            out.append((field, what, values))
    return out


def loss_from_law(law: Law) -> LossFn:
    """``loss(N, D, R)`` from a fitted law; R is passed only when it is known (not all NaN). For a law that prices
    KV heads or FFN widths, ``loss(N, D, R, grid)`` (``reads_grid``): the architecture variables come from the grid."""
    needs = law_arch_terms(law)

    def loss(n_params: np.ndarray, n_tokens: np.ndarray, aspect_ratio: np.ndarray,
             grid: ShapeGrid | None = None) -> np.ndarray:
        r = None if aspect_ratio is None or np.all(np.isnan(aspect_ratio)) else aspect_ratio
        if not needs:
            return np.asarray(law.predict(n_params, n_tokens, aspect_ratio=r), dtype=np.float64)
        if grid is None:
            raise ValueError(f"law {law.law.name!r} prices {', '.join(needs)}: its loss needs the shapes")
        arch = Architecture(d_model=grid.d_model.astype(np.float64), ffn_ratio=grid.ffn_ratio,
                            kv_group=grid.kv_group.astype(np.float64))
        return np.asarray(law.predict(n_params, n_tokens, aspect_ratio=r, arch=arch), dtype=np.float64)

    loss.reads_grid = bool(needs)  # type: ignore[attr-defined]
    return loss


def resolve_profile(profile: Any) -> Any:
    """A `HardwareProfile` from itself or a registered name (`infscale.latency.model.HARDWARE`)."""
    if not isinstance(profile, str):
        return profile

    return HARDWARE.get(profile)


def latency_from_profile(profile: Any, workload: Any = None) -> LatencyFn:
    """Latency per request (prefill + decode, seconds) of every shape of a grid on a hardware profile.

    ``workload`` is an `infscale.latency.model.Workload` (default: batch 1, 128 in / 256 out, bf16, as Bian et al.).
    """

    hw = resolve_profile(profile)
    wl = latency_model.Workload() if workload is None else workload

    def latency(grid: ShapeGrid) -> np.ndarray:
        out = latency_model.predict_latency_arrays(
            hw, d_model=grid.d_model, n_layers=grid.n_layers, n_heads=grid.n_heads, n_kv_heads=grid.n_kv_heads,
            d_ff=grid.d_ff, vocab_size=grid.vocab_size, head_dim=grid.head_dim,
            ffn_matrices=ffn_matrices(grid.ffn_kind), workload=wl,
        )
        return np.asarray(out["total_s"], dtype=np.float64)

    return latency


def memory_from_workload(workload: Any = None) -> MemoryFn:
    """Serving memory of every shape of a grid at ``workload`` (weights and KV cache in its dtype, the KV of
    ``batch`` sequences of ``input_len + output_len`` tokens)."""

    wl = latency_model.Workload() if workload is None else workload
    elem = latency_model.DTYPE_BYTES[wl.dtype]

    def memory(grid: ShapeGrid) -> np.ndarray:
        return serving_memory_bytes(grid.n_params, grid.n_layers, grid.d_kv, wl.input_len + wl.output_len, wl.batch,
                                    elem)

    return memory
