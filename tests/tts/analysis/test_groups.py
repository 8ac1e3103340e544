"""Accuracy per problem group (level / subject) with Wilson intervals."""

import math

import pytest

from infscale.tts.analysis.groups import accuracy_by_group, wilson_interval
from infscale.tts.core.records import ProblemRecord


def _rec(pid: str, level: str, ok: bool, budget: int = 4, error: str | None = None) -> ProblemRecord:
    return ProblemRecord(run="r", model="m", n_params=1, strategy="sampling", budget=budget, problem_id=pid,
                         gold="1", candidates=(), correct={"majority_vote": ok, "best_of_n": not ok},
                         groups={"level": level, "subject": "Algebra"}, error=error)


def test_accuracy_by_group_counts_problems_per_level_and_subject():
    recs = [_rec("a", "1", True), _rec("b", "1", True), _rec("c", "10", False), _rec("d", "2", False),
            _rec("e", "2", True, error="server died"), _rec("f", "1", False, budget=8)]
    rows = accuracy_by_group(recs)
    mv4 = [g for g in rows if g.strategy == "sampling+majority_vote" and g.budget == 4]
    assert [(g.key, g.value, g.n_problems, g.accuracy) for g in mv4] == [
        ("level", "1", 2, 1.0), ("level", "2", 1, 0.0), ("level", "10", 1, 0.0), ("subject", "Algebra", 4, 0.5)]
    assert all(g.ci_low <= g.accuracy <= g.ci_high for g in rows)
    # a record round-trips its groups through JSON
    assert ProblemRecord.from_json(recs[0].to_json()).groups == {"level": "1", "subject": "Algebra"}


def test_wilson_interval():
    lo, hi = wilson_interval(0, 5)
    assert lo == 0.0 and 0.4 < hi < 0.45  # 0/5: [0, 0.434]
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
