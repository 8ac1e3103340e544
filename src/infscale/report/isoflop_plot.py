"""The IsoFLOP figure: loss against N per compute budget with its parabola and minimum, and N_opt against C with the
fitted power law."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infscale.report.figure import save_figure


def plot_isoflop(fit: Any, n_params: np.ndarray, loss: np.ndarray, flops: np.ndarray, path: str | Path, *,
                 title: str = "") -> Path:
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    cmap = plt.get_cmap("viridis")
    budgets = [p.flops for p in fit.profiles]
    lo, hi = np.log(min(budgets)), np.log(max(budgets))
    for prof in fit.profiles:
        colour = cmap(0.0 if hi == lo else (np.log(prof.flops) - lo) / (hi - lo))
        inside = np.abs(np.log(flops / prof.flops)) <= np.log(1.06)
        left.scatter(n_params[inside], loss[inside], s=12, color=colour)
        grid = np.geomspace(prof.n_min, prof.n_max, 60)
        left.plot(grid, np.polyval(prof.coef, np.log(grid)), color=colour, lw=1)
        left.scatter([prof.n_opt], [prof.loss_opt], marker="*" if prof.inside else "x", s=60, color=colour)
    left.set_xscale("log")
    left.set_xlabel("parameters N")
    left.set_ylabel("loss")
    left.set_title("loss vs N at each budget (star: minimum; x: outside the runs)")
    c = np.array(budgets)
    n_opt = np.array([p.n_opt for p in fit.profiles])
    err = np.clip(np.array([[p.n_opt - p.n_opt_low for p in fit.profiles],  # a minimum outside its own interval
                            [p.n_opt_high - p.n_opt for p in fit.profiles]]), 0.0, None)  # (unstable) gets none
    right.errorbar(c, n_opt, yerr=err, fmt="o", ms=4, capsize=2, label="budget minima (95% bootstrap)")
    cs = np.geomspace(c.min(), c.max(), 50)
    right.plot(cs, fit.n_opt(cs), lw=1.2, label=f"N_opt ~ C^{fit.a:.3f} [{fit.a_low:.3f}, {fit.a_high:.3f}]")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("training compute C (FLOPs)")
    right.set_ylabel("N_opt")
    right.legend(fontsize=8)
    return save_figure(fig, path, title=title)
