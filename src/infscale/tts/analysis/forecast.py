"""Forecast test-time scaling from a pilot: accuracy at n up to far beyond the pilot's samples, with intervals.

From a pilot of ``m`` samples per problem (answer classes, reward scores, exact-checker labels) the forecast builds,
per problem, a posterior over the answer distribution and reads each aggregation's accuracy at n off it:

- **Success probability** ``q_i`` of a sample: ``Beta(a + c_i, b + m - c_i)`` with ``c_i`` correct pilot samples and
  the prior ``Beta(a, b)`` fitted across problems by maximum marginal (beta-binomial) likelihood, as Schaeffer et al.
  (ICML 2025) forecast pass@k from the distribution of per-problem success probabilities. ``pass@n = 1 - (1 - q)^n``.
- **Wrong answers**: the rest of the mass ``1 - q`` is split over the pilot's wrong classes and a sink (no answer, or an
  answer the pilot never saw; each such answer is taken as distinct, so it never wins a vote) by a Dirichlet posterior
  ``Dir(counts + alpha)``.
- **Majority vote** at n: the class counts of n i.i.d. draws from a posterior sample (multinomial); the correct class
  must have strictly the most votes, ties broken uniformly (the convention of `accuracy_at_n`).
- **Weighted vote** and **best-of-n** share one model of the answer classes (`_class_scores`): each class's
  per-sample scores are its pilot samples shrunk towards the pooled samples of its label (correct or wrong) by an
  empirical-Bayes pseudo-count (`_shrink`); a correct answer the pilot never drew takes another problem's correct
  class. Weighted vote sums the scores of each class's draws (one by one up to `_EXACT_VOTES`, a normal sum
  beyond); best-of-n takes each drawn class's largest score (the maximum of k draws by inverse CDF) and the best
  class wins. The sink's answers are wrong and can be picked by best-of-n with the pooled wrong scores, so a
  verifier's false positives cap best-of-n as n grows (the Stroebl et al. 2024 / ROC-n-reroll 2025 view: the
  verifier's score distributions on correct and wrong samples set it).

Intervals: each problem gets ``n_draws`` posterior samples and a curve per sample; a bootstrap replicate resamples the
problems and takes one posterior sample of each, so the interval covers both the problem sample and each problem's
posterior. Pure: numpy and scipy, randomness only through ``random_state`` (one stream per problem and draw).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln

from infscale.tts.analysis.accuracy import _MIN_VOTE_WEIGHT, CandidatePools

__all__ = ["FORECAST_AGGREGATIONS", "BetaPrior", "ForecastCurve", "Forecast", "fit_beta_prior", "forecast_grid",
           "forecast", "pilot_pools", "smallest_n"]

FORECAST_AGGREGATIONS = ("pass", "majority_vote", "weighted_vote", "best_of_n")
_FAR_N = 2 ** 20
"""The n at which best-of-n's limit is read (every answer with a chance has been drawn)."""


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """The fitted distribution of per-problem success probabilities, ``Beta(a, b)``."""

    a: float
    b: float
    log_likelihood: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)


