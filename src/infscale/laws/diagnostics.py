"""Warnings on degenerate fits: a coefficient <= 0, an exponent at a bound, E collapsing, too few over-trained points,
a parameter the bootstrap cannot pin down (an interval crossing zero or spanning over 100x), an optimiser that stopped
early."""

from __future__ import annotations

import numpy as np

from infscale.laws.bootstrap import BootstrapResult
from infscale.laws.fitted import FittedLaw
from infscale.laws.runs import Runs

EXPONENT_BOUNDS = (1e-3, 3.0)
"""Plausible exponent range; an exponent at or beyond either end means the fit ran to a bound of the sensible region."""
OVERTRAINED_TOKENS_PER_PARAM = 40.0
MIN_OVERTRAINED_RUNS = 3
E_COLLAPSE_FRACTION = 0.05
"""E below this fraction of the smallest observed loss counts as collapsed."""
MAX_INTERVAL_RATIO = 100.0


def diagnose(law: FittedLaw, fit_runs: Runs, boot: BootstrapResult | None = None) -> list[str]:
    p, form = law.params_, law.law
    out: list[str] = []
    for name in form.coefficients:
        if not p[name] > 0:
            out.append(f"coefficient {name} = {p[name]:.4g} <= 0: the law is not a sum of positive terms")
    lo, hi = EXPONENT_BOUNDS
    for name in form.exponents:
        if not lo < p[name] < hi:
            out.append(f"exponent {name} = {p[name]:.4g} at a bound of the plausible range ({lo:g}, {hi:g})")
    if "E" in p and 0 < p["E"] < E_COLLAPSE_FRACTION * float(fit_runs.loss.min()):
        out.append(f"irreducible loss E = {p['E']:.4g} collapsed towards 0 (min observed loss {fit_runs.loss.min():.4g})")
    n_over = int(np.sum(fit_runs.frame["tokens_per_param"].to_numpy() >= OVERTRAINED_TOKENS_PER_PARAM))
    if n_over < MIN_OVERTRAINED_RUNS:
        out.append(f"only {n_over} fit runs at >= {OVERTRAINED_TOKENS_PER_PARAM:g} tokens/param: the D term is poorly "
                   "constrained (seed A: fitting on 20N points alone gives R^2 0.63)")
    if boot is not None:
        for name in form.coefficients:
            low, high = boot.low[name], boot.high[name]
            if low <= 0 < high:
                out.append(f"{name}: bootstrap interval [{low:.3g}, {high:.3g}] crosses zero: not identified by these "
                           "runs (a coefficient of the law must be positive; its value and every figure drawn from "
                           "it are unreliable)")
            elif low > 0 and high / low > MAX_INTERVAL_RATIO:
                out.append(f"{name}: bootstrap interval [{low:.3g}, {high:.3g}] spans more than {MAX_INTERVAL_RATIO:g}x: "
                           "weakly identified (it trades off against the exponent)")
    return out
