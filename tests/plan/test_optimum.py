"""Constrained optimum and Pareto frontier against closed-form loss and latency functions with known answers."""

import numpy as np
import pytest

from infscale.errors import InfeasibleError
from infscale.plan.optimum import PlanConstraints, dominated_by, pareto_frontier, plan_shapes
from infscale.plan.shapes import ShapeRules, enumerate_shapes

# Bian et al.'s published 27-point fit (docs/references.md §1), written out as a closed form
A, B, E, ALPHA, EPS = 54754.43, 778345.5, 2.44751, 0.614574, 0.00114621


def bian2025_law(n, d, r):
    return (E + A / n**ALPHA + B / d**ALPHA) * (1 + EPS * r**ALPHA)


def chinchilla(n, d, r):
    return 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28


def layer_latency(grid):
    """Decode latency: weights streamed per token plus a per-layer overhead (docs/references.md §3), 256 new tokens."""
    return 256 * (6.4e-13 * grid.n_params + 0.55e-3 * grid.n_layers)


RULES = ShapeRules(n_heads=(16,), head_dims=None, d_model_min=256, d_model_max=8192, n_layers_min=2,
                   n_layers_max=48)


def test_pareto_front_matches_pairwise_definition():
    rng = np.random.default_rng(1)
    loss, lat = rng.random(400), rng.random(400)
    lat[::7] = lat[3]  # ties in latency
    front = set(pareto_frontier(lat, loss).tolist())
    for i in range(400):
        dominated = dominated_by(loss[i], lat[i], loss, lat).any()
        assert (i in front) == (not dominated)
    assert np.all(np.diff(lat[pareto_frontier(lat, loss)]) >= 0)


def test_optimum_is_the_exhaustive_argmin():
    grid = enumerate_shapes(RULES, 5e8, 2e9)
    res = plan_shapes(grid, bian2025_law, PlanConstraints(max_latency_s=2.0, n_tokens=29e9), layer_latency)
    lat = layer_latency(grid)
    loss = bian2025_law(grid.n_params.astype(float), 29e9, grid.aspect_ratio)
    ok = lat <= 2.0
    assert res.best == int(np.flatnonzero(ok)[np.argmin(loss[ok])])
    assert res.latency_s[res.best] <= 2.0
    # the best is on the frontier and every frontier point is undominated
    assert res.best in res.frontier
    for i in res.frontier:
        assert res.dominators(int(i)).size == 0
    # under this latency model the optimum is a 12-layer shape and the 24-layer 2048-wide shape is dominated
    assert grid.n_layers[res.best] == 12
    base = grid.find(grid.shape(0).with_(d_model=2048, n_layers=24, head_dim=128, d_ff=5632))
    assert base is not None and res.dominators(base).size > 0


def test_budgets_give_tokens_in_closed_form():
    grid = enumerate_shapes(RULES, 1e8, 1e9)
    c = PlanConstraints(max_train_flops=1e20, max_tokens=1e11)
    res = plan_shapes(grid, chinchilla, c)
    n = grid.n_params.astype(float)
    assert np.allclose(res.n_tokens, np.minimum(1e11, 1e20 / (6 * n)))
    assert np.all(res.train_flops <= 1e20 * (1 + 1e-12))
    # without a shape term and with C = 6ND binding, the best N is the Chinchilla compute-optimal size (closed form)
    a, b = 0.34, 0.28
    g = (a * 406.4 / (b * 410.7)) ** (1 / (a + b))
    n_opt = g * (1e20 / 6) ** (b / (a + b))
    res = plan_shapes(grid, chinchilla, PlanConstraints(max_train_flops=1e20))
    assert abs(np.log(grid.n_params[res.best] / n_opt)) < 0.05


def test_parameter_cap_binds():
    grid = enumerate_shapes(RULES, 1e8, 1e9)
    res = plan_shapes(grid, chinchilla, PlanConstraints(n_tokens=1e10, max_params=3e8))
    assert grid.n_params[res.best] <= 3e8
    assert grid.n_params[res.best] == grid.n_params[grid.n_params <= 3e8].max()


def test_measured_latency_overrides_prediction():
    grid = enumerate_shapes(RULES, 5e8, 2e9)
    res0 = plan_shapes(grid, bian2025_law, PlanConstraints(max_latency_s=2.0, n_tokens=29e9), layer_latency)
    best = res0.best
    key = (int(grid.d_model[best]), int(grid.n_layers[best]), 16, 16)
    res1 = plan_shapes(grid, bian2025_law, PlanConstraints(max_latency_s=2.0, n_tokens=29e9), layer_latency,
                       measured={key: 2.5})
    assert res1.latency_measured[best] and res1.latency_s[best] == 2.5
    assert res1.best != best and not res1.feasible[best]


