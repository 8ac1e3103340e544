"""The life-cycle planner's test-time curves from pilots (`testtime.pilots`): three models' sampling records (greedy
plus a pool of 64), each forecast from a pilot of 8; the plan carries the forecast interval, the leave-one-size-out
error is scored against each size's measured pool, and a bad pilot is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from infscale.errors import InputError
from infscale.tts.analysis.saturation import sample_pools
from infscale.tts.core.records import Candidate, FlopsLedger, ProblemRecord
from infscale.workflows.lifecycle import run_lifecycle
from infscale.workflows.lifecycle_pilots import pilot_points


def _model(name: str, n_params: int, mean_q: float, pool: int = 64, problems: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    q = rng.beta(2 * mean_q, 2 * (1 - mean_q), problems)
    probs = np.stack([q, (1 - q) * 0.5, (1 - q) * 0.3], axis=1)
    pools = sample_pools(probs, np.zeros(problems, dtype=int), pool, random_state=seed + 1,
                         score_means=np.tile([0.7, 0.4, 0.4], (problems, 1)), score_noise=0.15)
    out = []
    for i in range(problems):
        cands = tuple(Candidate(text="", answer=None if a < 0 else str(a), finished=bool(a >= 0), correct=bool(a == 0),
                                score=float(s) if np.isfinite(s) else None) for a, s in zip(pools.answer_ids[i], pools.scores[i], strict=True))
        ledger = FlopsLedger(policy_prefill_flops=n_params * 20.0, policy_decode_flops=pool * n_params * 40.0,
                             reward_flops=pool * 1e6)
        out.append(ProblemRecord(run="pilot", model=name, n_params=n_params, strategy="weighted_vote", budget=pool,
                                 problem_id=f"t-{i}", gold="0", candidates=cands, iid=True, ledger=ledger))
        greedy_ok = bool(q[i] > 0.5)
        out.append(ProblemRecord(run="pilot", model=name, n_params=n_params, strategy="greedy", budget=1,
                                 problem_id=f"t-{i}", gold="0", iid=False,
                                 candidates=(Candidate(text="", answer="0" if greedy_ok else "1", finished=True,
                                                       correct=greedy_ok),),
                                 correct={"greedy": greedy_ok}, answers={"greedy": "0" if greedy_ok else "1"},
                                 ledger=FlopsLedger(policy_prefill_flops=n_params * 20.0,
                                                    policy_decode_flops=n_params * 40.0)))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pilots")
    records = (_model("small", 10_000, 0.25, seed=0) + _model("mid", 40_000, 0.45, seed=1)
               + _model("large", 160_000, 0.65, seed=2))
    with open(d / "records.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_json()) + "\n")
    return d


def test_each_model_is_forecast_from_its_pilot_and_measured_on_its_pool(runs):
    pp = pilot_points(str(runs), Path("."), pilot=8, n_max=256)
    assert pp.pool_size == {"large": 64, "mid": 64, "small": 64}
    assert set(pp.forecast.strategy) == {"greedy", "majority_vote", "weighted_vote", "best_of_n"}
    assert max(pp.forecast.n) == 256
    for m, err in pp.own_error_points.items():
        assert err < 5.0, (m, err)
    beyond = np.array(pp.forecast.n) > 64
    assert np.all(np.isnan(pp.measured[beyond])) and np.all(np.isfinite(pp.measured[~beyond]))
    assert np.all(np.array(pp.low.accuracy) <= np.array(pp.high.accuracy) + 1e-12)


def _deploy(tmp_path: Path, runs: Path, **candidates) -> Path:
    data = {"name": "pilots", "law": {"law": "chinchilla", "params": {"E": 1.69, "A": 406.4, "B": 410.7,
                                                                      "alpha": 0.34, "beta": 0.28}},
            "testtime": {"pilots": str(runs), "pilot": 8},
            "candidates": {"measured": "pilots", "train_tokens": 1.0e6, **candidates},
            "strategies": {"greedy": [1], "majority_vote": [4, 16, 64], "weighted_vote": [4, 16, 64],
                           "best_of_n": [4, 16, 64]},
            "deployment": {"queries": 1000, "accuracy_target": 0.6}}
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_plan_chooses_among_forecast_curves_and_carries_their_interval(tmp_path, runs):
    report = run_lifecycle(_deploy(tmp_path, runs), tmp_path / "out", plot=False)
    best = report.best
    lo, hi = best["accuracy_interval"]
    assert lo <= best["accuracy"] <= hi and best["accuracy"] >= 0.6
    info = report.curves
    assert info["pilots"]["pilot"] == 8 and set(info["pilots"]["own_error_points"]) == {"small", "mid", "large"}
    loso = info["leave_one_size_out"]
    assert np.isfinite(loso["mae_points"]) and all(v["n_points"] > 0 for v in loso["per_size"].values())


def test_a_pilot_larger_than_a_pool_is_one_line(tmp_path, runs):
    path = _deploy(tmp_path, runs)
    data = yaml.safe_load(path.read_text())
    data["testtime"]["pilot"] = 100
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"testtime.pilot: 100 samples, but model 'large' .* has 64 per problem"):
        run_lifecycle(path, tmp_path / "out2", plot=False)
    assert not (tmp_path / "out2").exists()


def test_points_and_pilots_together_are_refused(tmp_path, runs):
    path = _deploy(tmp_path, runs)
    data = yaml.safe_load(path.read_text())
    data["testtime"]["points"] = "mini"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="give points or pilots, not both"):
        run_lifecycle(path, tmp_path / "out3", plot=False)
