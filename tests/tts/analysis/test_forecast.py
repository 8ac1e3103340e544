"""Forecasting test-time scaling from a pilot (`infscale.tts.analysis.forecast`): on pools drawn from known answer
distributions, a pilot of a few samples per problem forecasts pass@n, majority vote, weighted vote and best-of-n at n
far beyond it, close to the exact subsampled accuracy of the full pool; the prior is recovered; a heavy tail of
problems the pilot never solved, and a verifier whose false positives outrank its true positives, are said."""

from __future__ import annotations

import numpy as np
import pytest

from infscale.tts.analysis.accuracy import CandidatePools, accuracy_at_n
from infscale.tts.analysis.forecast import fit_beta_prior, forecast, forecast_grid, pilot_pools, smallest_n
from infscale.tts.analysis.saturation import sample_pools

NS = [1, 2, 4, 8, 16, 32, 64, 128]


def _pools(p=300, k=4, m=128, a=0.6, b=0.9, seed=0, correct_mean=0.7, wrong_mean=0.45):
    rng = np.random.default_rng(seed)
    q = rng.beta(a, b, p)
    wrong = rng.dirichlet(np.ones(k - 1) * 0.7, p) * (1 - q)[:, None] * 0.85  # 15% of the rest: no answer
    probs = np.concatenate([q[:, None], wrong], axis=1)
    means = np.tile(np.array([correct_mean] + [wrong_mean] * (k - 1)), (p, 1))
    return sample_pools(probs, np.zeros(p, dtype=int), m, random_state=seed + 1, score_means=means, score_noise=0.15)


@pytest.fixture(scope="module")
def pools():
    return _pools()


@pytest.fixture(scope="module")
def truth(pools):
    return accuracy_at_n(pools, NS, n_bootstrap=200, random_state=0)


def test_the_beta_prior_of_success_probabilities_is_recovered():
    rng = np.random.default_rng(3)
    q = rng.beta(0.6, 0.9, 4000)
    prior = fit_beta_prior(rng.binomial(16, q), 16)
    assert prior.a == pytest.approx(0.6, rel=0.15) and prior.b == pytest.approx(0.9, rel=0.15)


def test_a_pilot_of_16_forecasts_every_aggregation_to_n_128(pools, truth):
    f = forecast(pilot_pools(pools, 16), 128, ns=np.array(NS))
    for agg in ("pass", "majority_vote", "weighted_vote", "best_of_n"):
        err = 100 * (f.curves[agg].accuracy - truth[agg].accuracy)
        covered = (truth[agg].accuracy >= f.curves[agg].low) & (truth[agg].accuracy <= f.curves[agg].high)
        assert np.mean(np.abs(err)) < 3.0 and np.max(np.abs(err)) < 4.5, (agg, err)
        assert covered.mean() >= 0.75, agg
    assert f.pilot_size == 16 and f.n_problems == 300


def test_a_pilot_is_a_per_problem_subsample_without_replacement(pools):
    pilot = pilot_pools(pools, 8, random_state=5)
    assert pilot.pool_size == 8 and pilot.n_problems == pools.n_problems
    again = pilot_pools(pools, 8, random_state=5)
    assert np.array_equal(pilot.answer_ids, again.answer_ids)
    with pytest.raises(ValueError, match="pilot of 200 samples: the pools hold 128"):
        pilot_pools(pools, 200)


def test_the_smallest_n_for_a_target_has_an_interval(pools, truth):
    f = forecast(pilot_pools(pools, 16), 128)
    n, lo, hi = smallest_n(f.curves["pass"], 0.80)
    measured = next(k for k, acc in zip(NS, truth["pass"].accuracy, strict=True) if acc >= 0.80)
    assert n is not None and lo <= n <= hi
    assert lo <= measured * 2 and measured <= hi * 2  # the measured n lies within a factor 2 of the interval (NS step)
    assert smallest_n(f.curves["majority_vote"], 0.99) == (None, None, None)


def test_a_heavy_tail_of_unsolved_problems_is_said_not_hidden():
    """Half the problems are nearly unsolvable (q = 0.002): a pilot of 8 sees none of their successes, and the forecast
    of pass@1024 for them is the fitted prior's, which the forecast says instead of printing a confident number."""
    rng = np.random.default_rng(7)
    p = 400
    q = np.where(rng.random(p) < 0.5, 0.002, rng.beta(2.0, 2.0, p))
    probs = np.stack([q, (1 - q)], axis=1)
    pools = sample_pools(probs, np.zeros(p, dtype=int), 16, random_state=8)
    f = forecast(pools, 1024)
    assert f.unseen_share > 0.4
    assert any("had no correct sample in the pilot" in w and "cannot see" in w for w in f.warnings)
    true_pass = float(np.mean(1 - (1 - q) ** 1024))
    c = f.curves["pass"]
    assert c.high[-1] - c.low[-1] > 0.05 or abs(c.accuracy[-1] - true_pass) < 0.05


def test_a_verifier_whose_false_positives_score_highest_caps_best_of_n():
    rng = np.random.default_rng(9)
    p, m = 300, 32
    answers = (rng.random((p, m)) > 0.5).astype(int)  # class 0 correct half the time, class 1 wrong
    scores = np.where(answers == 0, rng.uniform(0.4, 0.7, (p, m)), rng.uniform(0.0, 0.6, (p, m)))
    liar = rng.random((p, m)) < 0.05  # 5% of wrong samples score above every correct one
    scores = np.where((answers == 1) & liar, 0.95, scores)
    pools = CandidatePools(answer_ids=answers, scores=scores, correct_ids=np.zeros(p, dtype=int))
    f = forecast(pools, 512)
    bon = f.curves["best_of_n"].accuracy
    assert bon.max() > bon[-1] + 0.2 and f.limits["best_of_n"] < 0.05
    assert any("false positives cap best-of-n" in w for w in f.warnings)


def test_the_grid_is_dense_then_logarithmic():
    g = forecast_grid(1024)
    assert g[0] == 1 and g[-1] == 1024 and set(range(1, 17)) <= set(g.tolist()) and len(g) < 80
    assert np.all(np.diff(g) > 0)
