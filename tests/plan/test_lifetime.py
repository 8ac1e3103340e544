"""Sardana lifetime cost against the Chinchilla closed form, the optimality condition and Sardana's trends."""

import numpy as np
import pytest

from infscale.errors import InfeasibleError
from infscale.plan.lifetime import (
    CostModel,
    lifetime_cost,
    lifetime_optimal,
    lowest_loss_for_budget,
    tokens_for_loss,
)

# Hoffmann et al. approach 3, the law Sardana et al. use
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def law(n, d, r):
    return E + A / n**ALPHA + B / d**BETA


def chinchilla_optimum(c):
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n = g * (c / 6) ** (BETA / (ALPHA + BETA))
    return n, c / 6 / n


def test_tokens_for_loss_inverts_the_law_in_closed_form():
    n = np.array([5e8, 1e9, 7e9])
    target = 2.2
    d = tokens_for_loss(law, n, target)
    closed = (B / (target - E - A / n**ALPHA)) ** (1 / BETA)
    assert np.allclose(d, closed, rtol=1e-9)
    # a model too small to ever reach the target
    assert np.isinf(tokens_for_loss(law, np.array([1e5]), target))[0]


def test_no_inference_demand_gives_chinchilla_optimum():
    for c in (1e21, 1e23):
        n_opt, d_opt = chinchilla_optimum(c)
        plan = lifetime_optimal(law, law(n_opt, d_opt, None))
        assert plan.n_params == pytest.approx(n_opt, rel=1e-4)
        assert plan.train_tokens == pytest.approx(d_opt, rel=1e-4)
        assert plan.cost == pytest.approx(c, rel=1e-8)


def test_optimum_satisfies_lagrange_condition():
    dinf = 2e12
    plan = lifetime_optimal(law, 2.1, decode_tokens=dinf)
    n, d = plan.n_params, plan.train_tokens
    # d cost / d loss ratios equal along both axes: (6D + 2Dinf) / (alpha A N^-a-1) = 6N / (beta B D^-b-1)
    lhs = (6 * d + 2 * dinf) / (ALPHA * A * n ** (-ALPHA - 1))
    rhs = 6 * n / (BETA * B * d ** (-BETA - 1))
    assert lhs == pytest.approx(rhs, rel=1e-3)


def test_sardana_trends_smaller_longer_cheaper():
    """Sardana et al.: with inference demand the optimum is smaller and trained longer than Chinchilla's, and cheaper."""
    n0, d0 = chinchilla_optimum(1e23)
    target = law(n0, d0, None)
    prev = lifetime_optimal(law, target)
    for dinf in (1e11, 1e12, 1e13, 1e14):
        plan = lifetime_optimal(law, target, decode_tokens=dinf)
        assert plan.n_params < prev.n_params
        assert plan.tokens_per_param > prev.tokens_per_param
        chinchilla_cost = lifetime_cost(n0, d0, decode_tokens=dinf)
        assert plan.cost < chinchilla_cost
        prev = plan
    # at 1e14 inference tokens the saving over the Chinchilla-optimal model is large
    assert prev.cost / lifetime_cost(n0, d0, decode_tokens=1e14) < 0.5


def test_dollar_cost_weights_phases_by_utilisation():
    cost = CostModel(usd_per_hour=2.0, peak_flops=312e12, util_train=0.5, util_prefill=0.5, util_decode=0.05)
    n, d = 7e9, 2e12
    usd = lifetime_cost(n, d, prefill_tokens=1e12, decode_tokens=1e11, cost=cost)
    expected = 2.0 / 3600 / 312e12 * (6 * n * d / 0.5 + 2 * n * 1e12 / 0.5 + 2 * n * 1e11 / 0.05)
    assert usd == pytest.approx(expected, rel=1e-12)
    # expensive decode pushes the optimum smaller than a FLOPs count with the same demand
    flops_plan = lifetime_optimal(law, 2.1, prefill_tokens=1e12, decode_tokens=1e11)
    usd_plan = lifetime_optimal(law, 2.1, prefill_tokens=1e12, decode_tokens=1e11, cost=cost)
    assert usd_plan.n_params < flops_plan.n_params
    assert usd_plan.unit == "USD"


def test_inverse_round_trip():
    dinf = 1e12
    plan = lifetime_optimal(law, 2.05, decode_tokens=dinf)
    inv = lowest_loss_for_budget(law, plan.cost, decode_tokens=dinf)
    assert inv.loss == pytest.approx(2.05, abs=1e-6)
    assert inv.n_params == pytest.approx(plan.n_params, rel=1e-3)


def test_infeasible_targets():
    with pytest.raises(InfeasibleError, match="binding constraint loss target"):
        lifetime_optimal(law, 1.5)  # below the irreducible loss E
    with pytest.raises(InfeasibleError, match="binding constraint budget"):
        lowest_loss_for_budget(law, 1e10, decode_tokens=1e12)


def test_a_solution_on_the_search_bound_is_reported_as_such():
    n_opt, d_opt = chinchilla_optimum(1e23)  # ~5e10 parameters
    target = law(n_opt, d_opt, None)
    assert lifetime_optimal(law, target).at_bound is None  # interior: an optimum
    capped = lifetime_optimal(law, target, n_params_range=(1e6, 1e10))
    assert capped.at_bound == "max N" and capped.n_params == pytest.approx(1e10, rel=1e-9)
    assert capped.to_dict()["at_bound"] == "max N"
    floor = lifetime_optimal(law, target, n_params_range=(2e11, 1e13))
    assert floor.at_bound == "min N"
    assert lowest_loss_for_budget(law, 1e23).at_bound is None
    assert lowest_loss_for_budget(law, 1e23, n_params_range=(1e6, 1e9)).at_bound == "max N"
