"""Predicted vs actual loss for one or more fitted laws (fit runs filled, held-out runs hollow), written as a PNG."""

from __future__ import annotations

from pathlib import Path

from infscale.laws.pipeline import FitReport
from infscale.laws.runs import Runs
from infscale.laws.validate import predict_runs
from infscale.report.figure import save_figure


def plot_predicted_vs_actual(reports: list[FitReport], runs: Runs, path: str | Path, title: str = "") -> Path:
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    fig, axes = plt.subplots(1, len(reports), figsize=(5.2 * len(reports), 4.8), squeeze=False)
    for ax, rep in zip(axes[0], reports, strict=True):
        fit_runs, held_runs = runs.split(rep.fit_on)
        lo, hi = float(runs.loss.min()), float(runs.loss.max())
        pad = 0.03 * (hi - lo)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1, zorder=0, label="y = x")
        ax.scatter(fit_runs.loss, predict_runs(rep.law, fit_runs), s=22, color="C0", label=f"fit ({len(fit_runs)})")
        if len(held_runs):
            ax.scatter(held_runs.loss, predict_runs(rep.law, held_runs), s=22, facecolors="none", edgecolors="C3",
                       label=f"held out ({len(held_runs)})")
        v = rep.validation.held_out or rep.validation.all
        ax.set_title(f"{rep.law.name}: MSE {v.mse:.2e}, R$^2$ {v.r2:.4f}", fontsize=10)
        ax.set_xlabel("actual loss")
        ax.set_ylabel("predicted loss")
        ax.legend(fontsize=8, loc="upper left")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    return save_figure(fig, path, title=title)
