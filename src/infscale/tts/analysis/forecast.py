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
- **Weighted vote**: as majority vote, each class's score sum its count times the class's score (the pilot's mean
  score of that answer; for a correct answer the pilot never drew, a correct class's score from another problem),
  plus the spread of scores within an answer class.
- **Best-of-n**: the verifier's score distributions on correct and on wrong samples (its ROC, the view of Stroebl et
  al. 2024 and ROC-n-reroll 2025) per problem: its own pilot's histograms shrunk towards the pooled ones, binned; ``P(best correct) = sum_b [(G_b + c_b + w_b)^n - G_b^n]
  c_b / (c_b + w_b)`` with ``c_b = q F_c(bin b)``, ``w_b = (1 - q) F_w(bin b)`` and ``G_b`` the mass below bin b. As n
  grows it tends to what the top of the two score distributions holds: a verifier whose false positives reach above its
  true positives caps the accuracy.

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
_SCORE_BINS = 64


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
    cap: the top score bin's correct share, averaged over problems)."""
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
    """(P, 1 + K, m) the scored samples' scores of each class (correct first, then ``wrong``'s order), NaN-padded."""


def _class_table(pilot: CandidatePools) -> _PilotClasses:
    a, correct, scores = pilot.answer_ids, pilot.correct_ids, pilot.scores
    p_count, m = a.shape
    is_correct = (a == correct[:, None]) & (correct[:, None] >= 0)
    wrong = np.where(is_correct | (a < 0), -1, a)
    width = max(1, m)
    table = np.zeros((p_count, width), dtype=np.int64)
    by_class = np.full((p_count, width + 1, m), np.nan)
    finite = np.isfinite(scores)

    def put(i: int, col: int, hit: np.ndarray) -> None:
        v = scores[i][hit]
        by_class[i, col, : v.size] = v

    for i in range(p_count):
        put(i, 0, is_correct[i] & finite[i])
        vals = wrong[i][wrong[i] >= 0]
        if vals.size:
            classes, counts = np.unique(vals, return_counts=True)
            order = np.argsort(-counts, kind="stable")
            table[i, : counts.size] = counts[order]
            for slot, cls in enumerate(classes[order]):
                put(i, 1 + slot, (a[i] == cls) & finite[i])
    return _PilotClasses(n_correct=is_correct.sum(axis=1), wrong=table, sink=(a < 0).sum(axis=1), scores=by_class)


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
    """The per-sample score distribution of every answer class, for weighted voting (see `_class_scores`)."""

    mean: np.ndarray
    """(R, C) per row (problem x posterior draw) a draw of each class's mean score from its posterior."""
    spread: np.ndarray
    """(R, C) the standard deviation of one sample's score in each class."""
    source: np.ndarray
    """(R, C) the problem whose pilot samples stand for the class (another problem's correct class for a correct
    answer the pilot never drew)."""
    own: np.ndarray
    """(P, C, m) the pilot scores of each class, NaN-padded."""
    own_n: np.ndarray
    """(P, C) scored pilot samples of each class."""
    pooled: tuple[np.ndarray, np.ndarray]
    """All scored pilot samples of correct, of wrong classes."""


_CLASS_SHRINK = 1.0
"""Pseudo-count of the pooled score distribution of samples with the same label (correct or wrong) in each answer
class's own: a class's per-sample scores are its pilot samples' shrunk towards that pool by this many samples."""
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
        take_own = u[..., 0] * (n_own + _CLASS_SHRINK)[:, None] < n_own[:, None]
        own = cs.own[prob[:, None], c[:, None], np.minimum((u[..., 1] * n_own[:, None]).astype(np.int64),
                                                          np.maximum(n_own[:, None] - 1, 0))]
        pools = [cs.pooled[0] if cs.pooled[0].size else np.ones(1), cs.pooled[1] if cs.pooled[1].size else np.zeros(1)]
        pooled = np.where((c == 0)[:, None],
                          pools[0][(u[..., 2] * pools[0].size).astype(np.int64)],
                          pools[1][(u[..., 2] * pools[1].size).astype(np.int64)])
        draws = np.where(take_own, own, pooled)
        votes[r, c] = np.where(np.arange(_EXACT_VOTES)[None, :] < k[:, None], draws, 0.0).sum(axis=1)
    return votes


