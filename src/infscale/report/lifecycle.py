"""Figures and the HTML section of the life-cycle planner (renders `infscale.workflows.lifecycle`'s report dict).

- `plot_crossover_volume`: lifetime queries on x, the optimal model size on y, one marker per strategy, the chosen
  (model, strategy, n) written where the choice changes.
- `plot_cost_frontier`: lifetime cost vs accuracy, the Pareto frontier, the optimum marked.
- `write_lifecycle_html`: a page with `infscale.report.html.lifecycle_section` (also in the demo report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infscale.report.html import _CSS, _esc, choice_label, lifecycle_section

__all__ = ["lifecycle_section", "plot_cost_frontier", "plot_crossover_volume", "write_lifecycle_html"]

_MARKERS = "os^D*vP<>hX"


def _marker(s: str, names: Sequence[str]) -> str:
    """A marker per strategy: greedy a circle, the others in turn by name (a plugin's strategy gets its own)."""
    order = ["greedy", *sorted(n for n in names if n != "greedy")]
    return _MARKERS[order.index(s) % len(_MARKERS)]


def _pyplot():
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    return plt


def _finish(plt: Any, fig: Any, ax: Any, path: Path) -> Path:
    """Grid, legend, layout; save as PNG and close."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_crossover_volume(rows: Sequence[Mapping[str, Any]], path: Path, *, unit: str = "USD") -> Path:
    """The optimal model size (and strategy, by marker) against lifetime query volume."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    ok = [r for r in rows if r.get("feasible")]
    names = sorted({r["strategy"] for r in ok})
    for s in names:
        pts = [r for r in ok if r["strategy"] == s]
        ax.scatter([r["queries"] for r in pts], [r["n_params"] for r in pts], marker=_marker(s, names), s=48,
                   label=s, zorder=3)
    if ok:
        ax.plot([r["queries"] for r in ok], [r["n_params"] for r in ok], color="grey", lw=1, alpha=0.6)
    for k, r in enumerate(ok):  # label where the strategy or its n changes (shape changes are the line itself)
        if k == 0 or (r["strategy"], r["n"]) != (ok[k - 1]["strategy"], ok[k - 1]["n"]):
            ax.annotate(choice_label(r), (r["queries"], r["n_params"]), textcoords="offset points", xytext=(4, -14),
                        fontsize=7, rotation=-15)
    bad = [r["queries"] for r in rows if not r.get("feasible")]
    if bad:
        ax.scatter(bad, [min((r["n_params"] for r in ok), default=1.0)] * len(bad), marker="x", color="red",
                   label="infeasible")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(y=0.2)
    ax.set_xlabel("lifetime queries")
    ax.set_ylabel("optimal model size N (parameters)")
    ax.set_title(f"Where the choice changes with query volume (least lifetime cost, {unit})")
    return _finish(plt, fig, ax, path)


def plot_cost_frontier(rows: Sequence[Mapping[str, Any]], path: Path, *, best: Mapping[str, Any] | None = None
                       ) -> Path:
    """Lifetime cost vs accuracy of the frontier's configurations, coloured by strategy; the optimum as a star."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    names = sorted({r["strategy"] for r in rows})
    for s in names:
        pts = [r for r in rows if r["strategy"] == s]
        ax.scatter([r["cost"] for r in pts], [100 * r["accuracy"] for r in pts], marker=_marker(s, names),
                   s=30, label=s)
    ax.step([r["cost"] for r in rows], [100 * r["accuracy"] for r in rows], where="post", color="black", lw=1,
            alpha=0.5)
    if best is not None and best.get("accuracy") is not None:
        ax.scatter([best["cost"]], [100 * best["accuracy"]], marker="*", s=260, color="gold", edgecolor="black",
                   zorder=5, label="optimum")
    unit = rows[0]["unit"] if rows else ""
    ax.set_xscale("log")
    ax.set_xlabel(f"lifetime cost ({unit}: training + serving + reward model)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Cost-vs-accuracy Pareto frontier over shapes x training tokens x strategies x n")
    return _finish(plt, fig, ax, path)


def write_lifecycle_html(r: Mapping[str, Any], path: Path) -> Path:
    """A self-contained page with the section (figures inlined)."""
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
            f"<title>infscale lifecycle: {_esc(r['name'])}</title><style>{_CSS}</style></head><body>"
            f"<h1>Life-cycle plan: {_esc(r['name'])}</h1>{lifecycle_section(r)}</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
