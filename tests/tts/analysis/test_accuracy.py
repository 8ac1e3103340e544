"""Accuracy at n, pass@k, Pareto, compute-optimal choices and fits (infscale.tts.analysis)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.tts.analysis import (
    CandidatePools,
    ComputeOptimalSizeFit,
    ErrorComputeFit,
    OperatingPoint,
    accuracy_at_n,
    compute_optimal,
    compute_optimal_sizes,
    default_ns,
    exact_accuracy_bruteforce,
    frontier_points,
    operating_points_from_records,
    pass_at_k,
    pools_from_records,
)
from infscale.tts.core.records import Candidate, FlopsLedger, ProblemRecord


def small_pools(seed: int, p: int = 7, m: int = 8, tied_scores: bool = False, k: int = 4) -> CandidatePools:
    rng = np.random.default_rng(seed)
    ans = rng.integers(-1, k, (p, m))
    scores = rng.integers(1, 3, (p, m)) / 2.0 if tied_scores else rng.random((p, m))  # ties: 0.5 and 1.0
    scores[0, :3] = np.nan
    correct = rng.integers(-1, k, p)
    correct[1] = ans[1, 0] if ans[1, 0] >= 0 else 0
    return CandidatePools(answer_ids=ans, scores=scores, correct_ids=correct)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_enumeration_equals_python_enumeration(seed, tied):
    pools = small_pools(seed, tied_scores=tied)
    for n in range(1, pools.pool_size + 1):
        curves = accuracy_at_n(pools, [n], max_exact_subsets=10**6, n_bootstrap=10, random_state=seed)
        for agg in ("majority_vote", "weighted_vote", "best_of_n"):
            assert curves[agg].exact[0]
            assert curves[agg].accuracy[0] == pytest.approx(exact_accuracy_bruteforce(pools, n, agg), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_enumeration_with_frequent_and_rare_classes(seed):
    """12-candidate pools over 8 classes: some classes get a column, rare ones share the bounded column."""
    pools = small_pools(seed, p=5, m=12, k=8, tied_scores=bool(seed % 2))
    for n in (3, 5, 8, 12):
        curves = accuracy_at_n(pools, [n], aggregations=["majority_vote", "weighted_vote"], max_exact_subsets=10**6,
                               n_bootstrap=10, random_state=seed)
        for agg in ("majority_vote", "weighted_vote"):
            assert curves[agg].accuracy[0] == pytest.approx(exact_accuracy_bruteforce(pools, n, agg), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_subsampled_accuracy_equals_exact_enumeration(seed):
    """Acceptance: Monte Carlo subsampling is unbiased: its mean matches exact enumeration within 4 standard errors."""
    pools = small_pools(seed, p=6, m=9)
    b = 20_000
    for n in (2, 4, 6):
        exact = accuracy_at_n(pools, [n], max_exact_subsets=10**6, n_bootstrap=10, random_state=seed)
        mc = accuracy_at_n(pools, [n], max_exact_subsets=0, n_bootstrap=b, random_state=seed + 100)
        for agg in ("majority_vote", "weighted_vote"):
            assert not mc[agg].exact[0]
            se = 0.5 / math.sqrt(b * pools.n_problems)  # per-draw outcomes lie in [0, 1]
            assert abs(mc[agg].accuracy[0] - exact[agg].accuracy[0]) < 4 * se, (n, agg)


def test_pass_at_k_equals_enumeration_and_known_values():
    m = 10
    for c in range(m + 1):
        for k in range(1, m + 1):
            frac = np.mean([any(i < c for i in s) for s in itertools.combinations(range(m), k)])
            assert pass_at_k(np.array([c]), m, k)[0] == pytest.approx(frac, abs=1e-12)
    # Chen et al.: pass@1 is the fraction correct
    assert pass_at_k(np.array([3]), 20, 1)[0] == pytest.approx(0.15)


def test_majority_at_full_pool_and_best_of_n_closed_forms():
    # pool: correct class 0 (3 votes), class 1 (2 votes), one unfinished; scores make a wrong answer the best
    pools = CandidatePools(answer_ids=np.array([[0, 0, 0, 1, 1, -1]]),
                           scores=np.array([[0.2, 0.3, 0.1, 0.9, 0.8, np.nan]]), correct_ids=np.array([0]))
    cur = accuracy_at_n(pools, n_bootstrap=50, random_state=0, max_exact_subsets=10**6)
    mv = dict(zip(cur["majority_vote"].ns.tolist(), cur["majority_vote"].accuracy, strict=True))
    assert mv[6] == 1.0  # 3 votes vs 2
    assert mv[1] == pytest.approx(0.5)  # 3 correct of 6
    # WV at the full pool: 0.6 vs 1.7 -> wrong; BoN at n=6 picks the 0.9 candidate -> wrong
    assert cur["weighted_vote"].accuracy[-1] == 0.0
    assert cur["best_of_n"].accuracy[-1] == 0.0
    # BoN at n=2: correct iff both drawn are class-0 or one class-0 with the unfinished one: (3 + 3) / 15
    bon = dict(zip(cur["best_of_n"].ns.tolist(), cur["best_of_n"].accuracy, strict=True))
    assert bon[2] == pytest.approx(6 / 15)


def test_bootstrap_interval_brackets_estimate_and_narrows_with_problems():
    rng = np.random.default_rng(0)

    def pools(p):
        ans = rng.integers(0, 3, (p, 16))
        return CandidatePools(answer_ids=ans, scores=rng.random((p, 16)), correct_ids=np.zeros(p, dtype=int))

    small = accuracy_at_n(pools(40), [4], n_bootstrap=400, random_state=1)["majority_vote"]
    large = accuracy_at_n(pools(640), [4], n_bootstrap=400, random_state=1)["majority_vote"]
    for c in (small, large):
        assert c.ci_low[0] <= c.accuracy[0] <= c.ci_high[0]
    # width ~ 1/sqrt(P): 16x the problems -> about 4x narrower
    ratio = (small.ci_high - small.ci_low)[0] / (large.ci_high - large.ci_low)[0]
    assert 2.5 < ratio < 6.5


def test_default_ns_and_bad_n():
    assert default_ns(256).tolist() == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert default_ns(12).tolist() == [1, 2, 4, 8, 12]
    with pytest.raises(ValueError):
        accuracy_at_n(small_pools(0), [9])
    with pytest.raises(ValueError):
        accuracy_at_n(small_pools(0), [2], aggregations=["nope"])


def test_pareto_frontier_and_compute_optimal():
    f = [1, 2, 2, 3, 5, 8]
    a = [0.1, 0.3, 0.2, 0.25, 0.5, 0.45]
    pts = [OperatingPoint(model=f"m{i}", n_params=10 ** (i + 6), strategy="s", n=1, flops=float(fi), wu2025_flops=0.0,
                          accuracy=ai) for i, (fi, ai) in enumerate(zip(f, a, strict=True))]
    assert frontier_points(pts) == [pts[0], pts[1], pts[4]]
    best = compute_optimal(pts, [0.5, 1, 4, 100])
    assert best[0] is None
    assert [p.model for p in best[1:]] == ["m0", "m1", "m4"]
    c, n = compute_optimal_sizes(pts, [1, 4, 100])
    assert c.tolist() == [1, 4, 100] and n.tolist() == [1e6, 1e7, 1e10]


def test_compute_optimal_size_law_recovers_wu2025_coefficients():
    # Wu et al.'s own examples (hyperparams_and_misc.json): solved for N at C = 1e12 .. 1e15
    law = ComputeOptimalSizeFit.from_coefficients(1.19, 2.03)
    n = law.predict_n_params(np.array([1e12, 1e13, 1e14, 1e15]))
    np.testing.assert_allclose(n, [2.39e8, 1.65e9, 1.15e10, 7.93e10], rtol=5e-3)
    rng = np.random.default_rng(0)
    sizes = np.geomspace(4.1e8, 1.2e10, 12)
    flops = 10 ** (1.19 * np.log10(sizes) + 2.03 + 0.02 * rng.standard_normal(sizes.size))
    fit = ComputeOptimalSizeFit().fit(sizes, flops)
    assert fit is not None and fit.a_ == pytest.approx(1.19, abs=0.05) and fit.b_ == pytest.approx(2.03, abs=0.5)
    assert fit.r2_ > 0.99
    with pytest.raises(ValueError):
        ComputeOptimalSizeFit().fit([1e9, 1e9], [1e12, 1e13])


def test_error_vs_compute_fit_recovers_saturating_power_law():
    c = np.geomspace(1e12, 1e16, 15)
    err = 0.35 + 2.0 * (c / 1e14) ** -0.4
    fit = ErrorComputeFit(flops_ref=1e14).fit(c, np.clip(err, 0, 1) if err.max() <= 1 else err / err.max())
    e = err / err.max()
    fit = ErrorComputeFit(flops_ref=1e14).fit(c, e)
    assert fit.gamma_ == pytest.approx(0.4, rel=1e-3)
    assert fit.err_inf_ == pytest.approx(0.35 / err.max(), rel=1e-3)
    np.testing.assert_allclose(fit.predict(c), e, rtol=1e-6)


def _record(problem: str, strategy: str, budget: int, answers, correct_answer: str, scores=None, decode=100.0):
    cands = []
    for j, a in enumerate(answers):
        cands.append(Candidate(text=f"... {a}", answer=None if a is None else str(a), finished=a is not None,
                               score=None if scores is None else scores[j], completion_tokens=10,
                               correct=None if a is None else str(a) == correct_answer))
    return ProblemRecord(run="r", model="tiny", n_params=1_000_000, strategy=strategy, budget=budget,
                         problem_id=problem, gold=correct_answer, candidates=tuple(cands),
                         correct={"majority_vote": Counter_majority(answers) == correct_answer},
                         ledger=FlopsLedger(policy_prefill_flops=10.0, policy_decode_flops=decode, reward_flops=20.0,
                                            wu2025_flops=decode, generated_tokens=10 * len(answers)))


def Counter_majority(answers):
    from collections import Counter

    votes = Counter(str(a) for a in answers if a is not None)
    return votes.most_common(1)[0][0] if votes else None


def test_pools_from_records_and_operating_points():
    recs = [
        _record("p1", "sampling", 4, [7, 7, 3, None], "7", scores=[0.9, 0.8, 0.1, 0.5]),
        _record("p2", "sampling", 4, [2, 5, 5, 5], "2", scores=[0.9, 0.1, 0.2, 0.3]),
        _record("p1", "rebase", 2, [7, 7], "7"),
        _record("p2", "rebase", 2, [5, 2], "2"),
    ]
    pools = pools_from_records(recs[:2])
    assert pools.answer_ids.tolist() == [[0, 0, 1, -1], [0, 1, 1, 1]]
    assert pools.correct_ids.tolist() == [0, 0]
    assert np.isnan(pools.scores).sum() == 0
    points, curves = operating_points_from_records(recs, n_bootstrap=50)
    samp = {(p.strategy, p.n): p for p in points if p.strategy.startswith("sampling")}
    # n = 4: MV correct on p1, wrong on p2; FLOPs = prefill + decode * n / M: a majority vote reads no reward
    assert samp[("sampling+majority_vote", 4)].accuracy == pytest.approx(0.5)
    assert samp[("sampling+majority_vote", 2)].flops == pytest.approx(10 + 100 * 2 / 4)
    # best-of-n and weighted vote choose by the reward: they pay its FLOPs, n / M of them
    assert samp[("sampling+best_of_n", 2)].flops == pytest.approx(10 + 120 * 2 / 4)
    assert samp[("sampling+weighted_vote", 2)].flops == pytest.approx(10 + 120 * 2 / 4)
    assert samp[("sampling+majority_vote", 2)].wu2025_flops == pytest.approx(50.0)
    assert samp[("sampling+best_of_n", 4)].accuracy == pytest.approx(1.0)
    # the reward steered REBASE: even its majority vote paid for the reward
    # the reward steered REBASE: even its majority vote paid for the reward
    reb = [p for p in points if p.strategy == "rebase+majority_vote"]
    assert len(reb) == 1 and reb[0].flops == pytest.approx(130.0) and reb[0].n == 2
    assert reb[0].label == "REBASE + majority vote"
    assert reb[0].label == "REBASE + majority vote"
    assert ("tiny", "sampling") in curves
    with pytest.raises(InputError):
        pools_from_records([])


def test_the_bootstrap_memory_estimate_bounds_the_measured_peak():
    """`estimate_bootstrap_bytes` (the pre-flight of `tts analyze`) is above the peak numpy really allocates, and
    not absurdly so."""
    import tracemalloc

    from infscale.tts.analysis.accuracy import estimate_bootstrap_bytes

    rng = np.random.default_rng(0)
    p, m, b = 300, 16, 800
    pools = CandidatePools(answer_ids=rng.integers(0, 4, (p, m)), scores=rng.random((p, m)),
                           correct_ids=np.zeros(p, dtype=int))
    tracemalloc.start()
    accuracy_at_n(pools, [1, 4, 16], n_bootstrap=b, max_exact_subsets=1, random_state=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    estimate = estimate_bootstrap_bytes(p, m, b)
    assert peak <= estimate <= 20 * peak, (peak, estimate)


def test_strategies_are_shown_by_the_names_users_know():
    from infscale.tts.analysis import strategy_label

    assert [strategy_label(k) for k in ("greedy+greedy", "greedy+best_of_n", "sampling+majority_vote",
                                        "sampling+best_of_n", "weighted_vote+weighted_vote", "rebase+weighted_vote",
                                        "beam+best_of_n", "mcts+majority_vote", "REBASE")] == [
        "greedy", "greedy", "majority vote", "best-of-n", "weighted vote (sampled as weighted_vote)",
        "REBASE + weighted vote", "beam search + best-of-n", "MCTS + majority vote", "REBASE"]
    # a pool drawn by a strategy named after one aggregation, read by another, says so; a strategy's own label wins
    assert strategy_label("weighted_vote+majority_vote") == "majority vote (sampled as weighted_vote)"
    assert strategy_label("particle_filter+weighted_vote") == "particle filtering + weighted vote"
    assert strategy_label("my_search+best_of_n", "my search") == "my search + best-of-n"


def test_matched_accuracy_flops_is_wu2025_table_1s_comparison_on_measured_points():
    from infscale.tts.analysis import OperatingPoint
    from infscale.tts.analysis.frontier import matched_accuracy_flops

    def pt(strategy, n, flops, wu2025, acc, model="m"):
        return OperatingPoint(model=model, n_params=1, strategy=strategy, n=n, flops=flops, wu2025_flops=wu2025,
                              accuracy=acc)

    pts = [pt("sampling+majority_vote", 16, 160.0, 16.0, 0.50), pt("sampling+best_of_n", 8, 80.0, 8.0, 0.80),
           pt("sampling+best_of_n", 16, 160.0, 16.0, 0.80), pt("rebase+weighted_vote", 4, 60.0, 3.0, 0.70),
           pt("rebase+weighted_vote", 8, 120.0, 6.0, 0.85), pt("rebase+weighted_vote", 16, 240.0, 12.0, 0.90),
           pt("greedy+greedy", 1, 10.0, 1.0, 0.95),  # not sampling: never the bar
           pt("sampling+majority_vote", 4, 10.0, 1.0, 0.9, model="other")]  # no REBASE on that model: skipped
    ours, wu2025 = (matched_accuracy_flops(pts, accounting=a) for a in ("ours", "wu2025"))
    (m,) = ours
    assert (m.target_accuracy, m.baseline.n, m.reached.n) == (0.80, 8, 8)  # the cheapest of the tied best
    assert m.flops_ratio == pytest.approx(80.0 / 120.0)
    assert wu2025[0].flops_ratio == pytest.approx(8.0 / 6.0)
    never = [p for p in pts if not (p.strategy.startswith("rebase") and p.n > 4)]
    assert matched_accuracy_flops(never)[0].reached is None and matched_accuracy_flops(never)[0].flops_ratio is None
