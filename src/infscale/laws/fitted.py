"""`FittedLaw`: a law form with fitted parameters: vectorised prediction and compute-optimal allocation under C = 6ND.

Allocation: minimise L(N, D) subject to 6 N D = C. For the Chinchilla family (with or without the shape factor, which does
not depend on N or D at fixed R) the optimum has the closed form of Hoffmann et al. (2022, eq. 4):
    N_opt = G (C/6)^(beta/(alpha+beta)),  D_opt = G^-1 (C/6)^(alpha/(alpha+beta)),  G = (alpha A / (beta B))^(1/(alpha+beta)).
Other forms are minimised numerically over log N (bounded scalar search).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infscale.jsonsafe import is_finite_number
from infscale.laws.forms import Architecture, ChinchillaFamily, LawForm, get_law

POSITIVE = ("A", "B", "E", "N_c", "D_c")
"""Coefficients a law is a sum of positive terms of: a saved law with one <= 0 is refused."""
EXPONENT_RANGE = (0.0, 2.0)
"""Where a power-law exponent of N or D must lie (every published fit: 0.05-0.8); outside it a law is refused."""
BOUNDED_EXPONENTS = ("alpha", "beta", "alpha_N", "alpha_D", "eta")


def physical_problems(params: dict[str, object]) -> list[str]:
    """Why ``params`` cannot describe a loss: a value that is not a finite number (a JSON ``true`` included), a
    coefficient <= 0, an exponent of N or D outside (0, 2). Empty when the law is usable."""
    out = []
    for name, value in params.items():
        if not is_finite_number(value):
            out.append(f"field 'params.{name}': {value!r} is not a finite number")
        elif name in POSITIVE and not value > 0:
            out.append(f"field 'params.{name}': {value:g} <= 0, but a coefficient of the law must be positive")
        elif name in BOUNDED_EXPONENTS and not EXPONENT_RANGE[0] < value < EXPONENT_RANGE[1]:
            out.append(f"field 'params.{name}': exponent {value:g} outside ({EXPONENT_RANGE[0]:g}, "
                       f"{EXPONENT_RANGE[1]:g}): the law would not fall as a power of scale")
    return out


MAX_LOSS_NATS = 100.0
"""No language model's loss reaches this (the entropy of a uniform vocabulary of 10^43 tokens)."""


def loss_problems(law: FittedLaw) -> list[str]:
    """Why a law with finite parameters still cannot describe a loss: a prediction that is not a finite number in
    (0, `MAX_LOSS_NATS`) nats at the corners of the range it was fitted on (``meta["fit_range"]``), or, for a law
    without one, at 1e8-1e10 parameters and 20 tokens per parameter (R = 128 for a shape-aware law, the middle of
    its fitted R where known). Empty when every probe is plausible (or the law needs architecture variables)."""
    fr = law.meta.get("fit_range") if isinstance(law.meta, dict) else None
    fr = fr if isinstance(fr, dict) else {}
    try:
        (n_lo, n_hi), (d_lo, d_hi) = (tuple(map(float, fr[k])) for k in ("n_params", "n_tokens"))
        n, d = np.array([n_lo, n_lo, n_hi, n_hi]), np.array([d_lo, d_hi, d_lo, d_hi])
    except (KeyError, TypeError, ValueError):
        n = np.array([1e8, 1e9, 1e10])
        d = 20.0 * n
    r_range = fr.get("aspect_ratio")
    r = float(np.sqrt(np.prod(r_range))) if isinstance(r_range, list) and len(r_range) == 2 else 128.0
    try:
        loss = law.predict(n, d, r if law.law.needs_aspect_ratio else None)
    except (ValueError, TypeError):
        return []
    bad = ~(np.isfinite(loss) & (loss > 0) & (loss < MAX_LOSS_NATS))
    if not bad.any():
        return []
    i = int(np.flatnonzero(bad)[0])
    shown = ", ".join(f"{k}={v:.4g}" for k, v in law.params_.items())
    return [f"predicts a loss of {loss[i]:.4g} nats at N={n[i]:.0e}, D={d[i]:.0e}: not a language model's loss "
            f"(0 to {MAX_LOSS_NATS:g} nats); its parameters ({shown}) are not a loss law's"]


