"""`infscale tts analyze` end to end through the console entry point: records -> tables, plots, JSON; Wu et al. tables."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from infscale.tts.core.records import Candidate, FlopsLedger, ProblemRecord


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", "tts", "analyze", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _records(rng, model, n_params, p_correct, strategy, budget, n_problems=30):
    """Synthetic run: per problem, candidates drawn from (correct, two wrong answers, unfinished)."""
    out = []
    for i in range(n_problems):
        probs = np.array([p_correct, (1 - p_correct) * 0.5, (1 - p_correct) * 0.4, (1 - p_correct) * 0.1])
        draws = rng.choice(4, size=budget, p=probs)
        cands = tuple(
            Candidate(text="...", answer=None if d == 3 else str(d), finished=bool(d != 3),
                      score=float(np.clip((0.8 if d == 0 else 0.4) + 0.1 * rng.standard_normal(), 0, 1)),
                      completion_tokens=20, correct=None if d == 3 else bool(d == 0))
            for d in draws)
        gen = 20 * budget
        ledger = FlopsLedger(policy_prefill_flops=2.0 * n_params * 30, policy_decode_flops=2.0 * n_params * gen,
                             reward_flops=2.0 * 1e6 * gen, wu2025_flops=2.0 * n_params * gen, generated_tokens=gen)
        votes = {}
        for c in cands:
            if c.answer is not None:
                votes[c.answer] = votes.get(c.answer, 0) + 1
        chosen = max(votes, key=votes.get) if votes else None
        out.append(ProblemRecord(run="t", model=model, n_params=n_params, strategy=strategy, budget=budget,
                                 problem_id=f"q{i}", gold="0", candidates=cands, answers={"majority_vote": chosen},
                                 correct={"majority_vote": chosen == "0"}, ledger=ledger))
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("tts")
    recs = _records(rng, "small", 1_000_000, 0.45, "sampling", 16) + _records(rng, "big", 8_000_000, 0.6, "sampling", 16)
    for b in (2, 4, 8):
        recs += _records(rng, "small", 1_000_000, 0.5, "rebase", b)
    (root / "run").mkdir()
    with (root / "run" / "records.jsonl").open("w") as fh:
        for r in recs:
            fh.write(json.dumps(r.to_json()) + "\n")
    return root


def test_analyze_runs_json_tables_and_plots(run_dir):
    res = _cli("run", "--out", "out", "--json", "--bootstrap", "100", cwd=run_dir)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["n_records"] == 30 * 5
    strategies = {(p["model"], p["strategy"]) for p in out["points"]}
    assert ("small", "sampling+majority_vote") in strategies and ("small", "rebase+majority_vote") in strategies
    assert ("big", "sampling+best_of_n") in strategies
    # the frontier is non-decreasing in accuracy and FLOPs
    front = out["frontier"]
    assert [p["flops_used"] for p in front] == sorted(p["flops_used"] for p in front)
    assert all(a["accuracy"] < b["accuracy"] for a, b in zip(front, front[1:], strict=False))
    # saturation: MV at n = pool equals the plug-in Theorem 1 limit
    sat = out["saturation"]["small sampling"]
    assert sat["accuracy_at_n"]["majority_vote"]["ns"][-1] == 16
    assert sat["accuracy_at_n"]["majority_vote"]["accuracy"][-1] == pytest.approx(sat["mv_limit"])
    for name in ("points.csv", "frontier.csv", "accuracy_vs_flops.png", "saturation.png", "analysis.json"):
        assert (run_dir / "out" / name).stat().st_size > 0
    assert "a" in out["size_law"] or "skipped" in out["size_law"]


def test_analyze_prints_tables(run_dir):
    res = _cli("run/records.jsonl", "--out", "out2", "--bootstrap", "50", "--no-plot", "--accounting", "wu2025",
               cwd=run_dir)
    assert res.returncode == 0, res.stderr
    assert "Pareto frontier" in res.stdout and "Compute-optimal choice per budget" in res.stdout


def test_wu2025_tables(tmp_path):
    res = _cli("--wu2025", "--json", "--out", "sb", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert all(s["holds"] or (s["holds"] is None and s["key"] == "optimal_size_law") for s in out["statements"])
    assert out["frontier"]["MATH500"][-1]["model"] == "Llemma-34B"
    assert (tmp_path / "sb" / "wu2025_math500.png").stat().st_size > 0


@pytest.mark.parametrize("args, needle", [
    (["missing.jsonl"], "missing.jsonl"),
    (["--accounting", "tokens", "--wu2025"], "--accounting"),
    ([], "--wu2025"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    res = _cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_torn_record_line_is_an_error_with_file_and_line(tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"run": 1}\n{"run": "x"}\n')
    res = _cli(str(bad), cwd=tmp_path)
    assert res.returncode == 2 and "r.jsonl:1" in res.stderr


def test_only_failed_records_is_a_clear_error(tmp_path):
    rec = ProblemRecord(run="t", model="m", n_params=10, strategy="sampling", budget=4, problem_id="q0", gold="1",
                        candidates=(), error="RuntimeError: server died")
    (tmp_path / "r.jsonl").write_text(json.dumps(rec.to_json()) + "\n")
    res = _cli("r.jsonl", cwd=tmp_path)
    assert res.returncode == 2 and "no record carries an answer" in res.stderr
