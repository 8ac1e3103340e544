"""Held-out validation of a fitted law: MSE and R^2 on raw loss, Spearman rank correlation per size group.

Bian et al. reports its "test" figures over all runs, the fit points included; docs/references.md asks for both that and the figures over
the held-out runs only, so `validate` returns both (`all` and `held_out`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infscale.laws.fitted import FittedLaw
from infscale.laws.runs import Runs


@dataclass(frozen=True, slots=True)
class Scores:
    n_runs: int
    mse: float
    r2: float
    spearman: float
    max_rel_err: float


@dataclass(frozen=True, slots=True)
class GroupScore:
    group: str
    n_runs: int
    spearman: float
    mse: float


@dataclass(frozen=True, slots=True)
class Validation:
    fit: Scores
    all: Scores
    """Over every run, fit points included (Bian et al.'s 'test' convention)."""
    held_out: Scores | None
    """Over the runs not used in the fit; None when every run was used."""
    per_group: tuple[GroupScore, ...]
    """Spearman between actual and predicted loss within each size group (all runs of the group)."""

    def group(self, name: str) -> GroupScore:
        for g in self.per_group:
            if g.group == name:
                return g
        raise KeyError(name)


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); nan for fewer than 2 points or a constant input. The one rank
    correlation of the toolkit (fit validation, model selection)."""
    from scipy.stats import spearmanr  # lazy: scipy

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def scores(actual: np.ndarray, predicted: np.ndarray) -> Scores:
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    resid = predicted - actual
    ss_tot = float(np.sum((actual - actual.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return Scores(n_runs=int(actual.size), mse=float(np.mean(resid ** 2)), r2=r2, spearman=spearman(actual, predicted),
                  max_rel_err=float(np.max(np.abs(resid) / actual)))


def predict_runs(law: FittedLaw, runs: Runs) -> np.ndarray:
    return law.predict(runs.n_params, runs.n_tokens, runs.aspect_ratio if law.law.needs_aspect_ratio else None,
                       runs.arch if law.law.needs_arch else None)


def validate(law: FittedLaw, fit_runs: Runs, held_runs: Runs) -> Validation:
    fit_pred = predict_runs(law, fit_runs)
    fit_scores = scores(fit_runs.loss, fit_pred)
    held = None
    all_actual, all_pred, all_group = fit_runs.loss, fit_pred, fit_runs.group
    if len(held_runs):
        held_pred = predict_runs(law, held_runs)
        held = scores(held_runs.loss, held_pred)
        all_actual = np.concatenate([fit_runs.loss, held_runs.loss])
        all_pred = np.concatenate([fit_pred, held_pred])
        all_group = np.concatenate([fit_runs.group, held_runs.group])
    groups = []
    n_all = np.concatenate([fit_runs.n_params, held_runs.n_params]) if len(held_runs) else fit_runs.n_params
    order = sorted(set(all_group), key=lambda g: float(np.median(n_all[all_group == g])))
    for g in order:
        m = all_group == g
        groups.append(GroupScore(str(g), int(m.sum()), spearman(all_actual[m], all_pred[m]),
                                 float(np.mean((all_pred[m] - all_actual[m]) ** 2))))
    return Validation(fit=fit_scores, all=scores(all_actual, all_pred), held_out=held, per_group=tuple(groups))
