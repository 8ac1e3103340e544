"""Plots of the inference scaling analysis: accuracy vs FLOPs with the Pareto frontier, and saturation curves.

matplotlib (Agg) is imported inside the functions; every function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from infscale.plan.optimum import pareto_frontier
from infscale.report.figure import save_figure
from infscale.tts.analysis.accuracy import AccuracyCurve, OperatingPoint, strategy_label
from infscale.tts.analysis.saturation import SaturationSummary

__all__ = ["plot_accuracy_vs_flops", "plot_crossover", "plot_model_strategy_grid", "plot_saturation"]


def _pyplot():
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    return plt


def plot_accuracy_vs_flops(points: Sequence[OperatingPoint], path: Path, *, accounting: str = "ours",
                           title: str = "Accuracy vs inference FLOPs") -> Path:
    """One line per model x strategy x aggregation (points by increasing FLOPs, bootstrap intervals as bars), the
    frontier in black. The colour says the strategy (how candidates were produced), the marker the aggregation (how
    one answer was chosen), the line style the model; the legend names each line in full."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.5))
    groups: dict[tuple[str, str], list[OperatingPoint]] = {}
    for p in points:
        groups.setdefault((p.model, p.strategy), []).append(p)
    methods = sorted({strategy.partition("+")[0] for _, strategy in groups})
    models = sorted({model for model, _ in groups})
    colours = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20").colors
    markers = {"greedy": "*", "majority_vote": "o", "weighted_vote": "s", "best_of_n": "^"}
    styles = ("-", "--", ":", "-.")
    for (model, strategy), pts in sorted(groups.items()):
        method, _, agg = strategy.partition("+")
        pts = sorted(pts, key=lambda p: p.flops_for(accounting))
        f = np.array([p.flops_for(accounting) for p in pts])
        a = np.array([100 * p.accuracy for p in pts])
        lo = np.array([100 * p.ci_low for p in pts])
        hi = np.array([100 * p.ci_high for p in pts])
        colour = colours[methods.index(method) % len(colours)]
        line = ax.plot(f, a, marker=markers.get(agg, "D"), ms=5, lw=1.2, color=colour,
                       ls=styles[models.index(model) % len(styles)], label=f"{model}: {pts[0].label}")[0]
        if np.isfinite(lo).all() and np.isfinite(hi).all():
            ax.errorbar(f, a, yerr=[np.clip(a - lo, 0, None), np.clip(hi - a, 0, None)], fmt="none",
                        ecolor=line.get_color(), alpha=0.5, lw=0.8)
    f_all = np.array([p.flops_for(accounting) for p in points])
    a_all = np.array([100 * p.accuracy for p in points])
    front = pareto_frontier(f_all, -a_all)
    if front.size:
        ax.step(f_all[front], a_all[front], where="post", color="black", lw=2, alpha=0.6, label="Pareto frontier")
    ax.set_xscale("log")
    ax.set_xlabel(f"inference FLOPs per problem ({'ours: policy + reward model' if accounting == 'ours' else 'Wu et al.: 2 N T'})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    # beside the axes, never over the points (a legend inside hid MCTS's 0% points in the demo report)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 if len(groups) < 24 else 2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_saturation(curves: Mapping[str, Mapping[str, AccuracyCurve]], summaries: Mapping[str, SaturationSummary],
                    path: Path) -> Path:
    """Measured MV/WV accuracy at n against the predicted Theorem 1/2 limits (dashed) and the Hoeffding envelope."""
    plt = _pyplot()
    keys = sorted(curves)
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(5.5 * max(len(keys), 1), 4.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        summ = summaries[key]
        for agg, limit, bound, color in (("majority_vote", summ.mv_limit, summ.mv_bound, "tab:blue"),
                                         ("weighted_vote", summ.wv_limit, summ.wv_bound, "tab:orange")):
            cur = curves[key].get(agg)
            if cur is None:
                continue
            ax.plot(cur.ns, 100 * cur.accuracy, marker="o", color=color, label=f"{agg} (measured)")
            ax.fill_between(cur.ns, 100 * cur.ci_low, 100 * cur.ci_high, color=color, alpha=0.15)
            ax.axhline(100 * limit, color=color, ls="--", lw=1, label=f"{agg} limit (Thm {1 if agg == 'majority_vote' else 2})")
            env = np.interp(cur.ns, summ.ns, bound)
            show = env < 0.5  # the bound is vacuous (about 1) at small n
            if show.any():
                ax.plot(cur.ns[show], 100 * np.clip(limit - env[show], 0, 1), color=color, ls=":", lw=1,
                        label=f"{agg}: limit - Hoeffding bound")
        ax.axhline(100 * summ.oracle, color="grey", ls=":", lw=1, label="pass@M (oracle)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (samples aggregated)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(key, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


_STYLES = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", "-."), ("*", ":"))


def plot_model_strategy_grid(points: Sequence[OperatingPoint], path: Path, *, accounting: str = "ours",
                             strategies: Sequence[str] | None = None,
                             title: str = "Accuracy vs inference FLOPs") -> Path:
    """Accuracy vs FLOPs with one colour per model (by size) and one marker/line style per strategy, for comparing
    model sizes across strategies. Only ``strategies`` (``strategy+aggregation`` names, default: all) are drawn; the
    Pareto frontier (black) is computed over every point given."""
    plt = _pyplot()
    from matplotlib.lines import Line2D  # lazy: matplotlib

    sizes = {p.model: p.n_params for p in points}
    models = sorted(sizes, key=sizes.__getitem__)
    names = list(strategies) if strategies is not None else sorted({p.strategy for p in points})
    colours = plt.cm.viridis(np.linspace(0.05, 0.8, max(len(models), 2)))
    fig, ax = plt.subplots(figsize=(10.5, 5.5))
    for mi, model in enumerate(models):
        for si, strategy in enumerate(names):
            pts = sorted((p for p in points if p.model == model and p.strategy == strategy),
                         key=lambda p: p.flops_for(accounting))
            if not pts:
                continue
            marker, ls = _STYLES[si % len(_STYLES)]
            ax.plot([p.flops_for(accounting) for p in pts], [100 * p.accuracy for p in pts], marker=marker, ls=ls,
                    ms=5, lw=1.1, color=colours[mi], alpha=0.9)
    f_all = np.array([p.flops_for(accounting) for p in points])
    a_all = np.array([100 * p.accuracy for p in points])
    front = pareto_frontier(f_all, -a_all)
    if front.size:
        ax.step(f_all[front], a_all[front], where="post", color="black", lw=2, alpha=0.5)
        ax.scatter(f_all[front], a_all[front], s=70, facecolors="none", edgecolors="black", lw=1.2, zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel(f"inference FLOPs per problem ({'ours: policy + reward model' if accounting == 'ours' else 'Wu et al.: 2 N T'})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    model_handles = [Line2D([], [], color=colours[i], lw=3, label=f"{m} ({sizes[m] / 1e6:.2g}M)")
                     for i, m in enumerate(models)]
    strategy_handles = [Line2D([], [], color="grey", marker=_STYLES[i % len(_STYLES)][0],
                               ls=_STYLES[i % len(_STYLES)][1], label=strategy_label(s)) for i, s in enumerate(names)]
    strategy_handles.append(Line2D([], [], color="black", lw=2, alpha=0.5, marker="o", mfc="none",
                                   label="Pareto frontier (all points)"))
    first = ax.legend(handles=model_handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="policy",
                      title_fontsize=8)
    ax.add_artist(first)
    ax.legend(handles=strategy_handles, loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=8,
              title="strategy", title_fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_ACCOUNTING_LABELS = {"ours": "ours (policy + PRM FLOPs)", "wu2025": "Wu et al. (2NT, PRM free)",
                      "memory": "memory-aware (+ KV bytes)"}


def plot_crossover(rows: Sequence[Mapping[str, object]], path: Path, *, prm_auc: float | None = None,
                   title: str = "PRM-quality crossover") -> Path:
    """Two panels against the reward's outcome AUC, one line per accounting: the share of decided verdicts the
    smaller model wins, and the mean accuracy gap (smaller - larger, points); the study PRM's own AUC dashed."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for acc in dict.fromkeys(str(r["accounting"]) for r in rows):
        mine = sorted((r for r in rows if r["accounting"] == acc), key=lambda r: float(r["reward_auc"]))  # type: ignore[arg-type]
        x = [float(r["reward_auc"]) for r in mine]  # type: ignore[arg-type]
        share = [np.nan if r["small_share"] is None else 100 * float(r["small_share"]) for r in mine]  # type: ignore[arg-type]
        gap = [np.nan if r["mean_gap_points"] is None else float(r["mean_gap_points"]) for r in mine]  # type: ignore[arg-type]
        label = _ACCOUNTING_LABELS.get(acc, acc)
        left.plot(x, share, marker="o", label=label)
        right.plot(x, gap, marker="o", label=label)
    left.axhline(50, color="grey", lw=0.8, ls=":")
    right.axhline(0, color="grey", lw=0.8, ls=":")
    for ax in (left, right):
        if prm_auc is not None and np.isfinite(prm_auc):
            ax.axvline(prm_auc, color="black", ls="--", lw=1, label=f"study PRM (outcome AUC {prm_auc:.2f})")
        ax.set_xlabel("reward outcome AUC (noisy verifier)")
        ax.grid(True, alpha=0.3)
    left.set_ylabel("verdicts won by the smaller model (%)")
    right.set_ylabel("mean accuracy gap, smaller - larger (points)")
    left.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_forecast(rows: Sequence[Mapping[str, object]], path: Path, *, title: str = "") -> Path:
    """Forecast accuracy against n per aggregation (line, interval band) with the measured accuracy where the pool
    held n samples (points); n on a log axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    names = list(dict.fromkeys(str(r["aggregation"]) for r in rows))
    for k, name in enumerate(names):
        sub = [r for r in rows if r["aggregation"] == name]
        n = np.array([float(r["n"]) for r in sub])
        color = f"C{k}"
        ax.plot(n, [100 * float(r["forecast"]) for r in sub], color=color, lw=1.6, label=f"{name} forecast")
        ax.fill_between(n, [100 * float(r["low"]) for r in sub], [100 * float(r["high"]) for r in sub], color=color,
                        alpha=0.18, lw=0)
        meas = [(float(r["n"]), 100 * float(r["measured"])) for r in sub if r["measured"] is not None]
        if meas:
            ax.plot(*zip(*meas, strict=True), "o", color=color, ms=3.5, label=f"{name} measured")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("samples per problem n")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi=130)
