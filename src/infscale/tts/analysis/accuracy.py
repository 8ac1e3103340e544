"""Inference scaling analysis: accuracy at n, accuracy vs FLOPs, Pareto frontier and compute-optimal choices.

The core works on numpy arrays (``CandidatePools``): per problem a pool of ``M`` candidates given as integer answer-class
ids (``-1`` = no answer / unfinished, never wins a vote), reward scores and the id of the correct class. A thin adapter
(`pools_from_records`, `operating_points_from_records`) turns `infscale tts run` records into these arrays.

Accuracy at n (Wu et al., docs/references.md §2; search-and-learn's "subsample one large pool"): the expected accuracy of an
aggregation over a uniformly random ``n``-subset of the pool (drawn without replacement).
- ``majority_vote`` (MV): the most frequent answer class wins; ties are broken uniformly at random (we score the expected
  value ``1 / (1 + ties)``, which equals breaking ties by first occurrence in a random order).
- ``weighted_vote`` (WV): the class with the largest sum of scores wins (Wu et al.'s Theorem 2: ``pi * rho``).
- ``best_of_n`` (BoN): the candidate with the highest score; exact closed form for every n from the rank distribution of
  the best drawn candidate, ``P(best rank = r) = C(M-1-r, n-1) / C(M, n)``.
- ``pass`` (pass@k): unbiased estimator of Chen et al. 2021, ``1 - C(M-c, k) / C(M, k)`` with ``c`` correct candidates.

MV and WV are exact (enumeration of all ``C(M, n)`` subsets) when that number is small, otherwise unbiased Monte Carlo:
bootstrap replicate ``b`` resamples the problems with replacement and draws one random ``n``-subset per problem; its
accuracy is one bootstrap draw, the mean over replicates and problems is the unbiased estimate. Vectorised: a replicate's
subset is an indicator row ``L[b]`` over pool positions (each problem's pool is first put in its own random order, so
problems get independent subsets), and the class counts (or score sums) of every problem in every replicate come from
one matrix product ``L @ H`` with ``H`` the (position x class) one-hot matrix of all problems side by side.

Pure: numpy and scipy only, no I/O, randomness only through ``random_state``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infscale.tts.core.records import METHOD_LABELS, SAMPLING_NAMES

__all__ = [
    "AGGREGATIONS",
    "CandidatePools",
    "AccuracyCurve",
    "OperatingPoint",
    "accuracy_at_n",
    "exact_accuracy_bruteforce",
    "pass_at_k",
    "default_ns",
]

# aggregation names used in records (`ProblemRecord.answers` keys) and in curves
AGGREGATIONS: tuple[str, ...] = ("majority_vote", "weighted_vote", "best_of_n", "pass")


# a drawn candidate's weight in weighted voting is at least this, so a drawn class always outweighs an absent one.
# Votes are summed in float32 (exact for counts; for weights, sums that differ by less than ~1e-7 relative tie, so a
# zero score next to a positive one in the same class adds nothing)
_MIN_VOTE_WEIGHT = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidatePools:
    """One pool of ``M`` candidates for each of ``P`` problems, as arrays."""

    answer_ids: np.ndarray
    """(P, M) int: answer-class id of each candidate, ``-1`` for no answer / unfinished (never wins a vote)."""
    scores: np.ndarray
    """(P, M) float: reward score of each candidate (``nan`` = unscored; ranked last by best-of-n, weight 0 in WV)."""
    correct_ids: np.ndarray
    """(P,) int: class id of the gold answer, ``-1`` when no candidate is correct."""
    problem_ids: tuple[str, ...] = ()
    """Optional problem names, in row order."""

    def __post_init__(self) -> None:
        a, s, c = self.answer_ids, self.scores, self.correct_ids
        if a.ndim != 2 or s.shape != a.shape or c.shape != (a.shape[0],):
            raise ValueError(f"shapes disagree: answer_ids {a.shape}, scores {s.shape}, correct_ids {c.shape}")
        if a.shape[1] == 0:
            raise ValueError("pools are empty (pool size 0)")
        if self.problem_ids and len(self.problem_ids) != a.shape[0]:
            raise ValueError("problem_ids must name every row")

    @property
    def n_problems(self) -> int:
        return int(self.answer_ids.shape[0])

    @property
    def pool_size(self) -> int:
        return int(self.answer_ids.shape[1])

    @property
    def correct_mask(self) -> np.ndarray:
        """(P, M) bool: candidate carries the correct answer."""
        return (self.answer_ids == self.correct_ids[:, None]) & (self.correct_ids[:, None] >= 0)

    @property
    def has_scores(self) -> bool:
        return bool(np.isfinite(self.scores).any())


@dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyCurve:
    """Accuracy at n for one aggregation, with bootstrap intervals (fractions in [0, 1])."""

    aggregation: str
    ns: np.ndarray
    """Subset sizes n."""
    accuracy: np.ndarray
    """Estimated expected accuracy at each n."""
    ci_low: np.ndarray
    ci_high: np.ndarray
    exact: np.ndarray
    """Whether the estimate at each n is exact (enumeration / closed form) rather than Monte Carlo."""
    pool_size: int
    n_problems: int
    n_bootstrap: int


ACCOUNTINGS = ("ours", "wu2025", "memory")
"""How an operating point's compute is counted: ``ours`` (policy prefill with prefix caching + decode + reward
model), ``wu2025`` (``2 N T``, the reward model free), ``memory`` (``wu2025`` + KV bytes read at the hardware's
FLOPs per byte)."""

_ANSWER_LABELS = {"majority_vote": "majority vote", "best_of_n": "best-of-n", "weighted_vote": "weighted vote"}


def strategy_label(strategy: str, method_label: str = "") -> str:
    """The name users know for a ``strategy+aggregation`` key, the strategy first, then how the answer is chosen:
    ``greedy``; ``majority vote``, ``best-of-n``, ``weighted vote`` (independent samples; a pool drawn by a strategy
    named after another aggregation says so: ``majority vote (sampled as weighted_vote)``); ``REBASE + weighted
    vote``, ``beam search + best-of-n``, ``particle filtering + majority vote``. ``method_label`` is the strategy's
    own label (from its records); other keys (a paper table's names) are returned as they are."""
    method, sep, answer = strategy.partition("+")
    if not sep:
        return strategy
    if method == "greedy" or answer == "greedy":
        return "greedy"
    how = _ANSWER_LABELS.get(answer, answer.replace("_", " "))
    name = method_label or ("sampling" if method in SAMPLING_NAMES else METHOD_LABELS.get(method, method))
    if name == "sampling":
        return how if method == "sampling" else f"{how} (sampled as {method})"
    return f"{name} + {how}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatingPoint:
    """One (model, strategy, n) with its mean inference FLOPs per problem and its accuracy."""

    model: str
    n_params: int
    strategy: str
    """Strategy and aggregation, e.g. ``sampling+majority_vote`` or ``rebase+weighted_vote``."""
    n: int
    flops: float
    """Our accounting: policy prefill (prefix-cached) + decode + reward model, mean per problem."""
    wu2025_flops: float
    """Wu et al.'s accounting: ``2 * N_policy * generated_tokens`` (reward model not counted), mean per problem."""
    accuracy: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n_problems: int = 0
    source: str = ""
    """Where the point comes from (``subsampled pool``, ``records``, a paper table ...)."""
    kv_read_bytes: float = 0.0
    """KV-cache bytes the policy's decode read, mean per problem."""
    flops_per_byte: float | None = None
    """The hardware's peak FLOPs per byte of memory bandwidth that prices the ``memory`` accounting (unset: not
    priced)."""
    method_label: str = ""
    """The strategy's own label (``REBASE``, ``sampling``), from its records; empty for a paper table's point."""

    @property
    def memory_flops(self) -> float:
        """The memory-aware accounting (Kinetics' cost model): Wu et al.'s FLOPs plus the KV bytes read, converted at
        the hardware's FLOPs per byte, so that a memory-bound decode costs what its traffic costs."""
        if self.flops_per_byte is None:
            raise ValueError("the memory accounting needs a hardware profile (flops_per_byte) for the points")
        return self.wu2025_flops + self.kv_read_bytes * self.flops_per_byte

    @property
    def label(self) -> str:
        """`strategy_label` of the strategy: the name to show users."""
        return strategy_label(self.strategy, self.method_label)

    def flops_for(self, accounting: str) -> float:
        if accounting == "ours":
            return self.flops
        if accounting == "wu2025":
            return self.wu2025_flops
        if accounting == "memory":
            return self.memory_flops
        raise ValueError(f"unknown accounting {accounting!r} ({', '.join(ACCOUNTINGS)})")


def default_ns(pool_size: int) -> np.ndarray:
    """n = 1, 2, 4, ... up to the pool size (the pool size itself included)."""
    ns = [1 << i for i in range(int(math.log2(pool_size)) + 1)]
    if ns[-1] != pool_size:
        ns.append(pool_size)
    return np.asarray(ns, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------- layouts
@dataclass(slots=True)
class _VoteLayout:
    """Position x column one-hot matrices of all problems side by side (each problem's pool in its own order).

    "Major" classes (the correct one and wrong ones with more than ``minor_max`` candidates in the pool) get a column
    each; the many rare wrong answers ("minor" classes) of a problem share one summed column, which bounds their
    largest vote from above. Only (subset, problem) pairs the bound cannot decide are resolved exactly, by a gather.
    """

    counts_h: np.ndarray  # (M, ncols) float32: 1 where the candidate at a position belongs to a major column's class
    weights_h: np.ndarray  # (M, ncols) float32: the candidate's vote weight in that column
    minor_counts_h: np.ndarray  # (M, P) float32: 1 where the candidate belongs to one of the problem's minor classes
    minor_weights_h: np.ndarray  # (M, P) float32: its weight
    starts: np.ndarray  # (P,) first column of each problem
    seg_len: np.ndarray  # (P,) columns per problem
    correct_col: np.ndarray  # (P,) column of the correct class, -1 if none
    minor_pos: np.ndarray  # (P, C, minor_max) positions of the members of each minor class (padded with 0)
    minor_w: np.ndarray  # (P, C, minor_max) float32 their weights (padding: 0)
    minor_one: np.ndarray  # (P, C, minor_max) float32 1 for a member, 0 for padding


def _build_layout(answer_ids: np.ndarray, scores: np.ndarray, correct_ids: np.ndarray, *, minor_max: int = 2
                  ) -> _VoteLayout:
    p_count, m = answer_ids.shape
    valid = answer_ids >= 0
    rows, pos = np.nonzero(valid)
    cls = answer_ids[rows, pos].astype(np.int64)
    w_all = np.maximum(np.nan_to_num(scores[rows, pos].astype(np.float64), nan=0.0), _MIN_VOTE_WEIGHT)
    # compact (problem, class) pairs into columns; one extra empty column per problem keeps every segment non-empty
    span = int(cls.max()) + 2 if cls.size else 2
    keys = rows.astype(np.int64) * span + cls
    dummy = np.arange(p_count, dtype=np.int64) * span + (span - 1)
    uniq, inverse, pool_count = np.unique(np.concatenate([keys, dummy]), return_inverse=True, return_counts=True)
    inverse = inverse[: keys.size]
    col_problem = uniq // span
    col_class = uniq % span
    is_correct_col = (col_class == correct_ids[col_problem]) & (correct_ids[col_problem] >= 0)
    minor_col = (pool_count <= minor_max) & ~is_correct_col & (col_class != span - 1)
    # minor candidates: summed column per problem + padded member lists
    cand_minor = minor_col[inverse]
    minor_counts_h = np.zeros((m, p_count), dtype=np.float32)
    minor_weights_h = np.zeros((m, p_count), dtype=np.float32)
    minor_counts_h[pos[cand_minor], rows[cand_minor]] = 1.0
    minor_weights_h[pos[cand_minor], rows[cand_minor]] = w_all[cand_minor]
    mrow, mpos, mcol, mw = rows[cand_minor], pos[cand_minor], inverse[cand_minor], w_all[cand_minor]
    order = np.lexsort((mcol, mrow))
    mrow, mpos, mcol, mw = mrow[order], mpos[order], mcol[order], mw[order]
    idx = np.arange(mrow.size)
    new_cls = np.ones(mrow.size, dtype=bool)
    new_cls[1:] = (mcol[1:] != mcol[:-1]) | (mrow[1:] != mrow[:-1])
    group = np.cumsum(new_cls) - 1  # minor class number, global
    group_start = idx[new_cls]
    member = idx - group_start[group]  # slot within its class (< minor_max)
    new_row = np.ones(mrow.size, dtype=bool)
    new_row[1:] = mrow[1:] != mrow[:-1]
    row_first_group = np.maximum.accumulate(np.where(new_row, group, 0))
    local = group - row_first_group  # class number within the problem
    n_minor = max(int(local.max()) + 1 if local.size else 1, 1)
    minor_pos = np.zeros((p_count, n_minor, minor_max), dtype=np.int64)
    minor_w = np.zeros((p_count, n_minor, minor_max), dtype=np.float32)
    minor_one = np.zeros((p_count, n_minor, minor_max), dtype=np.float32)
    minor_pos[mrow, local, member], minor_w[mrow, local, member], minor_one[mrow, local, member] = mpos, mw, 1.0
    # major columns
    keep_col = ~minor_col
    new_index = np.cumsum(keep_col) - 1
    uniq, col_problem, is_correct_col = uniq[keep_col], col_problem[keep_col], is_correct_col[keep_col]
    keep = ~cand_minor
    rows, pos, inverse, w = rows[keep], pos[keep], new_index[inverse[keep]], w_all[keep]
    ncols = uniq.size
    counts_h = np.zeros((m, ncols), dtype=np.float32)
    counts_h[pos, inverse] = 1.0
    weights_h = np.zeros((m, ncols), dtype=np.float32)
    weights_h[pos, inverse] = w
    starts = np.searchsorted(col_problem, np.arange(p_count))
    seg_len = np.diff(np.append(starts, ncols))
    correct_col = np.full(p_count, -1, dtype=np.int64)
    correct_col[col_problem[is_correct_col]] = np.nonzero(is_correct_col)[0]
    return _VoteLayout(counts_h, weights_h, minor_counts_h, minor_weights_h, starts, seg_len, correct_col,
                       minor_pos, minor_w, minor_one)


def _vote_outcomes(layout: _VoteLayout, subsets: np.ndarray, *, weighted: bool) -> np.ndarray:
    """Expected correctness (ties broken uniformly) of MV or WV for each subset row and problem: (R, P)."""
    lhs = subsets.astype(np.float32)
    votes = lhs @ (layout.weights_h if weighted else layout.counts_h)  # (R, ncols) major classes
    minor_sum = lhs @ (layout.minor_weights_h if weighted else layout.minor_counts_h)  # (R, P) >= largest minor
    has = layout.correct_col >= 0
    safe = np.where(has, layout.correct_col, 0)
    star = np.where(has[None, :], votes[:, safe], np.float32(0.0))  # (R, P) votes of the correct class
    votes[:, layout.correct_col[has]] = -1.0  # from here on `votes` holds the other major classes only
    best_major = np.maximum.reduceat(votes, layout.starts, axis=1)
    present = star > 0
    win = present & (star > best_major) & (star > minor_sum)
    out = win.astype(np.float64)
    # undecided: the correct class is not behind the best major class but the minor bound does not settle it, or ties
    r_idx, p_idx = np.nonzero(present & (star >= best_major) & ~win)
    if r_idx.size:
        mw = (layout.minor_w if weighted else layout.minor_one)[p_idx]  # (E, C, minor_max)
        flat_pos = layout.minor_pos[p_idx] + (r_idx * lhs.shape[1])[:, None, None]
        sums = (np.take(lhs.ravel(), flat_pos) * mw).sum(axis=2)  # (E, C) votes of each minor class
        s_val = star[r_idx, p_idx]
        top = np.maximum(best_major[r_idx, p_idx], sums.max(axis=1))
        kmax = int(layout.seg_len.max())
        offs = np.arange(kmax)
        cols = np.minimum(layout.starts[p_idx][:, None] + offs, votes.shape[1] - 1)
        in_seg = offs[None, :] < layout.seg_len[p_idx][:, None]
        major = np.take(votes.ravel(), cols + (r_idx * votes.shape[1])[:, None])
        ties = ((major == s_val[:, None]) & in_seg).sum(axis=1) + (sums == s_val[:, None]).sum(axis=1)
        out[r_idx, p_idx] = np.where(s_val > top, 1.0, np.where(s_val == top, 1.0 / (1.0 + ties), 0.0))
    return out


def _chunked_vote_outcomes(layout: _VoteLayout, subsets: np.ndarray, *, weighted: bool,
                           max_cells: int = 8_000_000) -> np.ndarray:
    ncols = layout.counts_h.shape[1] + layout.minor_counts_h.shape[1]
    step = max(1, max_cells // max(ncols, 1))
    return np.concatenate([_vote_outcomes(layout, subsets[i:i + step], weighted=weighted)
                           for i in range(0, subsets.shape[0], step)], axis=0)


def _all_subsets(m: int, n: int) -> np.ndarray:
    """Indicator rows of every n-subset of range(m): (C(m, n), m)."""

    combos = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(m), n)), dtype=np.int64)
    combos = combos.reshape(-1, n)
    ind = np.zeros((combos.shape[0], m), dtype=bool)
    np.put_along_axis(ind, combos, True, axis=1)
    return ind