def search_bound(x: float, lo: float, hi: float, rel_tol: float = 1e-6) -> str | None:
    """Which end of a size search over ``[lo, hi]`` (in log N) ``x`` sits on: ``"min N"``, ``"max N"`` or ``None``
    (within ``rel_tol`` of the range). A point on an end is the best searched, not an optimum."""
    tol = rel_tol * (hi - lo)
    return "min N" if x <= lo + tol else "max N" if x >= hi - tol else None


@dataclass(frozen=True, slots=True)
class Allocation:
    n_params: float
    n_tokens: float
    loss: float
    train_flops: float
    at_bound: str | None = None
    """``"min N"`` / ``"max N"`` when the numeric search ended on an end of its range (then the point is the best
    searched, not an optimum: the law keeps improving past it); ``None`` for an interior or closed-form optimum."""


@dataclass(frozen=True, slots=True, eq=False)
class FittedLaw:
    """A law with fitted parameters. `params_` maps parameter name -> value (natural units, as in the law's formula)."""

    law: LawForm
    params_: dict[str, float]
    meta: dict = field(default_factory=dict)
    """Free-form provenance: fitter, data, fit-on expression, metrics."""

    @classmethod
    def from_dict(cls, law: str, params: dict[str, float], meta: dict | None = None) -> FittedLaw:
        form = get_law(law)
        missing = [p for p in form.param_names if p not in params]
        if missing:
            raise ValueError(f"law {law!r} needs parameters {', '.join(missing)}")
        unknown = sorted(set(params) - set(form.param_names))
        if unknown:
            raise ValueError(f"law {law!r} has no parameter {unknown[0]!r} (its parameters: "
                             f"{', '.join(form.param_names)})")

        return cls(form, {p: float(params[p]) for p in form.param_names}, dict(meta or {}))

    @property
    def name(self) -> str:
        return self.law.name

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.params_[p] for p in self.law.param_names], dtype=float)

    def predict(self, n_params, n_tokens, aspect_ratio=None, arch: Architecture | None = None) -> np.ndarray:
        """Loss (nats/token) at N parameters, D tokens and R = d_model/n_layers (and, for an architecture-conditional
        law, the `Architecture` variables); numpy broadcasting over the inputs."""
        n, d = np.broadcast_arrays(np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float))
        r = None if aspect_ratio is None else np.broadcast_to(np.asarray(aspect_ratio, dtype=float), n.shape)
        self.law.check_inputs(r, arch)
        return self.law.predict(self.vector, n, d, r, arch)

    def allocate_compute(self, train_flops: float, aspect_ratio: float | None = None) -> Allocation:
        """Compute-optimal (N, D) for C = 6ND training FLOPs (at a fixed aspect ratio for shape-aware laws)."""
        c = float(train_flops)
        if not c > 0:
            raise ValueError(f"train_flops must be positive, got {train_flops}")
        p = self.params_
        at_bound = None
        if isinstance(self.law, ChinchillaFamily) and p["A"] > 0 and p["B"] > 0:
            alpha = p["alpha"]
            beta = p.get("beta", alpha)
            g = (alpha * p["A"] / (beta * p["B"])) ** (1.0 / (alpha + beta))
            n_opt = g * (c / 6.0) ** (beta / (alpha + beta))
        else:
            from scipy.optimize import minimize_scalar  # lazy: scipy

            def f(log_n: float) -> float:
                n = np.exp(log_n)
                return float(self.predict(n, c / (6.0 * n), aspect_ratio))

            lo, hi = np.log(1e3), np.log(c / 6.0) - np.log(1e3)
            res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
            n_opt = float(np.exp(res.x))
            at_bound = search_bound(res.x, lo, hi, rel_tol=1e-4)  # the bounded method stops short of an end
        d_opt = c / (6.0 * n_opt)
        return Allocation(n_params=float(n_opt), n_tokens=float(d_opt),
                          loss=float(self.predict(n_opt, d_opt, aspect_ratio)), train_flops=c, at_bound=at_bound)

    def to_dict(self) -> dict:
        return {"law": self.name, "params": dict(self.params_), "meta": self.meta}


def allocate_compute(law: FittedLaw, train_flops: float, aspect_ratio: float | None = None) -> Allocation:
    """Compute-optimal (N, D) for C = 6ND training FLOPs; see `FittedLaw.allocate_compute`."""
    return law.allocate_compute(train_flops, aspect_ratio)
