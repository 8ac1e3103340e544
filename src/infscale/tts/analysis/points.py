"""Records of `infscale tts run` -> candidate pools and accuracy-vs-FLOPs operating points (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from infscale.errors import InputError
from infscale.tts.analysis.accuracy import (
    AccuracyCurve,
    CandidatePools,
    OperatingPoint,
    _percentiles,
    accuracy_at_n,
)
from infscale.tts.core.records import SCORED_AGGREGATIONS, ProblemRecord

__all__ = ["pools_from_records", "operating_points_from_records"]


# ---------------------------------------------------------------------------------------------------- records adapter
def _normalise_answer(answer: str) -> str:
    return " ".join(answer.strip().split())


def _mode_pool_size(records: Sequence[ProblemRecord]) -> int:
    sizes = Counter(len(r.candidates) for r in records if r.candidates)
    if not sizes:
        raise InputError(f"run {records[0].run!r}: no record has candidates")
    return max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0]


def pools_from_records(records: Sequence[ProblemRecord], pool_size: int | None = None) -> CandidatePools:
    """Arrays from the records of one (model, strategy, budget): one row per problem.

    Answers are grouped by their whitespace-normalised text. Pools are cut or padded (with unanswered slots, which
    count as wrong draws) to ``pool_size`` (default: the most common candidate count). A candidate is correct per its
    ``correct`` flag, or when its answer equals the gold answer if the flag is missing.
    """
    if not records:
        raise InputError("no records to analyse")
    m = pool_size or _mode_pool_size(records)
    p_count = len(records)
    answer_ids = np.full((p_count, m), -1, dtype=np.int64)
    scores = np.full((p_count, m), np.nan)
    correct_ids = np.full(p_count, -1, dtype=np.int64)
    for row, rec in enumerate(records):
        classes: dict[str, int] = {}
        gold = _normalise_answer(rec.gold) if rec.gold is not None else None
        for j, cand in enumerate(rec.candidates[:m]):
            if cand.score is not None:
                scores[row, j] = float(cand.score)
            if not cand.finished or cand.answer is None:
                continue
            key = _normalise_answer(cand.answer)
            cid = classes.setdefault(key, len(classes))
            answer_ids[row, j] = cid
            is_correct = cand.correct if cand.correct is not None else (gold is not None and key == gold)
            if is_correct and correct_ids[row] < 0:
                correct_ids[row] = cid
    return CandidatePools(answer_ids=answer_ids, scores=scores, correct_ids=correct_ids,
                          problem_ids=tuple(r.problem_id for r in records))


def _mean_ledger(records: Sequence[ProblemRecord]) -> dict[str, float]:
    keys = ("policy_prefill_flops", "policy_decode_flops", "reward_flops", "wu2025_flops", "policy_kv_read_bytes")
    return {k: float(np.mean([getattr(r.ledger, k) for r in records])) for k in keys}


def _bootstrap_mean(values: np.ndarray, n_bootstrap: int, confidence: float, rng: np.random.Generator
                    ) -> tuple[float, float]:
    idx = rng.integers(0, values.size, size=(n_bootstrap, values.size))
    return _percentiles(values[idx].mean(axis=1), confidence)


def operating_points_from_records(
    records: Iterable[ProblemRecord],
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    flops_per_byte: float | None = None,
) -> tuple[list[OperatingPoint], dict[tuple[str, str], dict[str, AccuracyCurve]]]:
    """Accuracy-vs-FLOPs points per model x strategy x aggregation, and the accuracy-at-n curves behind them.

    I.i.d. strategies (records with ``iid``): the largest budget's pool is subsampled to n = 1, 2, 4, ...; the FLOPs at
    n are the prompt prefill (shared, cached) plus ``n / M`` of the decode FLOPs (Wu et al.: ``n / M`` of its total).
    Other strategies: one point per budget from the records' own chosen answers. The reward model's FLOPs belong to
    the answers it chose: best-of-n and weighted vote, and every answer of a search the reward steered
    (``reward_steers``: beam, MCTS, REBASE, particle filtering); a greedy or majority-vote answer of independent
    samples does not pay for scores it never read. Failed problems count as wrong.
    ``flops_per_byte`` (a hardware profile's, `HardwareProfile.flops_per_byte`) prices the ``memory`` accounting.
    """
    rng = np.random.default_rng(random_state)
    groups: dict[tuple[str, str], dict[int, list[ProblemRecord]]] = {}
    n_params: dict[str, int] = {}
    labels: dict[str, str] = {}
    for rec in records:
        groups.setdefault((rec.model, rec.strategy), {}).setdefault(rec.budget, []).append(rec)
        n_params[rec.model] = rec.n_params
        if rec.strategy_label:
            labels[rec.strategy] = rec.strategy_label
    points: list[OperatingPoint] = []
    curves: dict[tuple[str, str], dict[str, AccuracyCurve]] = {}
    for (model, strategy), by_budget in sorted(groups.items()):
        top_budget = max(by_budget)
        top = by_budget[top_budget]
        steered = any(r.reward_steers for r in top)
        if any(r.iid for r in top) and any(r.candidates for r in top) and _mode_pool_size(top) >= 2:
            pools = pools_from_records(top)
            aggs = ["majority_vote", "pass"] + (["weighted_vote", "best_of_n"] if pools.has_scores else [])
            cur = accuracy_at_n(pools, aggregations=aggs, n_bootstrap=n_bootstrap, confidence=confidence,
                                random_state=rng)
            curves[(model, strategy)] = cur
            led = _mean_ledger(top)
            m = pools.pool_size
            for agg, curve in cur.items():
                if agg == "pass":
                    continue  # pass@k needs an oracle: not an operating point
                for i, n in enumerate(curve.ns):
                    frac = float(n) / m
                    reward = led["reward_flops"] if steered or agg in SCORED_AGGREGATIONS else 0.0
                    flops = led["policy_prefill_flops"] + frac * (led["policy_decode_flops"] + reward)
                    points.append(OperatingPoint(
                        model=model, n_params=n_params[model], strategy=f"{strategy}+{agg}", n=int(n), flops=flops,
                        method_label=labels.get(strategy, ""),
                        wu2025_flops=frac * led["wu2025_flops"], accuracy=float(curve.accuracy[i]),
                        ci_low=float(curve.ci_low[i]), ci_high=float(curve.ci_high[i]),
                        n_problems=curve.n_problems, source="subsampled pool",
                        kv_read_bytes=frac * led["policy_kv_read_bytes"], flops_per_byte=flops_per_byte))
            continue
        for budget, recs in sorted(by_budget.items()):
            led = _mean_ledger(recs)
            aggs = sorted({a for r in recs for a in r.correct})
            if strategy == "greedy" and "greedy" in aggs:
                aggs = ["greedy"]  # one candidate: every aggregation is the same answer
            for agg in aggs:
                vals = np.array([1.0 if r.correct.get(agg, False) else 0.0 for r in recs])
                lo, hi = _bootstrap_mean(vals, n_bootstrap, confidence, rng)
                reward = led["reward_flops"] if steered or agg in SCORED_AGGREGATIONS else 0.0
                points.append(OperatingPoint(
                    model=model, n_params=n_params[model], strategy=f"{strategy}+{agg}", n=int(budget),
                    method_label=labels.get(strategy, ""),
                    flops=led["policy_prefill_flops"] + led["policy_decode_flops"] + reward,
                    wu2025_flops=led["wu2025_flops"], accuracy=float(vals.mean()), ci_low=lo, ci_high=hi,
                    n_problems=len(recs), source="records", kv_read_bytes=led["policy_kv_read_bytes"],
                    flops_per_byte=flops_per_byte))
    return points, curves
