"""Warnings on degenerate fits: a coefficient <= 0, an exponent at a bound, E collapsing, too few over-trained points,
a parameter the bootstrap cannot pin down (an interval crossing zero, of zero width, or spanning over 100x), an
optimiser that stopped early.

The ``degenerate`` notices (`infscale.notices.Notice`, kind ``degenerate``) say the fit is not an estimate (an exponent at a bound of the search, a
coefficient whose interval has zero width or crosses zero); E collapsing to 0 is a warning of its own (the runs show
no floor: the law is a pure power law over them, and the extrapolation warnings bound where it is used): a saved fit carrying one is refused by
every command that plans (`infscale.laws.io.load_fit`), and the study plans with its next law instead."""

from __future__ import annotations

import numpy as np

from infscale.laws.bootstrap import BootstrapResult
from infscale.laws.fitted import FittedLaw
from infscale.laws.runs import Runs
from infscale.notices import Notice, notice_kind

EXPONENT_BOUNDS = (1e-3, 1.9)
"""Plausible exponent range; an exponent at or beyond either end means the fit ran to a bound of the sensible region
(a saved law with an exponent of N or D outside (0, 2) is refused outright: `infscale.laws.fitted.physical_problems`)."""
DEGENERATE = "degenerate"
"""The kind of the notices that make a fit unusable for planning."""
ZERO_WIDTH = 1e-9
"""A bootstrap interval narrower than this fraction of its value has zero width: every resample hit the same bound."""


def degenerate(lines: list[str] | tuple[str, ...]) -> list[str]:
    """The notices of a fit's warnings that make it unusable for planning."""
    return [line for line in lines if notice_kind(line) == DEGENERATE]


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
            out.append(Notice(DEGENERATE, f"exponent {name} = {p[name]:.4g} at a bound of the plausible range "
                              f"({lo:g}, {hi:g})", quantity=name, value=float(p[name]), range=(lo, hi)))
    e_collapsed = "E" in p and 0 < p["E"] < E_COLLAPSE_FRACTION * float(fit_runs.loss.min())
    if e_collapsed:
        # no floor is visible in these runs: inside their range the law is a pure power law and its predictions stand;
        # beyond it they fall without one (the extrapolation warnings say where that starts)
        out.append(f"irreducible loss E = {p['E']:.4g} collapsed towards 0 (min observed loss {fit_runs.loss.min():.4g}): "
                   "not identified by these runs; the law is a pure power law over them and has no floor beyond them")
    n_over = int(np.sum(fit_runs.frame["tokens_per_param"].to_numpy() >= OVERTRAINED_TOKENS_PER_PARAM))
    if n_over < MIN_OVERTRAINED_RUNS:
        out.append(f"only {n_over} fit runs at >= {OVERTRAINED_TOKENS_PER_PARAM:g} tokens/param: the D term is poorly "
                   "constrained (Bian et al.: fitting on 20N points alone gives R^2 0.63)")
    if boot is not None:
        for name in form.coefficients:
            low, high = boot.low[name], boot.high[name]
            if low <= 0 < high:
                out.append(Notice(DEGENERATE, f"{name}: bootstrap interval [{low:.3g}, {high:.3g}] crosses zero: not "
                                  "identified by these runs (a coefficient of the law must be positive; its value and "
                                  "every figure drawn from it are unreliable)", quantity=name, range=(low, high)))
            elif high - low <= ZERO_WIDTH * abs(p[name]) and not (name == "E" and e_collapsed):
                out.append(Notice(DEGENERATE, f"{name}: bootstrap interval [{low:.3g}, {high:.3g}] has zero width: "
                                  "every resample landed on the same value, a bound of the search rather than an "
                                  "estimate", quantity=name, range=(low, high)))
            elif low > 0 and high / low > MAX_INTERVAL_RATIO:
                out.append(f"{name}: bootstrap interval [{low:.3g}, {high:.3g}] spans more than {MAX_INTERVAL_RATIO:g}x: "
                           "weakly identified (it trades off against the exponent)")
    return out
