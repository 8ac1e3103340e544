"""Saturation of voting (Wu et al., Theorems 1-2): limiting accuracy of MV/WV and how fast the curves approach it.

Theorem 1 (majority voting): with ``n`` i.i.d. samples from the model's answer distribution ``pi(. | x)``, MV accuracy
tends almost surely to ``(1/m) sum_i 1[y_i = argmax_y pi(y | x_i)]`` as ``n -> inf``; the expected accuracy approaches
it at rate ``O(c^-n)``: by Hoeffding, ``P(MV picks a class other than the argmax) <= |A| exp(-n delta^2 / 2)`` with
``delta`` the gap between the top two class probabilities and ``|A|`` the number of answer classes.
Theorem 2 (weighted voting): the same with ``pi * rho`` (probability times mean reward of the class) in the argmax.
(For WV the per-draw votes lie in [0, max score], so the same bound holds with ``delta`` measured on ``pi * rho`` divided
by the largest score; with scores in [0, 1] it is the plain gap.)

Here ``pi`` is estimated per problem from a candidate pool (plug-in frequencies); ties at the top count ``1 / ties``.
``mv_accuracy_iid`` gives the exact expected MV accuracy for n i.i.d. draws from known class probabilities (a generating
function over the other classes' counts), the curve Theorem 1 describes. Pure numpy/scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infscale.tts.analysis.accuracy import CandidatePools

__all__ = [
    "class_mass",
    "limit_accuracy",
    "top_two_gap",
    "hoeffding_bound",
    "mv_accuracy_iid",
    "sample_pools",
    "convergence_rate",
    "SaturationSummary",
    "saturation_summary",
]


def class_mass(pools: CandidatePools, *, weighted: bool = False) -> np.ndarray:
    """(P, K) per-problem answer-class mass from the pool: ``pi`` (frequencies) or ``pi * rho`` (score sums / M).

    Column ``k`` is class id ``k``; unanswered candidates carry mass in no column (they never win a vote).
    """
    a = pools.answer_ids
    p_count, m = a.shape
    k = int(a.max()) + 1 if (a >= 0).any() else 1
    k = max(k, int(pools.correct_ids.max()) + 1, 1)
    rows, pos = np.nonzero(a >= 0)
    w = np.ones(rows.size)
    if weighted:
        w = np.nan_to_num(pools.scores[rows, pos], nan=0.0)
    mass = np.bincount(rows * k + a[rows, pos], weights=w, minlength=p_count * k).reshape(p_count, k)
    return mass / m


def limit_accuracy(mass: np.ndarray, correct_ids: np.ndarray) -> np.ndarray:
    """Per-problem limiting accuracy (Theorems 1-2): 1 when the correct class has the largest mass (``1/t`` if tied
    with ``t - 1`` others), 0 otherwise (also when no class has mass or the correct answer was never produced)."""
    mass = np.asarray(mass, dtype=np.float64)
    has = correct_ids >= 0
    star = np.where(has, mass[np.arange(mass.shape[0]), np.where(has, correct_ids, 0)], 0.0)
    top = mass.max(axis=1)
    n_top = (mass == top[:, None]).sum(axis=1)
    return np.where(has & (star > 0) & (star == top), 1.0 / n_top, 0.0)


def top_two_gap(mass: np.ndarray) -> np.ndarray:
    """Per-problem gap ``delta`` between the largest and second-largest class mass."""
    s = np.sort(np.asarray(mass, dtype=np.float64), axis=1)
    second = s[:, -2] if s.shape[1] > 1 else np.zeros(s.shape[0])
    return s[:, -1] - second


def hoeffding_bound(mass: np.ndarray, n: int | np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """Per-problem bound on ``|E acc(n) - limit|``: ``min(1, |A| exp(-n (delta/scale)^2 / 2))`` (Theorem 1's rate).

    ``|A|`` counts the classes with positive mass; ``scale`` is the largest vote weight (1 for MV). Shape (len(n), P).
    """
    mass = np.asarray(mass, dtype=np.float64)
    delta = top_two_gap(mass) / scale
    support = (mass > 0).sum(axis=1)
    n_arr = np.atleast_1d(np.asarray(n, dtype=np.float64))[:, None]
    bound = support[None, :] * np.exp(-n_arr * delta[None, :] ** 2 / 2.0)
    return np.minimum(bound, 1.0)


def _mv_iid_one(p: np.ndarray, correct: int, n: int) -> float:
    """Exact P(MV over n i.i.d. draws picks class ``correct``), ties broken uniformly; mass ``1 - sum(p)`` is a sink
    (unanswered draws) that never wins. Multinomial generating function with the other classes' ties tracked."""
    from scipy.linalg import toeplitz  # lazy: scipy

    p_star = float(p[correct])
    others = [float(q) for i, q in enumerate(p) if i != correct and q > 0]
    sink = max(0.0, 1.0 - float(p.sum()))
    if p_star <= 0:
        return 0.0
    j_count = len(others)
    log_nfact = math.lgamma(n + 1)
    total = 0.0
    for k in range(1, n + 1):
        d = n - k  # draws left for the other classes and the sink
        degs = np.arange(d + 1)
        poly = np.zeros((j_count + 1, d + 1))  # poly[t, x]: t other classes tied at k, x draws used
        poly[0, 0] = 1.0
        for q in others:
            series = np.exp(degs * math.log(q) - np.array([math.lgamma(j + 1) for j in degs]))
            series[degs >= k] = 0.0  # strictly fewer than k votes
            mat = toeplitz(series, np.zeros(d + 1))  # (d+1, d+1) lower triangular: convolution by the series
            new = poly @ mat.T
            if k <= d:
                tie = math.exp(k * math.log(q) - math.lgamma(k + 1))
                new[1:, k:] += tie * poly[:-1, : d + 1 - k]
            poly = new
        if sink > 0:
            series = np.exp(degs * math.log(sink) - np.array([math.lgamma(j + 1) for j in degs]))
            poly = poly @ toeplitz(series, np.zeros(d + 1)).T
        coef = float((poly[:, d] / np.arange(1, j_count + 2)).sum())
        if coef > 0:
            total += math.exp(log_nfact + k * math.log(p_star) - math.lgamma(k + 1)) * coef
    return min(total, 1.0)


def mv_accuracy_iid(probs: np.ndarray, correct_ids: np.ndarray, n: int) -> np.ndarray:
    """Exact per-problem expected MV accuracy with ``n`` i.i.d. draws from class probabilities ``probs`` (P, K).

    Exact up to n = 170 (factorials in float64); intended for theory curves and tests.
    """
    if not 1 <= n <= 170:
        raise ValueError("mv_accuracy_iid supports 1 <= n <= 170")
    probs = np.asarray(probs, dtype=np.float64)
    return np.array([_mv_iid_one(probs[i], int(c), n) if c >= 0 else 0.0 for i, c in enumerate(correct_ids)])


def sample_pools(probs: np.ndarray, correct_ids: np.ndarray, pool_size: int,
                 random_state: int | np.random.Generator | None = None,
                 score_means: np.ndarray | None = None, score_noise: float = 0.1) -> CandidatePools:
    """Draw i.i.d. pools from known class probabilities (P, K) (leftover mass = unanswered, id -1).

    With ``score_means`` (P, K), each candidate's score is its class mean plus Gaussian noise, clipped to [0, 1].
    """
    rng = np.random.default_rng(random_state)
    probs = np.asarray(probs, dtype=np.float64)
    p_count, k = probs.shape
    full = np.concatenate([probs, np.clip(1.0 - probs.sum(axis=1, keepdims=True), 0.0, None)], axis=1)
    cum = np.cumsum(full, axis=1)
    cum[:, -1] = 1.0
    u = rng.random((p_count, pool_size))
    ids = np.array([np.searchsorted(cum[i], u[i], side="right") for i in range(p_count)])
    ids = np.where(ids >= k, -1, ids)
    if score_means is None:
        scores = np.full((p_count, pool_size), np.nan)
    else:
        base = np.take_along_axis(np.asarray(score_means, dtype=np.float64), np.clip(ids, 0, k - 1), axis=1)
        scores = np.clip(base + score_noise * rng.standard_normal(base.shape), 0.0, 1.0)
        scores = np.where(ids >= 0, scores, np.nan)
    return CandidatePools(answer_ids=ids, scores=scores, correct_ids=np.asarray(correct_ids, dtype=np.int64))


def convergence_rate(ns: np.ndarray, accuracy: np.ndarray, limit: float, *, floor: float = 1e-4) -> float:
    """Fitted ``c`` in ``|limit - acc(n)| ~ A c^-n`` (log-linear least squares over points with a gap above ``floor``);
    ``nan`` when fewer than two such points."""
    gap = np.abs(limit - np.asarray(accuracy, dtype=np.float64))
    ns = np.asarray(ns, dtype=np.float64)
    keep = gap > floor
    if keep.sum() < 2:
        return float("nan")
    slope, _ = np.polyfit(ns[keep], np.log(gap[keep]), 1)
    return float(np.exp(-slope))


@dataclass(frozen=True, slots=True, kw_only=True)
class SaturationSummary:
    """Predicted limits and rates for one pool (fractions)."""

    mv_limit: float
    """Theorem 1 limit of majority voting (plug-in estimate from the pool)."""
    wv_limit: float
    """Theorem 2 limit of weighted voting (``pi * rho``)."""
    oracle: float
    """Fraction of problems whose pool holds a correct answer (the pass@M ceiling)."""
    ns: np.ndarray
    mv_bound: np.ndarray
    """Mean Hoeffding bound on ``|E acc_MV(n) - mv_limit|`` at each n."""
    wv_bound: np.ndarray
    median_gap: float
    """Median top-two gap ``delta`` of pi over problems."""
    rate_c: float
    """Median per-problem ``c = exp(delta^2 / 2)`` of the Hoeffding rate ``O(c^-n)``."""


def saturation_summary(pools: CandidatePools, ns: np.ndarray) -> SaturationSummary:
    mass = class_mass(pools)
    wmass = class_mass(pools, weighted=True)
    scale = float(np.nanmax(pools.scores)) if pools.has_scores else 1.0
    wscale = max(scale, 1e-12)
    delta = top_two_gap(mass)
    return SaturationSummary(
        mv_limit=float(limit_accuracy(mass, pools.correct_ids).mean()),
        wv_limit=float(limit_accuracy(wmass if pools.has_scores else mass, pools.correct_ids).mean()),
        oracle=float(pools.correct_mask.any(axis=1).mean()),
        ns=np.asarray(ns),
        mv_bound=hoeffding_bound(mass, ns).mean(axis=1),
        wv_bound=hoeffding_bound(wmass, ns, scale=wscale).mean(axis=1) if pools.has_scores
        else hoeffding_bound(mass, ns).mean(axis=1),
        median_gap=float(np.median(delta)),
        rate_c=float(np.median(np.exp(delta ** 2 / 2.0))),
    )
