"""A tts run config is checked completely before any work: bad search settings, budgets, strategies and problem
files are one line naming the field, and nothing is written."""

from __future__ import annotations

import json

import pytest
import yaml

from infscale.errors import InputError
from infscale.tts.core.config import load_config
from infscale.workflows.tts_run import run_tts as run


def _write(tmp_path, **over):
    cfg = {"run": "t", "out_dir": str(tmp_path / "runs"),
           "task": {"name": "arith", "params": {"n_problems": 2, "difficulty": 2}},
           "generator": {"name": "scripted"}, "reward": {"name": "verifier"},
           "strategies": [{"name": "greedy"}, {"name": "rebase", "budgets": [2]}]}
    for key, value in over.items():
        if key == "search":
            cfg["search"] = value
        else:
            cfg[key] = value
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("over, field", [
    ({"search": {"temperature": -1}}, "search.temperature"),
    ({"search": {"temperature": float("nan")}}, "search.temperature"),
    ({"search": {"top_p": 5}}, "search.top_p"),
    ({"search": {"top_p": 0}}, "search.top_p"),
    ({"search": {"max_tokens": 0}}, "search.max_tokens"),
    ({"search": {"max_step_tokens": 0}}, "search.max_step_tokens"),
    ({"search": {"rebase_temperature": 0.2}}, "search.rebase_temperature"),  # now rebase's own setting
    ({"search": {"depth_cap": 0}}, "search.depth_cap"),
    ({"batch": {"max_rows": 0}}, "batch.max_rows"),
    ({"batch": {"max_units": -1}}, "batch.max_units"),
    ({"batch": {"max_kv_bytes": float("inf")}}, "batch.max_kv_bytes"),
    ({"workers": 0}, "workers"),
    ({"strategies": [{"name": "rebase", "settings": [1]}]}, "strategies.0.settings"),
    ({"search": {"bogus": 1}}, "search.bogus"),
    ({"strategies": []}, "strategies"),
    ({"strategies": [{"name": "sampling", "budgets": []}]}, "strategies.0.budgets"),
    ({"strategies": [{"name": "sampling", "budgets": [0]}]}, "strategies.0.budgets.0"),
    ({"strategies": [{"name": "sampling", "budgets": [10 ** 12]}]}, "strategies.0.budgets.0"),
    ({"max_problems": -1}, "max_problems"),
    ({"max_problems": 0}, "max_problems"),
    ({"run": "../escape"}, "run"),
])
def test_bad_settings_are_one_line_naming_the_field(tmp_path, over, field):
    with pytest.raises(InputError) as err:
        load_config(_write(tmp_path, **over))
    msg = str(err.value)
    assert f"c.yaml: field {field}:" in msg and "\n" not in msg


@pytest.mark.parametrize("strategy, settings, field", [
    ("rebase", {"balance_temperature": 0}, "balance_temperature"),
    ("beam", {"width": 0}, "width"),
    ("mcts", {"c": float("inf")}, "c"),
    ("mcts", {"root_width": 0}, "root_width"),
    ("particle_filter", {"resample_temperature": -1}, "resample_temperature"),
    ("sampling", {"anything": 1}, "anything"),
])
def test_bad_strategy_settings_name_the_entry_and_field(tmp_path, strategy, settings, field):
    cfg = load_config(_write(tmp_path, strategies=[{"name": strategy, "budgets": [2], "settings": settings}]))
    with pytest.raises(InputError) as err:
        run(cfg)
    assert f"strategies.0.settings ({strategy}): field {field}:" in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_unknown_strategy_or_missing_reward_writes_nothing(tmp_path):
    cfg = load_config(_write(tmp_path, strategies=[{"name": "nope"}]))
    with pytest.raises(InputError, match="unknown strategy 'nope'"):
        run(cfg)
    cfg = load_config(_write(tmp_path, reward=None))
    with pytest.raises(InputError, match="needs a reward model"):
        run(cfg)
    assert not (tmp_path / "runs").exists()


def test_duplicate_problem_ids_are_refused_before_any_work(tmp_path):
    problems = tmp_path / "p.jsonl"
    rows = [{"problem_id": "q1", "question": "1+1?", "answer": "#### 2"}, {"problem_id": "q1", "question": "2+2?",
                                                                       "answer": "#### 4"}]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(_write(tmp_path, task={"name": "gsm", "params": {"path": str(problems)}},
                             strategies=[{"name": "greedy"}]))
    with pytest.raises(InputError, match=r"duplicate problem ids \['q1'\]"):
        run(cfg)
    assert not (tmp_path / "runs").exists()
