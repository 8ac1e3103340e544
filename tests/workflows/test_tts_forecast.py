"""`infscale tts forecast`: from the records of a sampling run, forecast from a pilot, priced with the run's FLOPs
ledger, measured on the whole pool where it holds n samples; bad inputs are one line with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.tts.analysis.saturation import sample_pools
from infscale.tts.core.records import Candidate, FlopsLedger, ProblemRecord
from infscale.workflows.tts_forecast import forecast_records


def _records(pool: int = 64, problems: int = 120, scored: bool = True, model: str = "m", seed: int = 0):
    rng = np.random.default_rng(seed)
    q = rng.beta(0.8, 0.8, problems)
    probs = np.stack([q, (1 - q) * 0.6, (1 - q) * 0.3], axis=1)
    pools = sample_pools(probs, np.zeros(problems, dtype=int), pool, random_state=seed + 1,
                         score_means=np.tile([0.7, 0.4, 0.4], (problems, 1)), score_noise=0.15)
    out = []
    for i in range(problems):
        cands = tuple(Candidate(text="", answer=None if a < 0 else str(a), finished=a >= 0, correct=bool(a == 0),
                                score=float(s) if scored and np.isfinite(s) else None)
                      for a, s in zip(pools.answer_ids[i], pools.scores[i], strict=True))
        out.append(ProblemRecord(run="r", model=model, n_params=1000, strategy="weighted_vote", budget=pool,
                                 problem_id=f"t-{i}", gold="0", candidates=cands, iid=True,
                                 ledger=FlopsLedger(policy_prefill_flops=1e6, policy_decode_flops=pool * 2e5,
                                                    reward_flops=pool * 1e5)))
    return out


def test_forecast_from_a_pilot_is_checked_against_the_whole_pool(tmp_path):
    rep = forecast_records(_records(), tmp_path / "out", pilot=8, n_max=256, target=0.8, n_bootstrap=200)
    assert rep.pool_size == 64 and rep.pilot == 8 and rep.aggregations == ["pass", "majority_vote", "weighted_vote",
                                                                           "best_of_n"]
    for agg in ("pass", "majority_vote", "best_of_n"):
        v = rep.validation[agg]
        assert v["n_points"] > 20 and v["mae_points"] < 4.0, (agg, v)
    rows = [r for r in rep.rows if r["aggregation"] == "pass"]
    assert rows[-1]["n"] == 256 and rows[-1]["measured"] is None  # beyond the pool: forecast only
    assert rows[0]["flops_per_problem"] == pytest.approx(1e6 + 2e5)
    scored = next(r for r in rep.rows if r["aggregation"] == "best_of_n" and r["n"] == 4)
    assert scored["flops_per_problem"] == pytest.approx(1e6 + 4 * 3e5)
    t = rep.targets["pass"]
    assert t["n"] is not None and t["low"] <= t["n"] and t["measured_n"] is not None
    for name in ("forecast.json", "forecast.csv", "forecast.png"):
        assert (tmp_path / "out" / name).is_file()
    assert json.loads((tmp_path / "out" / "forecast.json").read_text())["pilot"] == 8


@pytest.mark.parametrize("kwargs, records, message", [
    ({"pilot": 100, "n_max": 256}, None, r"--pilot 100: the runs hold 64 samples per problem"),
    ({"pilot": 8, "n_max": 64, "aggregations": ["best_of_n"]}, "unscored",
     r"--aggregation best_of_n needs reward scores and the records of weighted_vote n=64 carry none"),
    ({"pilot": 8, "n_max": 64}, "two models", r"records of 2 models \(a, b\): forecast one model at a time"),
    ({"pilot": 8, "n_max": 64, "aggregations": ["mode"]}, None, r"--aggregation 'mode': expected one of"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, kwargs, records, message):
    recs = {None: _records(problems=30), "unscored": _records(problems=30, scored=False),
            "two models": _records(problems=10, model="a") + _records(problems=10, model="b", seed=5)}[records]
    with pytest.raises(InputError, match=message):
        forecast_records(recs, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
