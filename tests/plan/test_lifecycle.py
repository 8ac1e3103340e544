"""The life-cycle planner's maths: Sardana's lifetime optimum through the joint planner, the crossover in query
volume, costs of search and reward models, infeasible deployments in one line, measured (sunk) models."""

from __future__ import annotations

import numpy as np
import pytest

from infscale.errors import InfeasibleError
from infscale.latency.model import HARDWARE
from infscale.laws.downstream import ExpErrorLaw
from infscale.laws.testtime import TestTimeCurves, logit, sigmoid
from infscale.plan import lifetime_cost, lifetime_optimal
from infscale.plan.lifecycle import AccuracyChain, Deployment, Prices, solve_lifecycle
from infscale.plan.lifecycle_candidates import configs_from_points, configs_from_shapes, configs_from_sizes
from infscale.plan.lifecycle_sweeps import crossover_in_queries
from infscale.plan.shapes import enumerate_shapes, get_family

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28  # Hoffmann et al. approach 3, the law Sardana et al. use


SCORED = ("best_of_n", "weighted_vote", "rebase")
"""The strategies that pay for the reward model (the workflow reads them from the strategy specs)."""


def hoffmann(n, d, r=None):
    return E + A * np.asarray(n, float) ** -ALPHA + B * np.asarray(d, float) ** -BETA


def _sizes(d, lo=1e8, hi=1e12, points=40001, strategies=None):
    from dataclasses import replace

    c = configs_from_sizes(np.geomspace(lo, hi, points), strategies or {"greedy": [1]}, d, tokens_range=(1, 1))
    return replace(c, tokens_min=np.ones(len(c)), tokens_max=np.full(len(c), 1e16))


@pytest.mark.parametrize("demand", [0.0, 2e11, 1.26e12, 1e13])
def test_sardana_lifetime_optimum_through_the_planner(demand):
    """Greedy, no latency limit, FLOPs as cost: the joint planner finds Sardana's eq. 2 optimum (the 1-D lifetime
    solver's N, D and cost), and its saving over the Chinchilla-optimal model of equal loss."""
    target = 2.0414  # the loss of a 6.97B model trained on 1.248T tokens under Hoffmann's law
    d = Deployment(queries=demand, prompt_tokens=0, output_tokens=1, loss_target=target)
    sol = solve_lifecycle(_sizes(d), AccuracyChain(loss_fn=hoffmann), d, Prices())
    ref = lifetime_optimal(hoffmann, target, decode_tokens=demand)
    i = sol.best
    assert sol.configs.n_params[i] == pytest.approx(ref.n_params, rel=2e-3)
    assert sol.tokens[i] == pytest.approx(ref.train_tokens, rel=2e-3)
    assert sol.cost[i] == pytest.approx(ref.cost, rel=1e-6)
    chinchilla = lifetime_optimal(hoffmann, target)
    saving = 1 - sol.cost[i] / float(lifetime_cost(chinchilla.n_params, chinchilla.train_tokens, decode_tokens=demand))
    assert saving == pytest.approx(1 - ref.cost / float(lifetime_cost(chinchilla.n_params, chinchilla.train_tokens,
                                                                          decode_tokens=demand)), abs=1e-6)
    if demand == 0.0:  # Hoffmann's closed form N = G (C/6)^(b/(a+b))
        g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
        c_opt = 6 * ref.n_params * ref.train_tokens
        assert sol.configs.n_params[i] == pytest.approx(g * (c_opt / 6) ** (BETA / (ALPHA + BETA)), rel=2e-3)
        assert saving == pytest.approx(0.0, abs=1e-6)


