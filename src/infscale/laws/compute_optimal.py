"""The compute-optimal power law approaches 1 and 2 end in (pure numpy): ``N_opt = k_N C^a`` and
``D_opt = C / (6 N_opt) ~ C^b`` with ``b = 1 - a``, and a's bootstrap interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputeOptimalFit:
    a: float
    """``N_opt ~ C^a``."""
    a_low: float
    a_high: float
    log_k_n: float
    level: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def b(self) -> float:
        """``D_opt ~ C^b`` with ``D_opt = C / (6 N_opt)``."""
        return 1.0 - self.a

    @property
    def b_low(self) -> float:
        return 1.0 - self.a_high

    @property
    def b_high(self) -> float:
        return 1.0 - self.a_low

    def n_opt(self, flops: float | np.ndarray) -> np.ndarray:
        return np.exp(self.log_k_n + self.a * np.log(np.asarray(flops, dtype=float)))

    def d_opt(self, flops: float | np.ndarray) -> np.ndarray:
        return np.asarray(flops, dtype=float) / (6.0 * self.n_opt(flops))

    def exponents(self) -> dict[str, Any]:
        """a and b with their intervals, the law's intercept and the interval's level (the JSON's common part)."""
        return {"a": self.a, "a_interval": [self.a_low, self.a_high], "b": self.b,
                "b_interval": [self.b_low, self.b_high], "log_k_n": self.log_k_n, "level": self.level}

    def comparison_row(self, approach: str, flops: float) -> dict[str, Any]:
        """One row of the approaches' table: the exponents with intervals, N_opt and D_opt at ``flops``."""
        return {"approach": approach, "a": self.a, "a_interval": [self.a_low, self.a_high], "b": self.b,
                "b_interval": [self.b_low, self.b_high], "n_opt": float(self.n_opt(flops)),
                "d_opt": float(self.d_opt(flops))}