def test_infeasible_latency_names_constraint_and_closest_point():
    grid = enumerate_shapes(RULES, 5e8, 2e9)
    fastest = grid.label(int(np.argmin(layer_latency(grid))))
    with pytest.raises(InfeasibleError) as err:
        plan_shapes(grid, bian2025_law, PlanConstraints(max_latency_s=0.1, n_tokens=29e9), layer_latency)
    msg = str(err.value)
    assert "binding constraint latency <= 0.1s (--max-latency)" in msg
    assert fastest in msg and "\n" not in msg
    need = float(msg.rsplit("--max-latency ", 1)[1])
    assert need == pytest.approx(layer_latency(grid).min(), rel=1e-2)


def test_infeasible_flops_with_fixed_tokens():
    grid = enumerate_shapes(RULES, 5e8, 2e9)
    with pytest.raises(InfeasibleError, match=r"training FLOPs <= 1e\+18 \(--max-train-flops\)") as err:
        plan_shapes(grid, bian2025_law, PlanConstraints(n_tokens=29e9, max_train_flops=1e18), layer_latency)
    smallest = float(6 * grid.n_params.min() * 29e9)
    assert float(str(err.value).rsplit("--max-train-flops ", 1)[1]) == pytest.approx(smallest, rel=1e-3)


def test_constraints_validate():
    with pytest.raises(ValueError, match="n_tokens, max_tokens or max_train_flops"):
        PlanConstraints(max_latency_s=1.0)
    with pytest.raises(ValueError, match="max_latency_s"):
        PlanConstraints(max_latency_s=-1.0, n_tokens=1e9)


def test_memory_is_a_constraint_and_can_bind():
    """Serving memory (weights + KV at the workload) must fit the device: every feasible shape fits, and a size class
    that cannot fit is infeasible with memory named as the binding constraint."""
    from infscale.latency.model import Workload
    from infscale.plan.adapters import memory_from_workload

    rules = ShapeRules(head_dims=(128,), d_model_min=1024, d_model_max=16384, n_layers_min=2, n_layers_max=128)
    wl = Workload(batch=4, input_len=512, output_len=512, dtype="bf16")
    mem = memory_from_workload(wl)
    grid = enumerate_shapes(rules, 5e9, 4e10)
    need = mem(grid)
    # closed form for one shape: N * 2 bytes + 2 * L * d_kv * 1024 tokens * 4 sequences * 2 bytes
    i = 0
    assert need[i] == pytest.approx(grid.n_params[i] * 2 + 2 * grid.n_layers[i] * grid.d_kv[i] * 1024 * 4 * 2)
    cons = PlanConstraints(n_tokens=1e12, max_memory_bytes=40e9)
    res = plan_shapes(grid, lambda n, d, r: 2.0 + 400 / n ** 0.3 + 400 / d ** 0.3, cons, memory_fn=mem)
    assert res.feasible.any() and (res.memory_bytes[res.feasible] <= 40e9).all()
    assert (res.memory_bytes[~res.feasible] > 40e9).all()
    assert res.row(res.best)["memory_bytes"] <= 40e9
    with pytest.raises(InfeasibleError, match=r"binding constraint memory <= 4e\+10 B \(device memory\)"):
        plan_shapes(enumerate_shapes(rules, 5e10, 8e10), lambda n, d, r: 2.0 + 1 / n, cons, memory_fn=mem)
    with pytest.raises(ValueError, match="a memory limit needs a memory model"):
        plan_shapes(grid, lambda n, d, r: 2.0 + 1 / n, cons)


def test_allocate_compute_flags_a_numeric_optimum_on_its_bound():
    from infscale.laws.fitted import FittedLaw

    ok = FittedLaw.from_dict("inference_aware", {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574,
                                                 "eps": 0.00114621})
    assert ok.allocate_compute(1e21, aspect_ratio=128).at_bound is None
    # a law that never stops improving with N (B = 0: data costs nothing) ends on the largest N searched
    greedy = FittedLaw.from_dict("inference_aware", {"A": 54754.3, "B": 0.0, "E": 2.44751, "alpha": 0.614574,
                                                     "eps": 0.00114621})
    assert greedy.allocate_compute(1e21, aspect_ratio=128).at_bound == "max N"


def test_fastest_within_takes_the_fastest_shape_near_the_best_loss():
    from infscale.plan.optimum import fastest_within

    grid = enumerate_shapes(RULES, 0.9e9, 1.1e9)
    res = plan_shapes(grid, bian2025_law, PlanConstraints(n_tokens=20e9), layer_latency)
    best = res.loss[res.feasible].min()
    for tol in (0.0, 0.005, 0.02):
        i = fastest_within(res, tol)
        near = res.feasible & (res.loss <= best * (1 + tol))
        assert res.loss[i] <= best * (1 + tol) and res.latency_s[i] == res.latency_s[near].min()
    assert res.latency_s[fastest_within(res, 0.02)] <= res.latency_s[fastest_within(res, 0.0)]
    with pytest.raises(ValueError, match="max_loss_increase"):
        fastest_within(res, -1.0)
