"""Test-time curves across model sizes: known coefficients recovered, exact leave-one-size-out on a closed form,
the inverse in the base accuracy, Wu et al.'s tables."""

from __future__ import annotations

import numpy as np
import pytest

from infscale.laws.testtime import TestTimeCurves, leave_one_size_out, logit, sigmoid

TRUE = {"majority_vote": (-0.3, 0.5, -0.04, -0.05), "rebase": (0.1, 0.6, 0.0, -0.1)}


def _synthetic(bases=(0.1, 0.3, 0.5, 0.7), ns=(1, 2, 4, 8, 16, 32)):
    rows = []
    for k, b in enumerate(bases):
        z = logit(b)
        rows.append((f"m{k}", b, "greedy", 1, b))
        for s, (u, v, w, c) in TRUE.items():
            for n in ns:
                x = np.log2(n)
                rows.append((f"m{k}", b, s, n, float(sigmoid(z + u + v * x + w * x * x + c * z * x))))
    return [list(col) for col in zip(*rows, strict=True)]


def test_fit_recovers_known_coefficients_and_loso_is_exact():
    model, base, strat, n, acc = _synthetic()
    curves = TestTimeCurves(ridge=0.0).fit(base, strat, n, acc)
    for s, coef in TRUE.items():
        assert curves.coef_[s] == pytest.approx(coef, abs=1e-8)
    assert curves.predict(0.3, "greedy", 1) == pytest.approx(0.3)
    loso = leave_one_size_out(model, base, strat, n, acc, ridge=0.0)
    assert loso.mae_points < 1e-6 and set(loso.per_size) == {"m0", "m1", "m2", "m3"}


def test_base_for_accuracy_inverts_predict():
    model, base, strat, n, acc = _synthetic()
    curves = TestTimeCurves(ridge=0.0).fit(base, strat, n, acc)
    s = np.array(["rebase", "majority_vote", "greedy"])
    k = np.array([16, 4, 1])
    need = curves.base_for_accuracy(0.6, s, k)
    assert curves.predict(need, s, k) == pytest.approx([0.6, 0.6, 0.6], abs=1e-9)
    assert need[0] < need[1] < need[2]  # search needs a weaker base model than voting, voting than greedy


def test_outside_flags_bases_and_budgets_beyond_the_fit():
    model, base, strat, n, acc = _synthetic()
    curves = TestTimeCurves().fit(base, strat, n, acc)
    flags = curves.outside(np.array([0.4, 0.95, 0.4]), np.array(["rebase"] * 3), np.array([8, 8, 64]))
    assert flags.tolist() == [False, True, True]


def test_unknown_strategy_is_one_clear_error():
    model, base, strat, n, acc = _synthetic()
    curves = TestTimeCurves().fit(base, strat, n, acc)
    with pytest.raises(ValueError, match="no curve for strategy 'beam'"):
        curves.predict(0.5, "beam", 4)


def test_wu2025_tables_leave_one_size_out():
    """Wu et al.'s MATH500 tables (Mistral-7B, Llemma-7B, Llama3-8B-Instruct, Llemma-34B): each model's points from the
    other three's fit within 3.3 points on average (measured; margin to 6)."""
    from pathlib import Path

    from infscale.workflows.lifecycle_inputs import load_points

    pts = load_points("wu2025-math500", Path("."))
    base = pts.base_accuracy()
    loso = leave_one_size_out(pts.model, [base[m] for m in pts.model], pts.strategy, pts.n, pts.accuracy)
    assert set(loso.per_size) == {"Mistral-7B", "Llemma-7B", "Llama3-8B-Instruct", "Llemma-34B"}
    assert loso.mae_points < 6.0
