"""Loss-vs-latency plot of a plan: every admissible candidate, the Pareto frontier, the optimum and named baselines."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from infscale.plan.optimum import PlanResult

__all__ = ["plot_frontier"]


def plot_frontier(result: PlanResult, path: str | Path, *, baselines: Mapping[str, int] | None = None,
                  title: str | None = None) -> Path:
    """Write a PNG of predicted loss against latency; ``baselines`` maps a name to a position in ``result.grid``."""
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lat, loss = result.latency_s, result.loss
    adm = np.flatnonzero(result.admissible & np.isfinite(lat))
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    layers = result.grid.n_layers[adm]
    points = ax.scatter(lat[adm], loss[adm], c=layers, s=6, cmap="viridis", alpha=0.45, linewidths=0)
    fig.colorbar(points, ax=ax, label="n_layers")
    front = result.frontier
    ax.step(lat[front], loss[front], where="post", color="black", lw=1.2, label="Pareto frontier")
    if result.constraints.max_latency_s is not None:
        ax.axvline(result.constraints.max_latency_s, color="tab:red", ls="--", lw=1,
                   label=f"latency limit {result.constraints.max_latency_s:g} s")
    b = result.best
    ax.scatter([lat[b]], [loss[b]], marker="*", s=180, color="tab:red", zorder=5,
               label=f"optimum {result.grid.label(b)}")
    for name, i in (baselines or {}).items():
        ax.scatter([lat[i]], [loss[i]], marker="X", s=80, color="tab:orange", zorder=5)
        ax.annotate(f"{name} ({result.grid.label(i)})", (lat[i], loss[i]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    ax.set_xlabel("latency per request (s)")
    ax.set_ylabel("predicted loss")
    if len(adm):
        lo, hi = np.percentile(loss[adm], [0, 90])
        ax.set_ylim(lo - 0.02 * (hi - lo + 1e-9), hi)
    ax.set_title(title or "Predicted loss vs latency")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