def _vote_curves(probs, ns, rng, class_scores: _ClassScores | None = None) -> np.ndarray:
    """(R, len(ns)) expected win of class 0 over n i.i.d. draws from each row of ``probs`` (R, C), the last class a
    sink that never wins; with ``class_scores`` the votes are the classes' summed scores (weighted vote)."""
    rows, c = probs.shape
    out = np.empty((rows, ns.size))
    for j, n in enumerate(ns):
        counts = rng.multinomial(int(n), probs).astype(np.float64)
        votes = counts[:, :-1]
        if class_scores is not None:
            drawn = votes > 0
            votes = np.where(drawn, np.maximum(_summed_scores(class_scores, votes, rng), _MIN_VOTE_WEIGHT), -np.inf)
        top = votes.max(axis=1)
        winners = (votes == top[:, None]) & np.isfinite(votes) & (votes > 0)
        out[:, j] = np.where(winners[:, 0], 1.0 / np.maximum(winners.sum(axis=1), 1), 0.0)
    return out


def _class_scores(classes: _PilotClasses, n_draws: int, rng: np.random.Generator) -> _ClassScores:
    """Per row (problem x posterior draw) the per-sample score distribution of every class for weighted voting.

    A verifier scores samples, not answers: on our PRM a correct answer's samples score 0.999 or ~0 (a quarter of
    them), in a share that differs by problem, so a class seen once in the pilot says little about its next samples.
    A scored class's per-sample distribution is its pilot samples shrunk towards the pooled samples of its label by
    `_CLASS_SHRINK`; each row draws the class's mean from its posterior (normal, the distribution's spread over the
    samples behind it). A correct answer the pilot never drew takes a correct class of another problem at random (a
    verifier that misses some correct answers misses them in the forecast too); unscored wrong classes score as the
    pooled wrong samples."""
    own = classes.scores
    n = np.isfinite(own).sum(axis=2)
    total = np.nansum(own, axis=2)
    sq = np.nansum(own ** 2, axis=2)
    pooled = (own[:, 0][np.isfinite(own[:, 0])], own[:, 1:][np.isfinite(own[:, 1:])])
    label_mu = np.empty(n.shape[1])
    label_sq = np.empty(n.shape[1])
    for cols, values, empty in ((slice(0, 1), pooled[0], 1.0), (slice(1, None), pooled[1], 0.0)):
        label_mu[cols] = values.mean() if values.size else empty
        label_sq[cols] = (values ** 2).mean() if values.size else empty ** 2
    mean = (total + _CLASS_SHRINK * label_mu) / (n + _CLASS_SHRINK)
    spread = np.sqrt(np.maximum((sq + _CLASS_SHRINK * label_sq) / (n + _CLASS_SHRINK) - mean ** 2, 0.0))
    p_count, width = n.shape
    source = np.repeat(np.repeat(np.arange(p_count), n_draws)[:, None], width, axis=1)
    seen_c = np.flatnonzero(n[:, 0] > 0)
    unseen_rows = np.flatnonzero(np.repeat(n[:, 0] == 0, n_draws))
    if seen_c.size and unseen_rows.size:
        source[unseen_rows, 0] = rng.choice(seen_c, size=unseen_rows.size)
    cols = np.arange(width)[None, :]
    mu_rows = mean[source, cols]
    sd_rows = spread[source, cols]
    mu_rows = mu_rows + sd_rows / np.sqrt(n[source, cols] + _CLASS_SHRINK) * rng.standard_normal(mu_rows.shape)
    return _ClassScores(mean=mu_rows, spread=sd_rows, source=source, own=own, own_n=n.astype(np.int64),
                        pooled=pooled)


_SHRINK = 0.5
"""Pseudo-count of the pooled (all problems) score distribution in each problem's own: a problem's verifier
behaviour is its pilot's, shrunk towards the pool's by this many samples. Small: on the bundled pair the pooled ROC
over-rates the verifier (pilot 16, best-of-n to 128: mean error 4.8 points with the pooled ROC, 1.1 at 0.5; the
problems differ in how well their scores separate)."""


def _score_bins(pilot: CandidatePools) -> _ScoreCounts | None:
    """Per problem, histograms (bins high to low, shared edges) of the scores of its correct and of its wrong
    candidates as probabilities (P, B) each: its own pilot's shrunk towards the pooled ones (`_SHRINK`); unscored or
    unanswered candidates fall below every bin (a wrong mass the best-of-n never picks first)."""
    s = pilot.scores
    finite = np.isfinite(s)
    if not finite.any():
        return None
    correct = pilot.correct_mask
    lo, hi = float(np.min(s[finite])), float(np.max(s[finite]))
    edges = np.linspace(lo, hi + 1e-12 * max(1.0, abs(hi)), _SCORE_BINS + 1)
    b = np.clip(np.searchsorted(edges, np.where(finite, s, lo), side="right") - 1, 0, _SCORE_BINS - 1)
    b = _SCORE_BINS - 1 - b  # high to low
    p_count = s.shape[0]
    hc = np.zeros((p_count, _SCORE_BINS))
    hw = np.zeros((p_count, _SCORE_BINS))
    rows = np.repeat(np.arange(p_count), s.shape[1]).reshape(s.shape)
    np.add.at(hc, (rows[finite & correct], b[finite & correct]), 1.0)
    np.add.at(hw, (rows[finite & ~correct], b[finite & ~correct]), 1.0)
    n_c = correct.sum(axis=1).astype(float)
    n_w = (~correct).sum(axis=1).astype(float)
    pool_c = hc.sum(axis=0) / max(1.0, n_c.sum())
    pool_w = hw.sum(axis=0) / max(1.0, n_w.sum())
    return _ScoreCounts(correct=hc, wrong=hw, pool_correct=pool_c, pool_wrong=pool_w, correct_total=n_c,
                        wrong_total=n_w)