def fit_beta_prior(n_correct: np.ndarray, m: int) -> BetaPrior:
    """Maximum marginal likelihood ``Beta(a, b)`` for ``n_correct`` successes out of ``m`` per problem."""
    c = np.asarray(n_correct, dtype=np.float64)
    if c.size == 0:
        raise ValueError("fit_beta_prior: no problems")

    def nll(theta: np.ndarray) -> float:
        a, b = np.exp(theta)
        return -float(np.sum(betaln(a + c, b + m - c) - betaln(a, b)))

    mean = float(np.clip((c.sum() + 0.5) / (c.size * m + 1.0), 1e-3, 1 - 1e-3))
    starts = [np.log([mean * k, (1 - mean) * k]) for k in (0.3, 1.0, 4.0)]
    best = min((minimize(nll, x0, method="L-BFGS-B", bounds=[(-9.0, 9.0)] * 2) for x0 in starts),
               key=lambda r: r.fun)
    a, b = np.exp(best.x)
    return BetaPrior(float(a), float(b), float(-best.fun))


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastCurve:
    """A forecast accuracy curve (fractions) with its interval at ``level``."""

    aggregation: str
    ns: np.ndarray
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray = field(repr=False)
    """(B, len(ns)) bootstrap replicate curves (for intervals of derived quantities such as the n for a target)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    pilot_size: int
    n_problems: int
    prior: BetaPrior
    curves: dict[str, ForecastCurve]
    limits: dict[str, float]
    """Accuracy as n grows without bound: ``pass`` (the share of problems with q > 0 under the posterior mean),
    ``majority_vote`` (problems whose posterior mean puts the correct class first), ``best_of_n`` (the verifier's
    cap: the class model's best-of-n at n = `_FAR_N`, where every answer with a chance has been drawn)."""
    unseen_share: float
    """Fraction of problems with no correct sample in the pilot: their forecast is the fitted prior's, not theirs."""
    unseen_contribution: float
    """How much of the forecast pass@n at the largest n those problems supply (points of accuracy, as a fraction)."""
    warnings: list[str] = field(default_factory=list)
    level: float = 0.9


def pilot_pools(pools: CandidatePools, m: int, random_state: int = 0) -> CandidatePools:
    """The first ``m`` candidates of every problem's pool after a random order keyed per problem (a pilot drawn
    without replacement, as a team would sample ``m`` before paying for more)."""
    if not 1 <= m <= pools.pool_size:
        raise ValueError(f"pilot of {m} samples: the pools hold {pools.pool_size} per problem")
    idx = np.stack([np.random.default_rng([random_state, i]).permutation(pools.pool_size)[:m]
                    for i in range(pools.n_problems)])
    take = np.take_along_axis
    return CandidatePools(answer_ids=take(pools.answer_ids, idx, axis=1), scores=take(pools.scores, idx, axis=1),
                          correct_ids=pools.correct_ids, problem_ids=pools.problem_ids)


def forecast_grid(n_max: int) -> np.ndarray:
    """Every n up to 16, then about 24 log-spaced points per decade up to ``n_max`` (and ``n_max`` itself)."""
    dense = np.arange(1, min(n_max, 16) + 1)
    if n_max <= 16:
        return dense
    tail = np.unique(np.round(np.geomspace(16, n_max, int(np.ceil(24 * np.log10(n_max / 16))) + 2)).astype(int))
    return np.unique(np.concatenate([dense, tail, [n_max]]))


@dataclass(frozen=True, slots=True)
class _PilotClasses:
    """The pilot's answer classes per problem: the correct one first, then the wrong ones, largest first."""

    n_correct: np.ndarray
    """(P,) correct samples."""
    wrong: np.ndarray
    """(P, K) samples of each wrong class, padded with zeros."""
    sink: np.ndarray
    """(P,) samples without an answer."""
    scores: np.ndarray
    """(P, 1 + K + 1, m) the scored samples' scores of each class (correct first, then ``wrong``'s order, then the
    samples without an answer), NaN-padded."""


def _class_table(pilot: CandidatePools) -> _PilotClasses:
    a, correct, scores = pilot.answer_ids, pilot.correct_ids, pilot.scores
    p_count, m = a.shape
    is_correct = (a == correct[:, None]) & (correct[:, None] >= 0)
    wrong = np.where(is_correct | (a < 0), -1, a)
    width = max(1, m)
    table = np.zeros((p_count, width), dtype=np.int64)
    by_class = np.full((p_count, width + 2, m), np.nan)
    finite = np.isfinite(scores)

    def put(i: int, col: int, hit: np.ndarray) -> None:
        v = scores[i][hit]
        by_class[i, col, : v.size] = v

    for i in range(p_count):
        put(i, 0, is_correct[i] & finite[i])
        put(i, width + 1, (a[i] < 0) & finite[i])
        vals = wrong[i][wrong[i] >= 0]
        if vals.size:
            classes, counts = np.unique(vals, return_counts=True)
            order = np.argsort(-counts, kind="stable")
            table[i, : counts.size] = counts[order]
            for slot, cls in enumerate(classes[order]):
                put(i, 1 + slot, (a[i] == cls) & finite[i])
    k = max(1, int((table > 0).sum(axis=1).max(initial=0)))  # the most wrong classes any problem has
    by_class = np.concatenate([by_class[:, : k + 1], by_class[:, -1:]], axis=1)
    return _PilotClasses(n_correct=is_correct.sum(axis=1), wrong=table[:, :k], sink=(a < 0).sum(axis=1),
                         scores=by_class)


def _posterior_probs(n_correct, wrong, sink, m, prior, n_draws, rng_for) -> np.ndarray:
    """(P, D, 1 + K + 1) class probabilities: correct, the pilot's wrong classes, the sink."""
    p_count, k = wrong.shape
    out = np.empty((p_count, n_draws, k + 2))
    alpha = 0.5  # Jeffreys-like pseudo-count on every wrong class and on the sink
    for i in range(p_count):
        rng = rng_for(i)
        q = rng.beta(prior.a + n_correct[i], prior.b + m - n_correct[i], size=n_draws)
        conc = np.concatenate([wrong[i] + alpha * (wrong[i] > 0), [sink[i] + alpha]])
        conc = np.where(conc > 0, conc, 1e-12)
        w = rng.dirichlet(conc, size=n_draws)
        out[i, :, 0] = q
        out[i, :, 1:] = (1.0 - q)[:, None] * w
    return out


@dataclass(frozen=True, slots=True)
class _ClassScores:
    """The per-sample score distribution of every answer class (correct, the pilot's wrong ones, the sink) per row
    (problem x posterior draw): its pilot samples, shrunk towards the pooled samples of its label (see
    `_class_scores`)."""

    mean: np.ndarray
    """(R, C) a draw of each class's mean score from its posterior."""
    spread: np.ndarray
    """(R, C) the standard deviation of one sample's score in each class."""
    source: np.ndarray
    """(R, C) the problem whose pilot samples stand for the class (another problem's correct class for a correct
    answer the pilot never drew)."""
    own: np.ndarray
    """(P, C, m) the pilot scores of each class, ascending, NaN-padded at the end."""
    own_n: np.ndarray
    """(P, C) scored pilot samples of each class."""
    pooled: tuple[np.ndarray, np.ndarray]
    """All scored pilot samples of correct, of wrong (answered) classes, ascending."""
    shrink: tuple[float, float]
    """Pseudo-count of the pooled samples in a correct, a wrong class's distribution (`_shrink`)."""

    def weight_own(self, prob: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Share of a class's per-sample distribution that is its own pilot samples."""
        n_own = self.own_n[prob, c]
        kappa = np.where(c == 0, self.shrink[0], self.shrink[1])
        return n_own / (n_own + kappa)

    def pool_for(self, c: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The pooled score at quantile ``u`` of each cell's label."""
        out = np.empty(u.shape)
        for label, pool in enumerate(self.pooled):
            pool = pool if pool.size else np.array([1.0 - label])
            hit = (c == 0) if label == 0 else (c != 0)
            hit = np.broadcast_to(hit.reshape(hit.shape + (1,) * (u.ndim - hit.ndim)), u.shape)
            out[hit] = pool[np.minimum((u[hit] * pool.size).astype(np.int64), pool.size - 1)]
        return out


_EXACT_VOTES = 8
"""A class drawn at most this many times sums scores drawn one by one from its distribution; above, the sum is
normal (k * mean + sqrt(k) * spread * z). The normal is wrong for few samples of a two-valued verifier (a correct
answer whose samples score 0.999 or ~0 scores ~0 once in four draws, a normal sum almost never)."""


def _summed_scores(cs: _ClassScores, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(R, C) the score sum of each class drawn ``counts`` times (see `_EXACT_VOTES`)."""
    votes = counts * cs.mean + np.sqrt(counts) * cs.spread * rng.standard_normal(counts.shape)
    r, c = np.nonzero((counts >= 1) & (counts <= _EXACT_VOTES))
    if r.size:
        prob = cs.source[r, c]
        n_own = cs.own_n[prob, c]
        k = counts[r, c].astype(np.int64)
        u = rng.random((r.size, _EXACT_VOTES, 3))
        take_own = u[..., 0] < cs.weight_own(prob, c)[:, None]
        own = cs.own[prob[:, None], c[:, None], np.minimum((u[..., 1] * n_own[:, None]).astype(np.int64),
                                                          np.maximum(n_own[:, None] - 1, 0))]
        draws = np.where(take_own, own, cs.pool_for(c, u[..., 2]))
        votes[r, c] = np.where(np.arange(_EXACT_VOTES)[None, :] < k[:, None], draws, 0.0).sum(axis=1)
    return votes


def _winner_share(values: np.ndarray) -> np.ndarray:
    """(R,) class 0's share of the win: 1 / (number tied at the top) where it is among them."""
    top = values.max(axis=1)
    winners = (values == top[:, None]) & np.isfinite(values)
    return np.where(winners[:, 0], 1.0 / np.maximum(winners.sum(axis=1), 1), 0.0)


def _vote_curves(probs, ns, rng, class_scores: _ClassScores | None = None) -> np.ndarray:
    """(R, len(ns)) expected win of class 0 over n i.i.d. draws from each row of ``probs`` (R, C), the last class a
    sink that never wins; with ``class_scores`` the votes are the classes' summed scores (weighted vote)."""
    out = np.empty((probs.shape[0], ns.size))
    for j, n in enumerate(ns):
        counts = rng.multinomial(int(n), probs).astype(np.float64)
        votes = counts[:, :-1]
        if class_scores is not None:
            summed = _summed_scores(class_scores, counts, rng)[:, :-1]
            votes = np.where(votes > 0, np.maximum(summed, _MIN_VOTE_WEIGHT), 0.0)
        out[:, j] = _winner_share(np.where(votes > 0, votes, -np.inf))
    return out


def _best_of_n_curves(probs, ns, rng, cs: _ClassScores) -> np.ndarray:
    """(R, len(ns)) P(the highest-scored of n i.i.d. draws is correct): the classes' counts as in voting, each
    drawn class's best score the maximum of its draws (from its own samples and from the pooled ones of its label,
    by inverse CDF: the maximum of k draws from a sorted sample sits at quantile ``U^(1/k)``). The sink (answers the pilot never saw, and samples without an answer) is wrong and can be picked: a
    verifier's false positives among answers the pilot never drew cap best-of-n as n grows."""
    out = np.empty((probs.shape[0], ns.size))
    rows, width = probs.shape
    src = cs.source
    cols = np.broadcast_to(np.arange(width), (rows, width))
    w_own = cs.weight_own(src, cols)
    n_own = cs.own_n[src, cols]
    for j, n in enumerate(ns):
        counts = rng.multinomial(int(n), probs)
        k_own = rng.binomial(counts, w_own)
        k_pool = counts - k_own
        u = rng.random((2, rows, width))
        idx = np.minimum((n_own * u[0] ** (1.0 / np.maximum(k_own, 1))).astype(np.int64), np.maximum(n_own - 1, 0))
        best_own = np.where(k_own > 0, cs.own[src, cols, idx], -np.inf)
        best_pool = np.where(k_pool > 0, cs.pool_for(cols, u[1] ** (1.0 / np.maximum(k_pool, 1))), -np.inf)
        out[:, j] = _winner_share(np.where(counts > 0, np.fmax(best_own, best_pool), -np.inf))
    return out


def _shrink(own: np.ndarray, cols: slice) -> float:
    """Empirical-Bayes pseudo-count of the pooled samples in a class's score distribution: the within-class
    variance over the variance of the classes' means (a verifier that scores an answer, not a sample, has none
    within a class, and its classes keep their own scores; one whose samples of an answer differ borrows more from
    the pool). Clipped to [0.01, 50]."""
    v = own[:, cols].reshape(-1, own.shape[2])
    n = np.isfinite(v).sum(axis=1)
    v, n = v[n > 0], n[n > 0]
    if v.shape[0] < 2:
        return 1.0
    means = np.nanmean(v, axis=1)
    multi = n >= 2
    within = float(np.nansum((v[multi] - means[multi, None]) ** 2) / max((n[multi] - 1).sum(), 1)) if multi.any() \
        else 0.0
    between = float(np.var(means)) - within * float(np.mean(1.0 / n))
    return float(np.clip(within / max(between, 1e-12), 0.01, 50.0))


def _class_scores(classes: _PilotClasses, n_draws: int, rng: np.random.Generator) -> _ClassScores:
    """Per row (problem x posterior draw) the per-sample score distribution of every class.

    Verifiers differ in what they score. Our PRM scores samples: a correct answer's samples score 0.999 or ~0 (a
    quarter of them), in a share that differs by problem, so a class seen once in the pilot says little about its
    next samples. A likelihood head scores answers: every sample of an answer scores alike, and a wrong answer that
    outscores the correct one by 0.01 does so every time. A class's per-sample distribution is its pilot samples
    shrunk towards the pooled samples of its label by an empirical-Bayes pseudo-count (`_shrink`: large for the
    first kind, ~0 for the second); each row draws the class's mean from its posterior (normal, the distribution's
    spread over the samples behind it). A correct answer the pilot never drew takes a correct class of another
    problem at random (a verifier that misses some correct answers misses them in the forecast too)."""
    own = np.sort(classes.scores, axis=2)  # ascending, NaN last
    n = np.isfinite(own).sum(axis=2)
    width = n.shape[1]
    answered = slice(1, width - 1)
    pooled = (np.sort(own[:, 0][np.isfinite(own[:, 0])]), np.sort(own[:, answered][np.isfinite(own[:, answered])]))
    shrink = (_shrink(own, slice(0, 1)), _shrink(own, answered))
    total = np.nansum(own, axis=2)
    sq = np.nansum(own ** 2, axis=2)
    kappa = np.array([shrink[0]] + [shrink[1]] * (width - 1))
    label_mu = np.array([p.mean() if p.size else 1.0 - k for k, p in enumerate(pooled)])[np.minimum(np.arange(width), 1)]
    label_sq = np.array([(p ** 2).mean() if p.size else 1.0 - k for k, p in enumerate(pooled)])[
        np.minimum(np.arange(width), 1)]
    mean = (total + kappa * label_mu) / (n + kappa)
    spread = np.sqrt(np.maximum((sq + kappa * label_sq) / (n + kappa) - mean ** 2, 0.0))
    p_count = n.shape[0]
    source = np.repeat(np.repeat(np.arange(p_count), n_draws)[:, None], width, axis=1)
    seen_c = np.flatnonzero(n[:, 0] > 0)
    unseen_rows = np.flatnonzero(np.repeat(n[:, 0] == 0, n_draws))
    if seen_c.size and unseen_rows.size:
        source[unseen_rows, 0] = rng.choice(seen_c, size=unseen_rows.size)
    cols = np.arange(width)[None, :]
    mu_rows = mean[source, cols]
    sd_rows = spread[source, cols]
    mu_rows = mu_rows + sd_rows / np.sqrt(n[source, cols] + kappa) * rng.standard_normal(mu_rows.shape)
    return _ClassScores(mean=mu_rows, spread=sd_rows, source=source, own=own, own_n=n.astype(np.int64),
                        pooled=pooled, shrink=shrink)


def forecast(pilot: CandidatePools, n_max: int, *, n_draws: int = 16, n_bootstrap: int = 400, level: float = 0.9,
             random_state: int = 0, ns: np.ndarray | None = None) -> Forecast:
    """Forecast pass@n, majority vote, weighted vote (when scored) and best-of-n (when scored) at n = 1..``n_max``
    (on `forecast_grid`) from ``pilot`` (see the module docstring)."""
    m = pilot.pool_size
    if n_max < 1:
        raise ValueError("n_max must be at least 1")
    ns = forecast_grid(n_max) if ns is None else np.asarray(ns, dtype=np.int64)
    classes = _class_table(pilot)
    n_correct = classes.n_correct
    prior = fit_beta_prior(n_correct, m)
    probs = _posterior_probs(n_correct, classes.wrong, classes.sink, m, prior, n_draws,
                             lambda i: np.random.default_rng([random_state, 1, i]))
    p_count = pilot.n_problems
    flat = probs.reshape(p_count * n_draws, -1)
    q = flat[:, 0]
    rng = np.random.default_rng([random_state, 2])
    per_row = {"pass": 1.0 - (1.0 - q[:, None]) ** ns[None, :],
               "majority_vote": _vote_curves(flat, ns, rng)}
    limits = {"pass": float(np.mean(1.0 - (1.0 - probs[:, :, 0]) ** 1_000_000 > 0.5)),
              "majority_vote": float(np.mean(probs.mean(axis=1)[:, 0] > probs.mean(axis=1)[:, 1:-1].max(axis=1,
                                                                                                  initial=0.0)))}
    if pilot.has_scores:
        cs = _class_scores(classes, n_draws, np.random.default_rng([random_state, 5]))
        per_row["weighted_vote"] = _vote_curves(flat, ns, np.random.default_rng([random_state, 3]), cs)
        per_row["best_of_n"] = _best_of_n_curves(flat, ns, np.random.default_rng([random_state, 6]), cs)
        far = _best_of_n_curves(flat, np.array([_FAR_N]), np.random.default_rng([random_state, 7]), cs)
        limits["best_of_n"] = float(far.mean())
    boot_rng = np.random.default_rng([random_state, 4])
    pick_p = boot_rng.integers(0, p_count, size=(n_bootstrap, p_count))
    pick_d = boot_rng.integers(0, n_draws, size=(n_bootstrap, p_count))
    rows = pick_p * n_draws + pick_d
    tail = (1.0 - level) / 2.0
    curves = {}
    for name, arr in per_row.items():
        reps = arr[rows].mean(axis=1)  # (B, len(ns))
        curves[name] = ForecastCurve(aggregation=name, ns=ns, accuracy=arr.mean(axis=0),
                                     low=np.quantile(reps, tail, axis=0), high=np.quantile(reps, 1 - tail, axis=0),
                                     replicates=reps)
    zero = n_correct == 0
    pass_last = per_row["pass"][:, -1].reshape(p_count, n_draws).mean(axis=1)
    unseen_contribution = float(pass_last[zero].sum() / p_count)
    warnings = []
    if zero.mean() > 0.1 and unseen_contribution > 0.02:
        warnings.append(
            f"{zero.mean():.0%} of problems had no correct sample in the pilot of {m}: their forecast comes from the "
            f"fitted prior Beta({prior.a:.3g}, {prior.b:.3g}), not from their own samples, and supplies "
            f"{100 * unseen_contribution:.1f} points of pass@{int(ns[-1])}: the pilot cannot see whether they are "
            "hard or unsolvable; sample more of them before trusting the large-n forecast")
    if "best_of_n" in limits and limits["best_of_n"] < curves["best_of_n"].accuracy.max() - 0.02:
        warnings.append(f"the verifier's false positives cap best-of-n: it peaks at "
                        f"{curves['best_of_n'].accuracy.max():.1%} and falls towards {limits['best_of_n']:.1%} as n "
                        "grows (its highest scores are not all correct)")
    return Forecast(pilot_size=m, n_problems=p_count, prior=prior, curves=curves, limits=limits,
                    unseen_share=float(zero.mean()), unseen_contribution=unseen_contribution, warnings=warnings,
                    level=level)


def smallest_n(curve: ForecastCurve, target: float) -> tuple[int | None, int | None, int | None]:
    """The smallest n whose forecast accuracy reaches ``target``, with the interval of that n over the replicates
    (None where no n of the grid reaches it)."""
    def first(acc: np.ndarray) -> int | None:
        hit = np.flatnonzero(acc >= target)
        return int(curve.ns[hit[0]]) if hit.size else None

    point = first(curve.accuracy)
    reps = [first(r) for r in curve.replicates]
    reached = np.array([r for r in reps if r is not None], dtype=float)
    tail = 0.05
    if reached.size < 0.5 * len(reps):
        return point, None if reached.size == 0 else int(np.min(reached)), None
    lo = int(np.quantile(reached, tail))
    hi = int(np.quantile(reached, 1 - tail)) if reached.size >= (1 - tail) * len(reps) else None
    return point, lo, hi
