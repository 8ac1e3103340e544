"""Saturation (Wu et al. Theorems 1-2): exact MV under i.i.d. draws, limits, Hoeffding rate, measured curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infscale.tts.analysis import CandidatePools, accuracy_at_n
from infscale.tts.analysis.saturation import (
    class_mass,
    convergence_rate,
    hoeffding_bound,
    limit_accuracy,
    mv_accuracy_iid,
    sample_pools,
    saturation_summary,
    top_two_gap,
)


def binary_mv(p: float, n: int) -> float:
    """Closed form for two classes: P(correct count > n/2) + half the tie mass."""
    acc = sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n // 2 + 1, n + 1))
    if n % 2 == 0:
        acc += 0.5 * math.comb(n, n // 2) * (p * (1 - p)) ** (n // 2)
    return acc


@pytest.mark.parametrize("n", [1, 2, 3, 10, 31, 64])
def test_mv_iid_matches_binomial_closed_form(n):
    got = mv_accuracy_iid(np.array([[0.45, 0.55], [0.7, 0.3]]), np.array([0, 0]), n)
    assert got == pytest.approx([binary_mv(0.45, n), binary_mv(0.7, n)], abs=1e-12)


def test_mv_iid_matches_monte_carlo_with_sink_and_three_classes():
    rng = np.random.default_rng(0)
    probs = np.array([0.35, 0.3, 0.2])  # 0.15 unanswered
    for n in (4, 9):
        exact = mv_accuracy_iid(probs[None, :], np.array([0]), n)[0]
        draws = rng.choice(4, size=(200_000, n), p=[0.35, 0.3, 0.2, 0.15])
        cnt = np.stack([(draws == k).sum(axis=1) for k in range(3)], axis=1)
        top = cnt.max(axis=1)
        mc = np.where((cnt[:, 0] == top) & (top > 0), 1.0 / (cnt == top[:, None]).sum(axis=1), 0.0).mean()
        assert abs(mc - exact) < 4 * 0.5 / math.sqrt(200_000)


def random_distributions(seed: int, p: int = 25, k: int = 4):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=p) * 0.9  # 10% unanswered
    correct = rng.integers(0, k, size=p)
    return probs, correct


def test_majority_vote_converges_to_theorem1_limit_within_hoeffding_bound():
    """Acceptance: exact MV accuracy on synthetic answer distributions tends to the Theorem 1 limit, never farther
    from it than the Hoeffding bound, and the gap closes exponentially."""
    probs, correct = random_distributions(0)
    limit = limit_accuracy(probs, correct)
    assert set(np.unique(limit)) <= {0.0, 1.0}
    ns = np.array([1, 2, 4, 8, 16, 32, 64, 128, 160])
    acc = np.array([mv_accuracy_iid(probs, correct, int(n)) for n in ns])  # (len(ns), P)
    bound = hoeffding_bound(probs, ns)
    assert (np.abs(acc - limit[None, :]) <= bound + 1e-12).all()
    gap = np.abs(acc - limit[None, :]).mean(axis=1)  # mean per-problem distance to the limit
    assert gap[-1] < 0.3 * gap[0]
    assert (np.diff(gap[1:]) <= 1e-12).all()  # closes monotonically from n = 2 on
    # problems with a clear top answer are settled to 1e-3 by n = 160
    clear = top_two_gap(probs) > 0.25
    assert clear.any()
    assert np.abs(acc[-1, clear] - limit[clear]).max() < 1e-3
    # per problem the rate is exponential: fitted c > 1 and at least the Hoeffding rate exp(delta^2 / 2)
    i = int(np.argmax(np.where(clear, top_two_gap(probs), -1)))
    c = convergence_rate(ns, acc[:, i], limit[i], floor=1e-12)
    assert c >= math.exp(top_two_gap(probs)[i] ** 2 / 2) > 1


def test_subsampled_pool_curves_approach_predicted_limits():
    """Pools drawn from known distributions: MV at n = M equals the plug-in limit exactly, and the measured curves
    approach the true Theorem 1/2 limits."""
    rng = np.random.default_rng(1)
    p = 200
    probs = np.zeros((p, 3))
    probs[:, 0] = rng.uniform(0.15, 0.55, p)  # class 0 is the correct answer
    probs[:, 1] = rng.uniform(0.1, 0.35, p)
    probs[:, 2] = 0.9 - probs[:, 0] - probs[:, 1]
    correct = np.zeros(p, dtype=int)
    # rewards favour the correct class: Theorem 2's pi * rho can differ from pi's argmax
    rho = np.tile([0.9, 0.3, 0.3], (p, 1))
    pools = sample_pools(probs, correct, 256, random_state=2, score_means=rho, score_noise=0.05)
    curves = accuracy_at_n(pools, n_bootstrap=300, random_state=3)
    summ = saturation_summary(pools, curves["majority_vote"].ns)
    assert curves["majority_vote"].accuracy[-1] == pytest.approx(summ.mv_limit, abs=1e-12)
    true_mv = limit_accuracy(probs, correct).mean()
    true_wv = limit_accuracy(probs * rho, correct).mean()
    assert true_wv > true_mv + 0.2
    assert abs(summ.mv_limit - true_mv) < 0.05
    assert abs(summ.wv_limit - true_wv) < 0.05
    assert abs(curves["weighted_vote"].accuracy[-1] - true_wv) < 0.05
    # the measured gap to the limit shrinks with n
    gap = np.abs(curves["majority_vote"].accuracy - summ.mv_limit)
    assert gap[-2] < gap[0]


def test_class_mass_and_limits_ties_and_missing_answers():
    pools = CandidatePools(answer_ids=np.array([[0, 0, 1, 1], [2, -1, -1, -1], [0, 1, 1, 1]]),
                           scores=np.array([[0.9, 0.9, 0.1, 0.2], [0.5, np.nan, np.nan, np.nan], [1, .1, .1, .1]]),
                           correct_ids=np.array([0, 2, -1]))
    mass = class_mass(pools)
    np.testing.assert_allclose(mass[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(limit_accuracy(mass, pools.correct_ids), [0.5, 1.0, 0.0])
    wmass = class_mass(pools, weighted=True)
    np.testing.assert_allclose(wmass[0], [0.45, 0.075, 0.0])
    np.testing.assert_allclose(limit_accuracy(wmass, pools.correct_ids), [1.0, 1.0, 0.0])
    # Hoeffding numbers: |A| exp(-n delta^2 / 2)
    b = hoeffding_bound(np.array([[0.6, 0.3, 0.1]]), [10, 100])
    np.testing.assert_allclose(b[:, 0], [1.0, 3 * math.exp(-100 * 0.09 / 2)])
