"""Latency vs aspect ratio at (about) equal parameter count: measured points and the predictor's curve.

Bian et al.'s figure: at equal N, wider/shallower shapes (large ``d_model / n_layers``) decode faster. Records are grouped
into families of equal non-embedding parameters (within 20%); each family gets measured markers and, from the
hardware profile, the predicted decode time per token at the same shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infscale.latency.calibrate import observations_from_records, predict_observations
from infscale.latency.model import HardwareProfile

__all__ = ["param_families", "plot_latency_vs_aspect"]


def param_families(n_params: Sequence[float], tolerance: float = 0.2) -> list[list[int]]:
    """Indices grouped into families whose parameter counts lie within ``tolerance`` of the family's smallest."""
    order = np.argsort(n_params)
    families: list[list[int]] = []
    for i in order:
        if families and n_params[i] <= n_params[families[-1][0]] * (1 + tolerance):
            families[-1].append(int(i))
        else:
            families.append([int(i)])
    return families


def plot_latency_vs_aspect(records: Sequence[dict[str, Any]], profile: HardwareProfile, out: str | Path) -> Path:
    """Write a PNG of decode ms/token vs ``d_model / n_layers`` (log x), one colour per parameter family."""
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    obs = observations_from_records(records)
    pred = predict_observations(obs, profile)
    steps = np.array([max(o.workload.output_len - 1, 1) for o in obs], dtype=float)
    measured = np.array([o.decode_s or np.nan for o in obs]) / steps * 1e3
    predicted = pred["decode_s"] / steps * 1e3
    aspect = np.array([o.shape.aspect_ratio for o in obs])
    n_ne = [o.shape.n_params_non_embedding for o in obs]
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    for k, fam in enumerate(param_families(n_ne)):
        fam = sorted(fam, key=lambda i: aspect[i])
        colour = f"C{k % 10}"
        label = f"~{np.median([n_ne[i] for i in fam]) / 1e6:.1f}M non-emb"
        ax.plot(aspect[fam], measured[fam], "o", color=colour, label=label)
        ax.plot(aspect[fam], predicted[fam], "--", color=colour)
        for i in fam:
            ax.annotate(obs[i].shape.label, (aspect[i], measured[i]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("aspect ratio d_model / n_layers")
    ax.set_ylabel("decode latency per token (ms)")
    ax.set_yscale("log")
    ax.set_title(f"decode latency vs shape at equal parameters: markers measured, dashes {profile.name}", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