@dataclass(frozen=True, slots=True)
class _ScoreCounts:
    """Per problem its pilot's correct and wrong samples per score bin (high to low) and the pooled distributions
    (all problems) they shrink towards by `_SHRINK` samples; the totals include the samples without a score."""

    correct: np.ndarray
    wrong: np.ndarray
    pool_correct: np.ndarray
    pool_wrong: np.ndarray
    correct_total: np.ndarray
    wrong_total: np.ndarray

    def _parts(self):
        return ((self.correct, self.pool_correct, self.correct_total),
                (self.wrong, self.pool_wrong, self.wrong_total))

    def mean(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, B) each: the distributions of correct and of wrong samples' scores."""
        c, w = ((own + _SHRINK * pool) / (total + _SHRINK)[:, None] for own, pool, total in self._parts())
        return c, w

    def draw(self, n_draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(P * n_draws, B) each: the distributions with the problem's own samples reweighted by a Bayesian
        bootstrap (Dirichlet weights), so the interval carries how little a pilot of a few samples says about a
        problem's verifier; the pooled part is kept (its mass is small and spread thin)."""
        out = []
        for own, pool, total in self._parts():
            counts = np.concatenate([own, np.maximum(total - own.sum(axis=1), 0.0)[:, None]], axis=1)
            g = rng.standard_gamma(np.repeat(counts, n_draws, axis=0))
            reps = np.repeat(total, n_draws)
            share = g[:, :-1] / np.maximum(g.sum(axis=1, keepdims=True), 1e-300) * reps[:, None]
            out.append((share + _SHRINK * pool) / (reps + _SHRINK)[:, None])
        return out[0], out[1]


def _best_of_n_curves(q: np.ndarray, fc: np.ndarray, fw: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """(R, len(ns)) P(the highest-scored of n draws is correct) for success probabilities ``q`` (R,) and per-row
    score distributions ``fc``, ``fw`` (R, B): ``sum_b [(G_b + c_b + w_b)^n - G_b^n] c_b / (c_b + w_b)``."""
    c = q[:, None] * fc
    w = (1.0 - q)[:, None] * fw
    mass = c + w
    below = np.clip(1.0 - np.cumsum(mass, axis=1), 0.0, 1.0)  # mass strictly below each bin, unscored included
    share = np.divide(c, mass, out=np.zeros_like(c), where=mass > 0)
    log_top = np.log(np.clip(below + mass, 1e-300, 1.0))
    log_below = np.log(np.clip(below, 1e-300, 1.0))
    out = np.empty((q.size, ns.size))
    for j, n in enumerate(ns):
        out[:, j] = ((np.exp(n * log_top) - np.exp(n * log_below)) * share).sum(axis=1)
    return out


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
    bins = _score_bins(pilot) if pilot.has_scores else None
    limits = {"pass": float(np.mean(1.0 - (1.0 - probs[:, :, 0]) ** 1_000_000 > 0.5)),
              "majority_vote": float(np.mean(probs.mean(axis=1)[:, 0] > probs.mean(axis=1)[:, 1:-1].max(axis=1,
                                                                                                  initial=0.0)))}
    if bins is not None:
        per_row["weighted_vote"] = _vote_curves(
            flat, ns, np.random.default_rng([random_state, 3]),
            _class_scores(classes, n_draws, np.random.default_rng([random_state, 5])))
        fc, fw = bins.mean()
        per_row["best_of_n"] = _best_of_n_curves(q, *bins.draw(n_draws, np.random.default_rng([random_state, 6])),
                                                 ns)
        top = np.argmax((fc + fw) > 0, axis=1)  # each problem's highest occupied bin
        ct, wt = fc[np.arange(p_count), top], fw[np.arange(p_count), top]
        qm = probs[:, :, 0].mean(axis=1)
        limits["best_of_n"] = float(np.mean(qm * ct / np.maximum(qm * ct + (1 - qm) * wt, 1e-300)))
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
