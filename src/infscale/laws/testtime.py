"""Test-time curves that transfer across model sizes: a strategy's accuracy as a function of its budget n and of the
model's base (greedy) accuracy.

Form, per strategy s, in logit space (z = logit of the base accuracy, x = log2 n):

    logit acc_s(n) = z + u_s + v_s x + w_s x^2 + c_s z x

``u_s`` is the offset at n = 1 (a sample at temperature is worse than greedy), ``v_s, w_s`` the gain per doubling and
its bend (majority voting saturates, Theorem 1 of Wu et al.), ``c_s`` how the gain depends on the base model (a stronger
model gains less in logit per doubling, or more). The model's size enters only through its base accuracy, so a size
never seen in the fit is predicted from its greedy accuracy alone; `leave_one_size_out` measures exactly that.
The fit is a linear least-squares problem per strategy (a small ridge keeps it determined when few n were run);
``greedy`` is the identity. Accuracies are clipped to ``[clip, 1 - clip]`` before the logit.

Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LosoResult", "TestTimeCurves", "leave_one_size_out", "logit", "sigmoid"]


def logit(p: np.ndarray, clip: float = 1e-3) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), clip, 1.0 - clip)
    return np.log(q / (1.0 - q))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _features(z: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, x * x, z * x], axis=-1)


class TestTimeCurves:
    """``acc_s(n | base)`` for every strategy seen in the fit (see the module docstring)."""

    __test__ = False  # not a pytest class

    def __init__(self, ridge: float = 1e-3, clip: float = 1e-3) -> None:
        self.ridge = ridge
        self.clip = clip

    def fit(self, base_accuracy: Sequence[float], strategy: Sequence[str], n: Sequence[int],
            accuracy: Sequence[float]) -> TestTimeCurves:
        """One point per (model, strategy, n): the model's greedy accuracy, the strategy, its budget, its accuracy."""
        base = np.asarray(base_accuracy, dtype=np.float64)
        strat = np.asarray(strategy, dtype=object)
        budget = np.asarray(n, dtype=np.float64)
        acc = np.asarray(accuracy, dtype=np.float64)
        if not (base.shape == strat.shape == budget.shape == acc.shape):
            raise ValueError("TestTimeCurves.fit: base_accuracy, strategy, n and accuracy differ in length")
        if np.any(budget < 1):
            raise ValueError("TestTimeCurves.fit: every budget n must be >= 1")
        z, x = logit(base, self.clip), np.log2(budget)
        target = logit(acc, self.clip) - z
        self.coef_: dict[str, np.ndarray] = {}
        self.base_range_: dict[str, tuple[float, float]] = {}
        self.n_range_: dict[str, tuple[int, int]] = {}
        for s in sorted(set(strat.tolist()) - {"greedy"}):
            m = strat == s
            a = _features(z[m], x[m])
            reg = self.ridge * np.eye(a.shape[1])
            reg[0, 0] = 0.0  # the offset is not shrunk
            self.coef_[s] = np.linalg.solve(a.T @ a + reg, a.T @ target[m])
            self.base_range_[s] = (float(base[m].min()), float(base[m].max()))
            self.n_range_[s] = (int(budget[m].min()), int(budget[m].max()))
        self.strategies_ = ("greedy", *self.coef_)
        return self

    def coef_table(self, names: Sequence[str]) -> np.ndarray:
        """Coefficients of each name (rows of zeros for ``greedy``), for `predict_coded`."""
        missing = [s for s in names if s != "greedy" and s not in self.coef_]
        if missing:
            raise ValueError(f"TestTimeCurves: no curve for strategy {missing[0]!r} (fitted: "
                             f"{', '.join(self.strategies_)})")
        return np.array([np.zeros(4) if s == "greedy" else self.coef_[s] for s in names]).reshape(len(names), 4)

    def predict_coded(self, base_accuracy: np.ndarray, code: np.ndarray, n: np.ndarray,
                      names: Sequence[str]) -> np.ndarray:
        """`predict` with strategies given as indices into ``names`` (no string work per row: the planner's path)."""
        table = self.coef_table(names)
        greedy = np.array([s == "greedy" for s in names])
        z, x = logit(base_accuracy, self.clip), np.log2(np.asarray(n, dtype=np.float64))
        c = table[code]
        gain = c[:, 0] + c[:, 1] * x + c[:, 2] * x * x + c[:, 3] * z * x
        return np.where(greedy[code], np.asarray(base_accuracy, dtype=np.float64), sigmoid(z + gain))

    def _coef(self, strategy: np.ndarray) -> np.ndarray:
        out = np.zeros(strategy.shape + (4,))
        for s in set(np.ravel(strategy).tolist()):
            if s == "greedy":
                continue
            if s not in self.coef_:
                raise ValueError(f"TestTimeCurves: no curve for strategy {s!r} (fitted: {', '.join(self.strategies_)})")
            out[strategy == s] = self.coef_[s]
        return out

    def predict(self, base_accuracy: np.ndarray, strategy: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Accuracy of ``strategy`` at budget ``n`` for a model of greedy accuracy ``base_accuracy`` (broadcast)."""
        base, strat, budget = np.broadcast_arrays(np.asarray(base_accuracy, dtype=np.float64),
                                                  np.asarray(strategy, dtype=object), np.asarray(n, dtype=np.float64))
        z, x = logit(base, self.clip), np.log2(budget)
        gain = np.sum(self._coef(strat) * _features(z, x), axis=-1)
        return np.where(strat == "greedy", base, sigmoid(z + gain))

    def base_for_accuracy(self, accuracy: float | np.ndarray, strategy: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The base accuracy a model needs for ``strategy`` at ``n`` to reach ``accuracy`` (NaN where the curve is not
        increasing in the base accuracy there, i.e. no base reaches it). Closed form: the logit is linear in z."""
        strat, budget = np.broadcast_arrays(np.asarray(strategy, dtype=object), np.asarray(n, dtype=np.float64))
        x = np.log2(budget)
        c = self._coef(strat)
        slope = 1.0 + c[..., 3] * x
        rest = c[..., 0] + c[..., 1] * x + c[..., 2] * x * x
        want = logit(np.broadcast_to(np.asarray(accuracy, dtype=np.float64), budget.shape), self.clip)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(slope > 0, (want - rest) / slope, np.nan)
        out = sigmoid(z)
        return np.where(strat == "greedy", np.broadcast_to(np.asarray(accuracy, dtype=np.float64), budget.shape), out)

    def outside(self, base_accuracy: np.ndarray, strategy: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Mask of the queries outside the fitted range of base accuracy or n of their strategy."""
        base, strat, budget = np.broadcast_arrays(np.asarray(base_accuracy, dtype=np.float64),
                                                  np.asarray(strategy, dtype=object), np.asarray(n, dtype=np.float64))
        out = np.zeros(base.shape, dtype=bool)
        for s in set(np.ravel(strat).tolist()) - {"greedy"}:
            m = strat == s
            (blo, bhi), (nlo, nhi) = self.base_range_[s], self.n_range_[s]
            out[m] = (base[m] < blo - 0.02) | (base[m] > bhi + 0.02) | (budget[m] < nlo) | (budget[m] > nhi)
        return out

    def to_dict(self) -> dict[str, object]:
        return {s: {"u": float(c[0]), "v": float(c[1]), "w": float(c[2]), "c": float(c[3]),
                    "base_range": list(self.base_range_[s]), "n_range": list(self.n_range_[s])}
                for s, c in self.coef_.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class LosoResult:
    """Leave-one-size-out: each size's curves predicted from the others' fit (accuracy points)."""

    per_size: dict[str, dict[str, float]]
    """size -> {"mae_points", "max_points", "n_points", "base_accuracy"}."""
    per_strategy: dict[str, float]
    """strategy -> mean absolute error in points over every held-out size."""
    mae_points: float

    def to_dict(self) -> dict[str, object]:
        return {"per_size": self.per_size, "per_strategy": self.per_strategy, "mae_points": self.mae_points}


def leave_one_size_out(model: Sequence[str], base_accuracy: Sequence[float], strategy: Sequence[str],
                       n: Sequence[int], accuracy: Sequence[float], *, ridge: float = 1e-3,
                       truth: Sequence[float] | None = None) -> LosoResult:
    """Fit `TestTimeCurves` on every size but one, predict the held-out size's points from its greedy accuracy.

    With ``truth`` (per row, NaN where unknown) the curves are fitted on ``accuracy`` (e.g. forecasts from pilots)
    and each held-out size is scored against ``truth`` (its measured accuracy) instead."""
    model_a = np.asarray(model, dtype=object)
    base, strat = np.asarray(base_accuracy, dtype=np.float64), np.asarray(strategy, dtype=object)
    budget, acc = np.asarray(n, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    score = acc if truth is None else np.asarray(truth, dtype=np.float64)
    if score.shape != acc.shape:
        raise ValueError("leave_one_size_out: truth and accuracy differ in length")
    sizes = sorted(set(model_a.tolist()))
    if len(sizes) < 3:
        raise ValueError(f"leave_one_size_out: needs points of at least 3 model sizes, got {len(sizes)}")
    per_size: dict[str, dict[str, float]] = {}
    miss_all, strat_all = [], []
    for held in sizes:
        test = (model_a == held) & (strat != "greedy")
        train = model_a != held
        curves = TestTimeCurves(ridge=ridge).fit(base[train], strat[train], budget[train], acc[train])
        known = np.isin(strat, list(curves.coef_)) & test & np.isfinite(score)
        miss = 100.0 * np.abs(curves.predict(base[known], strat[known], budget[known]) - score[known])
        per_size[held] = {"mae_points": float(miss.mean()) if miss.size else float("nan"),
                          "max_points": float(miss.max()) if miss.size else float("nan"),
                          "n_points": int(miss.size), "base_accuracy": float(base[model_a == held][0])}
        miss_all.append(miss)
        strat_all.append(strat[known])
    miss_cat, strat_cat = np.concatenate(miss_all), np.concatenate(strat_all)
    per_strategy = {s: float(miss_cat[strat_cat == s].mean()) for s in sorted(set(strat_cat.tolist()))}
    return LosoResult(per_size=per_size, per_strategy=per_strategy, mae_points=float(miss_cat.mean()))
