"""A strategy is one file and one registration: a plugin outside the package (a real distribution on sys.path with
an ``infscale.plugins`` entry point) registers a search, and `tts run`, `tts analyze` and `lifecycle` use it with no
edit to infscale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import yaml

PLUGIN = '''
"""Step-level greedy search: at every depth the best open path (by its last step's reward) gets ``budget``
children; the search follows the best child until it finishes."""

from pydantic import Field

from infscale.configio import Strict
from infscale.tts.core.spec import STRATEGIES, StrategySpec


class StepGreedySettings(Strict):
    keep: int = Field(1, ge=1)


def step_greedy(ctx):
    frontier = yield from ctx.expand([ctx.root()], [ctx.budget])
    done = []
    while frontier:
        done += [nd for nd in frontier if nd.terminal]
        open_nodes = sorted((nd for nd in frontier if not nd.terminal), key=lambda nd: -nd.reward)
        if not open_nodes:
            break
        best = open_nodes[: ctx.options.keep]
        frontier = yield from ctx.expand(best, [ctx.budget] * len(best))
    return [ctx.node_candidate(nd) for nd in done]


def register():
    STRATEGIES.register("step_greedy", StrategySpec(
        name="step_greedy", label="step-greedy search", search=step_greedy, needs_reward=True, step_scored=True,
        reward_steers=True, settings=StepGreedySettings))
'''


def _plugin(root) -> dict[str, str]:
    (root / "step_greedy_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "step_greedy_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: step-greedy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infscale.plugins]\nstep_greedy = step_greedy_plugin:register\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


def _cli(env, *args):
    out = subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_a_plugin_strategy_runs_through_tts_run_analyze_and_lifecycle(tmp_path):
    env = _plugin(tmp_path)
    cfg = {"run": "plug", "out_dir": str(tmp_path / "runs"), "model_name": "scripted",
           "task": {"name": "arith", "params": {"n_problems": 6, "difficulty": 3, "seed": 1}},
           "generator": {"name": "scripted", "params": {"error_rate": 0.4}},
           "reward": {"name": "noisy_verifier", "params": {"auc": 0.9, "cost_as": "bundled"}},
           "strategies": [{"name": "greedy"}, {"name": "weighted_vote", "budgets": [4]},
                          {"name": "step_greedy", "budgets": [2, 4], "settings": {"keep": 1}}],
           "search": {"max_step_tokens": 40}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    run = json.loads(_cli(env, "tts", "run", str(tmp_path / "run.yaml"), "--json").stdout)
    assert run["failed"] == 0 and run["written"] == 6 * 4
    row = {(r["strategy"], r["budget"]): r for r in run["rows"]}[("step_greedy", 4)]
    assert row["label"] == "step-greedy search" and row["problems"] == 6

    # tts analyze: the plugin's points carry its label, and they are read without the plugin (records say it all)
    _cli(env, "tts", "analyze", str(tmp_path / "runs" / "plug"), "--out", str(tmp_path / "an"), "--bootstrap", "50",
         "--no-plot")
    bare = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    _cli(bare, "tts", "analyze", str(tmp_path / "runs" / "plug"), "--out", str(tmp_path / "an-bare"),
         "--bootstrap", "50", "--no-plot")
    points = (tmp_path / "an" / "points.csv").read_text()
    assert "step_greedy+weighted_vote" in points and "step-greedy search + weighted vote" in points
    assert (tmp_path / "an-bare" / "points.csv").read_text() == points

    # lifecycle: the plugin's name is a strategy of the deployment, planned from its measured points
    deploy = {"name": "plug", "law": {"law": "chinchilla", "params": {"E": 1.69, "A": 406.4, "B": 410.7,
                                                                       "alpha": 0.34, "beta": 0.28}},
              "testtime": {"points": str(tmp_path / "an" / "points.csv")},
              "candidates": {"measured": str(tmp_path / "an" / "points.csv"), "train_tokens": 1.0e6},
              "strategies": {"greedy": [1], "weighted_vote": [4], "step_greedy": [2, 4]},
              "deployment": {"queries": 1000, "cost_ceiling": 1.0e20}}
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump(deploy))
    out = json.loads(_cli(env, "lifecycle", str(tmp_path / "deploy.yaml"), "--out", str(tmp_path / "lc"),
                          "--json").stdout)
    chosen = {r["strategy"] for r in out["frontier"]} | {out["best"]["strategy"]}
    considered = json.loads((tmp_path / "lc" / "lifecycle.json").read_text())
    assert "step_greedy" in json.dumps(considered)
    assert chosen  # a plan came out
    # without the plugin, the name is unknown to the planner: one line listing the known strategies
    res = subprocess.run([sys.executable, "-m", "infscale.cli.main", "lifecycle", str(tmp_path / "deploy.yaml"),
                          "--out", str(tmp_path / "lc2")], capture_output=True, text=True, env=bare, timeout=300)
    assert res.returncode == 2 and "unknown strategy 'step_greedy'" in res.stderr