def _best_rank_pmf(m: int, n: int) -> np.ndarray:
    """P(the best of a random n-subset of m ranked items has rank r), r = 0..m-1 (0 = best)."""
    total = math.comb(m, n)
    return np.array([math.comb(m - 1 - r, n - 1) / total if m - 1 - r >= n - 1 else 0.0 for r in range(m)])


def _best_of_n_exact(scores: np.ndarray, correct: np.ndarray, n: int) -> np.ndarray:
    """Per-problem expected best-of-n correctness (P,), exact; equal scores are broken uniformly at random.

    The best drawn candidate has rank r with probability ``pmf(r)``; within a group of equal scores every member is
    equally likely to be the one drawn first, so the group's mass is spread evenly over its members.
    """
    p_count, m = scores.shape
    s = np.where(np.isfinite(scores), scores, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=1)
    c_sorted = np.take_along_axis(correct, order, axis=1).astype(np.float64)
    new_group = np.ones((p_count, m), dtype=bool)
    new_group[:, 1:] = s_sorted[:, 1:] != s_sorted[:, :-1]
    gid = (np.cumsum(new_group, axis=1) - 1) + np.arange(p_count)[:, None] * m
    flat = gid.ravel()
    group_mean = np.bincount(flat, weights=c_sorted.ravel(), minlength=p_count * m) / np.maximum(
        np.bincount(flat, minlength=p_count * m), 1)
    return group_mean[gid] @ _best_rank_pmf(m, n)


