"""`infscale optimum --law LAW --flops C`: the compute-optimal N and D for a training budget ``C = 6 N D``, with
bootstrap intervals from the replicates a saved fit carries (`infscale fit --bootstrap K --save LAW`), as the
`chinchilla` package and Epoch's replication report them: each replicate's own optimum, then percentiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_number
from infscale.errors import InputError
from infscale.extrapolation import law_warnings

__all__ = ["OptimumReport", "run_optimum"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OptimumReport:
    flops: float
    n_params: float
    n_tokens: float
    loss: float
    tokens_per_param: float
    n_replicates: int
    level: float | None
    interval: dict[str, list[float]] = field(default_factory=dict)
    """``n_params`` / ``n_tokens`` / ``loss`` / ``tokens_per_param`` -> [low, high] over the replicates."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def refuse_architecture_law(fitted: Any, path: Path) -> None:
    """A law that prices KV heads or FFN widths has no single compute-optimal N and D without them: one line naming
    the command that searches them."""
    if fitted.law.needs_arch:
        raise InputError(f"{path}: law {fitted.name!r} reads {', '.join(fitted.law.needs_arch)} besides N, D and R: "
                         "its optimum depends on the KV heads and FFN width; search them with `infscale plan --law "
                         f"{path} --kv-heads ... --ffn-multipliers ...`")


def run_optimum(law: Path, flops: float, *, aspect_ratio: float | None = None) -> OptimumReport:
    from infscale.laws.io import load_fit, load_replicates  # lazy: pandas

    check_number("--flops", flops)
    check_number("--aspect-ratio", aspect_ratio)
    fitted = load_fit(law)
    refuse_architecture_law(fitted, law)
    try:
        best = fitted.allocate_compute(flops, aspect_ratio)
    except ValueError as exc:
        raise InputError(f"{law}: {exc} (shape-aware laws need --aspect-ratio)") from None
    replicates, level = load_replicates(law)
    warnings = list(fitted.meta.get("warnings", []))
    warnings += law_warnings(fitted.meta, n_params=best.n_params, n_tokens=best.n_tokens, loss=best.loss,
                             aspect_ratio=aspect_ratio if fitted.law.needs_aspect_ratio else None)
    if best.at_bound:
        warnings.append(f"the optimum lies on the {best.at_bound} end of the size search: not an interior optimum")
    interval: dict[str, list[float]] = {}
    if replicates:
        allocs = [r.allocate_compute(flops, aspect_ratio) for r in replicates]
        cols = {"n_params": [a.n_params for a in allocs], "n_tokens": [a.n_tokens for a in allocs],
                "loss": [a.loss for a in allocs], "tokens_per_param": [a.n_tokens / a.n_params for a in allocs]}
        tail = 50.0 * (1.0 - level)
        interval = {k: [float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100.0 - tail))]
                    for k, v in cols.items()}
    else:
        warnings.append(f"{law} carries no bootstrap replicates: no interval (save the fit with "
                        "`infscale fit --bootstrap 200 --save LAW`)")
    return OptimumReport(flops=float(flops), n_params=best.n_params, n_tokens=best.n_tokens, loss=best.loss,
                         tokens_per_param=best.n_tokens / best.n_params, n_replicates=len(replicates), level=level,
                         interval=interval, warnings=warnings)
