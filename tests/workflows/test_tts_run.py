"""`infscale tts run` (infscale.workflows.tts_run): append-only records, resume without regenerating, recorded
failures, bad input, shards, recipe names."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import infscale
from infscale.errors import InputError
from infscale.tts.core.config import load_config
from infscale.tts.core.record_files import read_problem_records, read_run
from infscale.tts.core.records import ProblemRecord
from infscale.workflows.tts_run import run_tts as run

RECIPES = Path(infscale.__file__).parent / "recipes"


def _config(tmp_path, **over):
    cfg = {
        "run": "t", "out_dir": str(tmp_path / "runs"),
        "task": {"name": "arith", "params": {"n_problems": 3, "difficulty": 3, "seed": 5}},
        "generator": {"name": "scripted", "params": {"error_rate": 0.3}},
        "reward": {"name": "verifier"},
        "strategies": [{"name": "greedy"}, {"name": "weighted_vote", "budgets": [2, 4]}, {"name": "rebase",
                                                                                         "budgets": [4]}],
        "search": {"max_step_tokens": 40},
    }
    cfg.update(over)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_writes_records_and_resumes(tmp_path):
    cfg = load_config(_config(tmp_path))
    s1 = run(cfg)
    assert (s1.written, s1.skipped, s1.failed) == (12, 0, 0)  # (1 + 2 + 1) settings x 3 problems
    path = Path(s1.records_path)
    first = path.read_text()
    recs = list(read_problem_records(path))
    assert {(r.strategy, r.budget) for r in recs} == {("greedy", 1), ("weighted_vote", 2), ("weighted_vote", 4),
                                                      ("rebase", 4)}
    assert all(r.candidates and r.ledger.generated_tokens > 0 for r in recs)
    assert (path.parent / "config.yaml").exists()
    # resume: nothing regenerated, file untouched
    s2 = run(cfg)
    assert (s2.written, s2.skipped) == (0, 12)
    assert path.read_text() == first
    # an interrupted run (torn last line) resumes and keeps every finished record
    lines = first.splitlines(keepends=True)
    path.write_text("".join(lines[:5]) + lines[5][:40])
    s3 = run(cfg)
    assert s3.written == 7
    assert len(list(read_problem_records(path))) == 12


def test_failure_is_recorded_and_run_continues(tmp_path):
    # rebase without a reward model is a config error; a generator that raises mid-run is a recorded failure
    # one unit in flight at a time, so the failing call holds one unit
    cfg = load_config(_config(tmp_path, generator={"name": "scripted", "params": {"error_rate": 0.3}},
                              batch={"max_units": 1}))
    from infscale.tts.core.generation import ScriptedArithmeticGenerator

    calls = {"n": 0}
    real = ScriptedArithmeticGenerator.generate

    def generate(self, prompts, n, params, seeds=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("server closed the connection")
        return real(self, prompts, n, params, seeds)

    ScriptedArithmeticGenerator.generate = generate
    try:
        s = run(cfg)
    finally:
        ScriptedArithmeticGenerator.generate = real
    assert s.failed == 1 and s.written == 12
    recs = list(read_problem_records(Path(s.records_path)))
    bad = [r for r in recs if r.error]
    assert len(bad) == 1 and "ConnectionError" in bad[0].error
    # the failed problem is retried on resume, nothing else
    s2 = run(cfg)
    assert (s2.written, s2.skipped) == (1, 11)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="unknown_key"):
        load_config(_config(tmp_path, unknown_key=1))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg = load_config(_config(tmp_path, task={"name": "gsm", "params": {"path": str(empty)}},
                              strategies=[{"name": "greedy"}]))
    with pytest.raises(InputError, match="empty"):
        run(cfg)
    cfg = load_config(_config(tmp_path, strategies=[{"name": "nope"}]))
    with pytest.raises(InputError, match="unknown strategy 'nope'"):
        run(cfg)


def test_records_round_trip(tmp_path):
    s = run(load_config(_config(tmp_path)))
    line = Path(s.records_path).read_text().splitlines()[0]
    rec = ProblemRecord.from_json(json.loads(line))
    assert json.loads(json.dumps(rec.to_json())) == json.loads(line)


def test_shipped_recipes_load():
    names = sorted(p.name for p in RECIPES.glob("tts_*.yaml"))
    assert "tts_arith_own.yaml" in names
    for name in names:
        load_config(RECIPES / name)


def test_cli_run_and_bad_config(tmp_path, progress_lines):
    cfg = _config(tmp_path)
    exe = [sys.executable, "-m", "infscale.cli.main"]
    out = subprocess.run([*exe, "tts", "run", str(cfg), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == 12
    # off a terminal: one progress line per unit (problem x strategy x budget), each with its ETA, on stderr
    assert progress_lines(out.stderr, "tts run t") == [(i, 12) for i in range(1, 13)]
    assert "a unit: one problem under one strategy at one budget" in out.stderr
    # resumed: one line for every unit already recorded, not one per skipped unit
    out = subprocess.run([*exe, "tts", "run", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert progress_lines(out.stderr, "tts run t") == [(12, 12)] and "12 units already recorded" in out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: x\ntask: {name: arith}\n")
    out = subprocess.run([*exe, "tts", "run", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("error:") and len(out.stderr.strip().splitlines()) == 1


def test_strategy_needing_reward_is_refused_before_running(tmp_path):
    cfg = load_config(_config(tmp_path, reward=None))
    with pytest.raises(InputError, match="'weighted_vote' needs a reward model"):
        run(cfg)
    records = tmp_path / "runs" / "t" / "records.jsonl"
    assert not records.exists() or not records.read_text()


@pytest.mark.parametrize("strategy", ["beam", "mcts", "rebase"])
def test_step_search_refuses_an_outcome_only_reward(tmp_path, strategy):
    """On gsm the exact verifier checks only the final answer: a tree search steered by it would score every unfinished
    path 0.0 and choose at random, so the pair is refused (one line, nothing written)."""
    cfg = load_config(_config(tmp_path, task={"name": "gsm", "params": {"n_problems": 2}},
                              strategies=[{"name": "greedy"}, {"name": strategy, "budgets": [2]}]))
    with pytest.raises(InputError, match=rf"strategy '{strategy}' steers by the reward of each step, but reward "
                                         r"'verifier' on task 'gsm' scores finished solutions only") as err:
        run(cfg)
    assert "\n" not in str(err.value) and not (tmp_path / "runs").exists()


def test_outcome_only_rewards_are_labelled_so():
    from infscale.tts.core.rewards import make_reward, reward_label
    from infscale.tts.core.tasks import make_task

    gsm, arith = make_task("gsm", n_problems=1), make_task("arith", n_problems=1)
    assert reward_label(make_reward("verifier", gsm)) == "verifier (outcome only)"
    assert reward_label(make_reward("verifier", arith)) == "verifier"  # arithmetic steps are checked exactly
    assert reward_label(make_reward("torch_orm", arith)) == "torch_orm (outcome only)"
    assert reward_label(make_reward("torch_prm", arith)) == "torch_prm" and reward_label(None) == "none"


def test_outcome_strategies_run_with_an_outcome_only_reward(tmp_path):
    cfg = load_config(_config(tmp_path, task={"name": "gsm", "params": {"n_problems": 2}},
                              generator={"name": "scripted"}, strategies=[{"name": "best_of_n", "budgets": [2]}]))
    summary = run(cfg)
    assert summary.written == 2 and summary.reward == "verifier (outcome only)"


def test_recipe_name_and_out(tmp_path):
    """`infscale tts run tts_arith_own` finds the bundled recipe from any directory; --out is the run directory."""
    from infscale.workflows.tts_run import load_run_config

    cfg = load_run_config("tts_arith_own").model_copy(update={"max_problems": 1})
    cfg = cfg.model_copy(update={"strategies": cfg.strategies[:2]})
    s = run(cfg, out=tmp_path / "mine", quiet=True)
    assert Path(s.records_path) == tmp_path / "mine" / "records.jsonl" and s.written == 3
    assert (tmp_path / "mine" / "config.yaml").exists()
    with pytest.raises(InputError, match="no such file, and not a bundled recipe"):
        load_run_config("no_such_recipe")


def test_shards_partition_the_units_and_analyze_merges_them(tmp_path):
    """--shard I/K runs every K-th unit into its own records file; the shards together are the whole run (text for
    text), `tts analyze` reads them as one run, and a unit in two files is refused in one line."""
    from infscale.workflows.tts_analysis import read_runs
    from infscale.workflows.tts_run import parse_shard

    cfg = load_config(_config(tmp_path))
    whole = {(r.strategy, r.budget, r.problem_id): r for r in run(cfg, out=tmp_path / "whole", quiet=True).records}
    parts = [run(cfg, out=tmp_path / "sharded", shard=(i, 3), quiet=True) for i in (1, 2, 3)]
    assert [p.written for p in parts] == [4, 4, 4]
    assert sorted(p.name for p in (tmp_path / "sharded").glob("records*.jsonl")) == [
        "records.shard-1-of-3.jsonl", "records.shard-2-of-3.jsonl", "records.shard-3-of-3.jsonl"]
    merged = read_runs([tmp_path / "sharded"])
    assert len(merged) == 12
    for r in merged:
        w = whole[(r.strategy, r.budget, r.problem_id)]
        assert [c.text for c in r.candidates] == [c.text for c in w.candidates] and r.ledger == w.ledger
    # a unit of shard 1 copied into shard 2's file: two runs mixed up
    one = (tmp_path / "sharded" / "records.shard-1-of-3.jsonl").read_text().splitlines()[0]
    with (tmp_path / "sharded" / "records.shard-2-of-3.jsonl").open("a") as fh:
        fh.write(one + "\n")
    with pytest.raises(InputError, match=r"records.shard-2-of-3.jsonl: unit .* is also in .*records.shard-1-of-3"):
        read_run(tmp_path / "sharded")
    for bad in ("0/3", "4/3", "x", "1-3"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


def test_strategy_settings_are_validated_by_their_spec(tmp_path):
    cfg = load_config(_config(tmp_path, strategies=[{"name": "rebase", "budgets": [4],
                                                     "settings": {"balance_temperature": 0}}]))
    with pytest.raises(InputError, match=r"strategies.0.settings \(rebase\): field balance_temperature"):
        run(cfg)
    cfg = load_config(_config(tmp_path, strategies=[{"name": "beam", "budgets": [4], "settings": {"widht": 2}}]))
    with pytest.raises(InputError, match=r"strategies.0.settings \(beam\): field widht: Extra inputs"):
        run(cfg)
    assert not (tmp_path / "runs").exists()