def pass_at_k(n_correct: np.ndarray, pool_size: int, k: int) -> np.ndarray:
    """Unbiased pass@k per problem (Chen et al. 2021): ``1 - C(M - c, k) / C(M, k)``, as a stable product."""
    c = np.asarray(n_correct, dtype=np.int64)
    if not 1 <= k <= pool_size:
        raise ValueError(f"k={k} must be in 1..{pool_size}")
    i = np.arange(1, k + 1)
    # C(M-c, k) / C(M, k) = prod_{i=1..k} (M - c - k + i) / (M - k + i)
    ratios = np.clip((pool_size - c[:, None] - k + i[None, :]) / (pool_size - k + i[None, :]), 0.0, None)
    return 1.0 - np.prod(ratios, axis=1)


# ---------------------------------------------------------------------------------------------------- accuracy at n
def _percentiles(x: np.ndarray, confidence: float) -> tuple[float, float]:
    lo, hi = np.quantile(x, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def accuracy_at_n(
    pools: CandidatePools,
    ns: Sequence[int] | None = None,
    *,
    aggregations: Sequence[str] = ("majority_vote", "weighted_vote", "best_of_n", "pass"),
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    max_exact_subsets: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> dict[str, AccuracyCurve]:
    """Accuracy at each n for each aggregation, with percentile bootstrap intervals over problems (and subsets).

    ``max_exact_subsets``: MV/WV are enumerated exactly when ``C(M, n)`` is at most this, otherwise estimated by one
    random subset per problem per bootstrap replicate (unbiased). BoN and pass@k are always exact closed forms.
    """
    unknown = [a for a in aggregations if a not in AGGREGATIONS]
    if unknown:
        raise ValueError(f"unknown aggregation(s) {unknown}; known: {', '.join(AGGREGATIONS)}")
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be >= 1")
    rng = np.random.default_rng(random_state)
    p_count, m = pools.n_problems, pools.pool_size
    ns_arr = default_ns(m) if ns is None else np.asarray(sorted(set(int(n) for n in ns)), dtype=np.int64)
    if ns_arr.size == 0 or ns_arr[0] < 1 or ns_arr[-1] > m:
        raise ValueError(f"n must be in 1..{m} (the pool size)")
    # each problem's pool in its own random order: problems then get independent subsets from shared indicator rows
    perm = np.argsort(rng.random((p_count, m)), axis=1)
    answers = np.take_along_axis(pools.answer_ids, perm, axis=1)
    scores = np.take_along_axis(pools.scores, perm, axis=1)
    correct = (answers == pools.correct_ids[:, None]) & (pools.correct_ids[:, None] >= 0)
    weights = rng.multinomial(p_count, np.full(p_count, 1.0 / p_count), size=n_bootstrap).astype(np.float64)

    need_vote = [a for a in aggregations if a in ("majority_vote", "weighted_vote")]
    layout = _build_layout(answers, scores, pools.correct_ids) if need_vote else None
    # one random order of positions per replicate; subsets for every n are its prefixes
    rep_keys = rng.random((n_bootstrap, m)) if need_vote else None
    rep_rank = np.argsort(np.argsort(rep_keys, axis=1), axis=1) if need_vote else None

    out: dict[str, dict[str, list]] = {a: {"acc": [], "lo": [], "hi": [], "exact": []} for a in aggregations}
    for n in ns_arr:
        n = int(n)
        for agg in aggregations:
            if agg in ("best_of_n", "pass"):
                if agg == "pass":
                    per_problem = pass_at_k(correct.sum(axis=1), m, n)
                else:
                    per_problem = _best_of_n_exact(scores, correct, n)
                reps = weights @ per_problem / p_count
                acc, exact = float(per_problem.mean()), True
            else:
                assert layout is not None
                if math.comb(m, n) <= max_exact_subsets:
                    per_problem = _chunked_vote_outcomes(layout, _all_subsets(m, n), weighted=agg == "weighted_vote")
                    per_problem = per_problem.mean(axis=0)
                    reps = weights @ per_problem / p_count
                    acc, exact = float(per_problem.mean()), True
                else:
                    outcomes = _chunked_vote_outcomes(layout, rep_rank < n, weighted=agg == "weighted_vote")  # (B, P)
                    reps = (weights * outcomes).sum(axis=1) / p_count
                    acc, exact = float(outcomes.mean()), False
            lo, hi = _percentiles(reps, confidence)
            rec = out[agg]
            rec["acc"].append(acc)
            rec["lo"].append(lo)
            rec["hi"].append(hi)
            rec["exact"].append(exact)
    return {
        agg: AccuracyCurve(aggregation=agg, ns=ns_arr.copy(), accuracy=np.asarray(r["acc"]),
                           ci_low=np.asarray(r["lo"]), ci_high=np.asarray(r["hi"]),
                           exact=np.asarray(r["exact"], dtype=bool), pool_size=m, n_problems=p_count,
                           n_bootstrap=n_bootstrap)
        for agg, r in out.items()
    }


def estimate_bootstrap_bytes(n_problems: int, pool_size: int, n_bootstrap: int) -> float:
    """Peak bytes `accuracy_at_n` holds for one pool: the (B, P) replicate weights, vote tallies and outcomes, and the
    (B, M) subset keys and ranks, in 8-byte cells. The factors (16 per problem, 8 per candidate) are measured: its
    tracemalloc peak is 7-14 cells per replicate and problem over P 100-2000, M 8-64, B 500-20000."""
    return 8.0 * n_bootstrap * (16.0 * n_problems + 8.0 * pool_size)


def exact_accuracy_bruteforce(pools: CandidatePools, n: int, aggregation: str) -> float:
    """Reference: enumerate every n-subset of every pool in plain Python (small pools only). Same tie rules."""

    total = 0.0
    for p in range(pools.n_problems):
        ans = [int(a) for a in pools.answer_ids[p]]
        sc = [float(s) for s in pools.scores[p]]
        gold = int(pools.correct_ids[p])
        acc, count = 0.0, 0
        for subset in itertools.combinations(range(len(ans)), n):
            count += 1
            if aggregation == "best_of_n":
                keyed = [(sc[i] if math.isfinite(sc[i]) else -math.inf, i) for i in subset]
                top = max(k for k, _ in keyed)
                tops = [i for k, i in keyed if k == top]
                acc += sum(1.0 for i in tops if gold >= 0 and ans[i] == gold) / len(tops)
                continue
            votes: dict[int, float] = {}
            for i in subset:
                if ans[i] < 0:
                    continue
                w = max(sc[i] if math.isfinite(sc[i]) else 0.0, _MIN_VOTE_WEIGHT) if aggregation == "weighted_vote" else 1.0
                votes[ans[i]] = votes.get(ans[i], 0.0) + w
            if gold >= 0 and gold in votes:
                top = max(votes.values())
                if votes[gold] == top:
                    acc += 1.0 / sum(1 for v in votes.values() if v == top)
        total += acc / count
    return total / pools.n_problems
