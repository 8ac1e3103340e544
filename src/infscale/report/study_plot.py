"""Loss against aspect ratio, one panel per size of a shape study: the measured runs (error bars: the validation
set's standard error; seeds as separate points) and each shape-aware law's predicted curve at the size's nominal N and
D. A law whose curve only rises with R cannot follow a measured bowl; one with an optimum can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infscale.report.figure import save_figure


def plot_loss_vs_aspect(frame: Any, laws: list[Any], path: str | Path, title: str = "") -> Path:
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    groups = sorted(frame["group"].unique(), key=lambda g: float(frame.loc[frame["group"] == g, "N"].median()))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.3 * len(groups), 3.6), squeeze=False, sharey=False)
    for ax, group in zip(axes[0], groups, strict=True):
        sub = frame[frame["group"] == group]
        d_min = float(sub["D"].min())
        for j, (d, part) in enumerate(sorted(sub.groupby("D"), key=lambda t: t[0])):
            ax.errorbar(part["aspect_ratio"], part["loss"], yerr=part["loss_se"], fmt="o", ms=4, color=f"C{j}",
                        capsize=2, label=f"measured, D={d / 1e6:.2g}M", zorder=3)
        r = np.geomspace(float(sub["aspect_ratio"].min()) / 1.5, float(sub["aspect_ratio"].max()) * 1.5, 120)
        n = float(sub["N"].median())
        for k, law in enumerate(laws):
            ax.plot(r, law.predict(np.full_like(r, n), np.full_like(r, d_min), r), color=f"C{k + 3}", lw=1.3,
                    label=f"{law.name} (D={d_min / 1e6:.2g}M)")
        held = bool(sub["held_out"].any())
        ax.set_title(f"{group}: N~{n / 1e3:.0f}k" + (" (held out)" if held else ""), fontsize=10)
        ax.set_xscale("log")
        ax.set_xlabel("aspect ratio d_model / n_layers")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation loss (nats/token)")
    axes[0][-1].legend(fontsize=7, loc="best")
    return save_figure(fig, path, title=title)