def test_sardanas_published_case_through_the_planner():
    """Sardana et al. (2024), Fig. 1: Hoffmann's law with their coefficients, the loss of a 13B model at its
    Chinchilla-optimal 5.765e11 tokens as the target, 2e12 inference tokens at 2N FLOPs each, training 6ND. The
    planner finds 6.969e9 parameters on 1.248e12 tokens, 8.005e22 lifetime FLOPs against the 13B model's 9.697e22:
    17.4% saved."""
    e, a, b, alpha, beta = 1.69, 406.4, 410.7, 0.336, 0.283

    def law(n, d, r=None):
        return e + a * np.asarray(n, float) ** -alpha + b * np.asarray(d, float) ** -beta

    target = float(law(13e9, 5.765e11))
    assert target == pytest.approx(2.04528, abs=1e-5)
    d = Deployment(queries=2e12, prompt_tokens=0, output_tokens=1, loss_target=target)
    sol = solve_lifecycle(_sizes(d), AccuracyChain(loss_fn=law), d, Prices())
    i = sol.best
    assert sol.configs.n_params[i] == pytest.approx(6.969e9, rel=1e-3)
    assert sol.tokens[i] == pytest.approx(1.248e12, rel=1e-3)
    assert sol.cost[i] == pytest.approx(8.005e22, rel=1e-3)
    chinchilla = lifetime_optimal(law, target)
    assert chinchilla.n_params == pytest.approx(13e9, rel=1e-3)
    base = float(lifetime_cost(chinchilla.n_params, chinchilla.train_tokens, decode_tokens=2e12))
    assert base == pytest.approx(9.697e22, rel=1e-3)
    assert 1 - sol.cost[i] / base == pytest.approx(0.174, abs=5e-4)


def test_more_queries_choose_smaller_models_trained_longer():
    d = Deployment(queries=0.0, prompt_tokens=0, output_tokens=1, loss_target=2.1)
    c = _sizes(d, points=4001)
    rows = crossover_in_queries(c, AccuracyChain(loss_fn=hoffmann), d, Prices(), np.geomspace(1e6, 1e14, 17))
    n = np.array([r["n_params"] for r in rows])
    tpp = np.array([r["train_tokens"] / r["n_params"] for r in rows])
    assert np.all(np.diff(n) <= 0) and n[-1] < 0.5 * n[0]
    assert np.all(np.diff(tpp) >= 0)
    assert any(r["changes"] for r in rows)


def _curves():
    rows = []
    for b in (0.1, 0.3, 0.5, 0.7):
        rows.append((b, "greedy", 1, b))
        for n in (1, 2, 4, 8, 16, 32):
            x = np.log2(n)
            rows.append((b, "rebase", n, float(sigmoid(logit(b) + 0.55 * x - 0.01 * x * x))))
            rows.append((b, "majority_vote", n, float(sigmoid(logit(b) - 0.2 + 0.4 * x - 0.04 * x * x))))
    base, strat, n, acc = (list(col) for col in zip(*rows, strict=True))
    return TestTimeCurves().fit(base, strat, n, acc)


def _link():
    loss = np.linspace(2.0, 6.0, 30)
    return ExpErrorLaw().fit(loss, 0.76 - 2.0 * np.exp(-1.1 * loss))


def _shapes(d, strategies, prm=None, lo=1e8, hi=4e9):
    from dataclasses import replace

    from infscale.arch import TransformerShape

    grid = enumerate_shapes(get_family("llama").with_(n_layers_max=48, d_model_max=6144), lo, hi)
    prm = prm or TransformerShape(d_model=1024, n_layers=8, n_heads=8, vocab_size=32000)
    c = configs_from_shapes(grid, strategies, d, HARDWARE.get("a100-80gb"), tokens_range=(1, 1), prm=prm,
                            scored=SCORED)
    return replace(c, tokens_min=5.0 * c.n_params, tokens_max=2000.0 * c.n_params)


def _law(n, d, r):
    return hoffmann(n, d) + 0.9  # a loss scale the link covers


def test_search_pays_its_reward_model_and_lowers_the_model_size():
    d = Deployment(queries=1e6, prompt_tokens=128, output_tokens=256, batch=8, max_latency_s=60.0,
                   accuracy_target=0.30)  # greedy tops out at 0.32 here (4B, 2000 tokens per parameter)
    chain = AccuracyChain(loss_fn=_law, link=_link(), curves=_curves())
    prices = Prices(usd_per_hour=2.0, train_flops_per_s=0.4 * 312e12)
    c = _shapes(d, {"greedy": [1], "rebase": [4, 16]})
    sol = solve_lifecycle(c, chain, d, prices)
    greedy = c.strategy == "greedy"
    rebase = c.strategy == "rebase"
    assert np.all(sol.prm_cost[greedy] == 0) and np.all(sol.prm_cost[rebase] > 0)
    same = (c.model == c.model[0])
    assert c.memory_bytes[same & rebase].min() > c.memory_bytes[same & greedy][0]  # the reward model's weights + KV
    best_greedy = solve_lifecycle(_shapes(d, {"greedy": [1]}), chain, d, prices)
    assert sol.cost[sol.best] <= best_greedy.cost[best_greedy.best]
    assert c.strategy[sol.best] == "rebase"
    assert c.n_params[sol.best] < best_greedy.configs.n_params[best_greedy.best]
    assert "accuracy target" in sol.binding


def test_infeasible_deployments_name_the_binding_constraint_in_one_line():
    chain = AccuracyChain(loss_fn=_law, link=_link(), curves=_curves())
    prices = Prices(usd_per_hour=2.0, train_flops_per_s=0.4 * 312e12)
    cases = {
        "accuracy": (Deployment(queries=1e6, prompt_tokens=128, output_tokens=256, accuracy_target=0.99),
                     "binding constraint accuracy >= 0.99; closest feasible configuration"),
        "latency": (Deployment(queries=1e6, prompt_tokens=128, output_tokens=256, max_latency_s=1e-4,
                               accuracy_target=0.3), "binding constraint latency <= 0.0001 s; closest feasible"),
        "memory": (Deployment(queries=1e6, prompt_tokens=128, output_tokens=256, max_memory_bytes=1e8,
                              accuracy_target=0.3), "binding constraint memory <= 1e+08 B; closest feasible"),
    }
    for name, (d, expected) in cases.items():
        with pytest.raises(InfeasibleError) as err:
            solve_lifecycle(_shapes(d, {"greedy": [1], "rebase": [4]}), chain, d, prices)
        msg = str(err.value)
        assert expected in msg and "\n" not in msg, (name, msg)
        assert "needs" in msg or "reaches" in msg


def test_a_solution_on_a_search_bound_is_flagged():
    d = Deployment(queries=0.0, prompt_tokens=0, output_tokens=1, loss_target=2.0414)
    sol = solve_lifecycle(_sizes(d, lo=1e8, hi=3e9, points=501), AccuracyChain(loss_fn=hoffmann), d, Prices())
    assert "an end of the size range" in sol.at_bound
    d2 = Deployment(queries=1e6, prompt_tokens=128, output_tokens=256, accuracy_target=0.55)
    chain = AccuracyChain(loss_fn=_law, link=_link(), curves=_curves())
    sol2 = solve_lifecycle(_shapes(d2, {"rebase": [2, 4]}), chain, d2, Prices())
    assert any("largest n" in b for b in sol2.at_bound) or sol2.configs.n[sol2.best] < 4


def test_a_cost_ceiling_buys_the_most_accuracy_and_more_money_never_less():
    chain = AccuracyChain(loss_fn=_law, link=_link(), curves=_curves())
    prices = Prices(usd_per_hour=2.0, train_flops_per_s=0.4 * 312e12)
    accs = []
    for ceiling in (1e3, 1e4, 1e5):
        d = Deployment(queries=1e6, prompt_tokens=128, output_tokens=256, batch=8, cost_ceiling=ceiling)
        sol = solve_lifecycle(_shapes(d, {"greedy": [1], "majority_vote": [4, 16]}), chain, d, prices)
        assert sol.cost[sol.best] <= ceiling * (1 + 1e-9)
        accs.append(sol.accuracy[sol.best])
    assert accs == sorted(accs) and accs[-1] > accs[0]


def test_measured_models_with_sunk_training_pick_the_compute_optimal_point():
    from infscale.tts.analysis import compute_optimal
    from infscale.workflows.wu2025_tables import load_wu2025_points

    pts = load_wu2025_points("MATH500")
    c = configs_from_points([p.model for p in pts], [p.n_params for p in pts], [p.strategy for p in pts],
                            [p.n for p in pts], [p.accuracy for p in pts], [p.wu2025_flops for p in pts])
    for budget in (4e12, 2e13, 1.1e14, 3e14, 1e15):
        d = Deployment(queries=1e6, prompt_tokens=0, output_tokens=1, cost_ceiling=budget * 1e6)
        sol = solve_lifecycle(c, AccuracyChain(loss_fn=hoffmann), d, Prices())
        ref = compute_optimal(pts, [budget], accounting="wu2025")[0]
        assert (c.model[sol.best], c.strategy[sol.best], int(c.n[sol.best])) == (ref.model, ref.strategy, ref.n)
        assert sol.train_cost[sol.best] == 0.0
