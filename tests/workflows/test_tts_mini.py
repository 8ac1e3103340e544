"""Wu et al. 2025 (REBASE) in miniature (`infscale tts mini`): the bundled recipe, recipe validation, the verdicts on hand-built points,
and a tiny study end to end (seconds: 3 policies and a PRM trained for 3 steps) with resume."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from infscale.errors import InputError
from infscale.tts.analysis import OperatingPoint
from infscale.workflows.tts_mini import run_study, verdicts
from infscale.workflows.tts_mini_config import DEFAULT_RECIPE, MiniStudyConfig, load_mini_config

TINY = {
    "name": "tiny",
    "threads": 1,
    "train": {"context_length": 64, "min_difficulty": 2, "max_difficulty": 2, "batch_size": 8, "warmup_steps": 1},
    "policies": [
        {"name": "p16", "d_model": 16, "n_layers": 1, "n_heads": 2, "max_steps": 3},
        {"name": "p24", "d_model": 24, "n_layers": 1, "n_heads": 2, "max_steps": 3},
        {"name": "p32", "d_model": 32, "n_layers": 2, "n_heads": 2, "max_steps": 3},
    ],
    # fine-tuned from p16 at a learning rate so small that 3 steps leave it at p16's weights
    "prm": {"name": "prm16", "d_model": 16, "n_layers": 1, "n_heads": 2, "max_steps": 3,
            "lr": 1e-7, "init_from": "p16"},
    "task": {"difficulty": 2, "n_problems": 2, "seed": 7},
    "strategies": [{"name": "greedy"}, {"name": "sampling", "budgets": [4]}, {"name": "beam", "budgets": [2, 4]},
                   {"name": "mcts", "budgets": [2, 4]}, {"name": "rebase", "budgets": [2, 4]}],
    "search": {"max_tokens": 24, "max_step_tokens": 8, "depth_cap": 3},
    "analysis": {"n_bootstrap": 50, "reward_aucs": [0.7, 1.0]},
}


def _write(tmp_path: Path, data: dict, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ----- the bundled recipe --------------------------------------------------------------------------------------------
def test_bundled_recipe_is_a_three_size_study_whose_context_holds_every_path():
    from infscale.tts.own_models.tokenizer import CharTokenizer
    from infscale.tts.own_models.train import small_shape
    from infscale.workflows.tts_mini import train_config

    cfg = load_mini_config(None)
    assert load_mini_config("wu2025_mini") == cfg == load_mini_config(DEFAULT_RECIPE)
    sizes = [small_shape(train_config(cfg, p), CharTokenizer().vocab_size).n_params for p in cfg.policies]
    assert len(sizes) >= 3 and sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert sizes[-1] / sizes[0] >= 10  # a real spread of sizes
    # the same training data and steps for every policy: only the size differs
    assert len({p.max_steps for p in cfg.policies}) == 1
    # the PRM reads the largest policy's likelihoods, fitted on every policy's samples; budgets in steps, not seconds
    assert cfg.prm.likelihood_of == cfg.policies[-1].name and cfg.prm.n_problems >= 100
    assert sorted(cfg.analysis.reward_aucs) == [0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
    assert {s.name for s in cfg.strategies} >= {"greedy", "sampling", "beam", "mcts", "rebase"}
    assert all(len(s.budgets) >= 3 for s in cfg.strategies if s.name in ("beam", "mcts", "rebase"))
    # prompt "d op op op\n" + BOS = 1 + 3 x difficulty + 2 tokens; paths of up to 10 steps x 32
    assert cfg.max_prompt_tokens() == 3 * cfg.task.difficulty + 3
    assert cfg.max_prompt_tokens() + cfg.max_path_tokens() <= cfg.train.context_length


def test_quick_version_shrinks_every_budget():
    cfg = load_mini_config(None)
    q = cfg.quick()
    assert q.name == "wu2025_mini-quick" and q.task.n_problems == 20
    # the same models, trained for the same steps (a step budget: the result does not depend on the machine's load),
    # on problems no harder than the evaluation's
    assert q.policies == cfg.policies
    assert q.train.max_difficulty == q.task.difficulty == cfg.task.difficulty < cfg.train.max_difficulty
    assert q.train.model_dump(exclude={"max_difficulty"}) == cfg.train.model_dump(exclude={"max_difficulty"})
    assert [s.budgets for s in q.strategies if s.name == "rebase"] == [[4, 8]]
    assert q.prm.n_problems == 64 and q.analysis.reward_aucs == [0.95, 1.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra_key=1), "extra_key"),
        (lambda d: d["train"].update(lr_typo=1), "lr_typo"),
        (lambda d: d["train"].update(context_length=32), "context_length 32 is too short.*needs 33"),
        (lambda d: d.update(policies=d["policies"][:1]), "at least two model sizes"),
        (lambda d: d["strategies"].append({"name": "tree_of_thought"}), "unknown strategy 'tree_of_thought'"),
        (lambda d: d["analysis"].update(small_strategy="bon+weighted_vote"), "analysis.small_strategy"),
        (lambda d: d["prm"].update(init_from="p99"), "prm.init_from: 'p99' is not a policy"),
        (lambda d: d["prm"].update(init_from="p32"), "prm.init_from: policy 'p32' has another shape"),
        (lambda d: d["policies"][1].update(init_from="p16"), "init_from is for the PRM"),
    ],
)
def test_bad_recipes_are_one_line_errors_naming_the_field(tmp_path, change, message):
    data = json.loads(json.dumps(TINY))
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=message) as err:
        load_mini_config(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# ----- verdicts on hand-built points ---------------------------------------------------------------------------------
def _pt(model, n_params, strategy, n, flops, wu2025, acc):
    return OperatingPoint(model=model, n_params=n_params, strategy=strategy, n=n, flops=flops, wu2025_flops=wu2025,
                          accuracy=acc)


def test_verdicts_compare_within_the_larger_models_flops():
    pts = [
        _pt("L", 100, "sampling+majority_vote", 1, 10.0, 5.0, 0.50),
        _pt("L", 100, "sampling+majority_vote", 4, 40.0, 20.0, 0.60),
        _pt("L", 100, "sampling+weighted_vote", 4, 40.0, 20.0, 0.99),  # another aggregation: ignored
        _pt("S", 10, "rebase+weighted_vote", 4, 12.0, 2.0, 0.55),
        _pt("S", 10, "rebase+weighted_vote", 8, 30.0, 4.0, 0.60),
        _pt("S", 10, "rebase+majority_vote", 8, 1.0, 1.0, 0.99),  # another aggregation: ignored
    ]
    ours = verdicts(pts, "ours", "rebase+weighted_vote", "sampling+majority_vote")
    # L n=1 costs 10 (ours): no S point that cheap; L n=4 (40): S n=8 (30 FLOPs, 0.60) ties 0.60
    assert [(v.large_n, v.outcome, v.small_n) for v in ours] == [(1, "none", None), (4, "tie", 8)]
    wu2025 = verdicts(pts, "wu2025", "rebase+weighted_vote", "sampling+majority_vote")
    # Wu et al. FLOPs: at 5 S n=4 (2 FLOPs, 0.55) and n=8 (4, 0.60) fit -> 0.60 > 0.50; at 20 -> 0.60 ties 0.60
    assert [(v.large_n, v.outcome, v.small_n, v.small_flops) for v in wu2025] == [(1, "small", 8, 4.0),
                                                                                   (4, "tie", 8, 4.0)]
    assert all(v.small == "S" and v.large == "L" for v in ours + wu2025)
    # the smaller side losing
    worse = [p if p.model == "L" else _pt("S", 10, p.strategy, p.n, p.flops, p.wu2025_flops, 0.1) for p in pts]
    assert {v.outcome for v in verdicts(worse, "wu2025", "rebase+weighted_vote", "sampling+majority_vote")} == {"large"}
    # a model is never compared with itself or a larger one
    assert verdicts([p for p in pts if p.model == "L"], "ours", "rebase+weighted_vote", "sampling+majority_vote") == []


def test_crossover_finds_the_least_auc_from_which_the_smaller_model_wins():
    from dataclasses import replace

    from infscale.workflows.tts_mini import crossover_rows

    cfg = MiniStudyConfig.model_validate(TINY)
    large = [_pt("L", 100, "sampling+majority_vote", n, 10.0 * n, 5.0 * n, 0.5) for n in (1, 2)]
    def small(acc):  # S's REBASE at a reward of some quality: cheap enough under every accounting
        return [replace(_pt("S", 10, "rebase+weighted_vote", 4, 5.0, 1.0, acc), kv_read_bytes=0.0)]
    by_auc = {0.6: small(0.3), 0.8: small(0.5), 0.9: small(0.7), 1.0: small(0.9)}
    pts = [replace(p, flops_per_byte=100.0) for p in large]
    by_auc = {a: [replace(p, flops_per_byte=100.0) for p in ps] for a, ps in by_auc.items()}
    rows, at = crossover_rows(pts, by_auc, cfg.analysis.small_strategy, cfg.analysis.large_strategy)
    assert at == {"ours": 0.9, "wu2025": 0.9, "memory": 0.9}
    gap = {r["reward_auc"]: r["mean_gap_points"] for r in rows if r["accounting"] == "ours"}
    assert gap == pytest.approx({0.6: -20.0, 0.8: 0.0, 0.9: 20.0, 1.0: 40.0})
    # a win at 0.8 that is lost again at 0.9 does not count as the crossover
    by_auc[0.8], by_auc[0.9] = by_auc[0.9], by_auc[0.8]
    assert crossover_rows(pts, by_auc, cfg.analysis.small_strategy, cfg.analysis.large_strategy)[1]["ours"] == 1.0


# ----- a tiny study end to end ---------------------------------------------------------------------------------------
def test_tiny_study_end_to_end_and_resume(tmp_path, progress_lines):
    recipe = _write(tmp_path, TINY)
    out = tmp_path / "study"
    proc = subprocess.run([sys.executable, "-m", "infscale.cli.main", "tts", "mini", str(recipe), "--out", str(out),
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report == json.loads((out / "report.json").read_text())
    assert "prm prm16: training" in proc.stderr
    # off a terminal: one progress line per training step and per unit of every strategy run, each with its ETA
    for name, d, layers in (("p16", 16, 1), ("p24", 24, 1), ("p32", 32, 2)):
        assert progress_lines(proc.stderr, f"train policy d{d}x{layers}") == [(1, 3), (2, 3), (3, 3)]
        units = progress_lines(proc.stderr, f"tts run {name}")
        assert [u for u, _ in units] == list(range(1, 17)) and {t for _, t in units} == {16}  # 8 settings x 2

    # every strategy and budget ran on every policy, on every problem
    from infscale.tts.core.record_files import read_problem_records

    cfg = MiniStudyConfig.model_validate(TINY)
    expected = {("greedy", 1), ("sampling", 4)} | {(s, b) for s in ("beam", "mcts", "rebase") for b in (2, 4)}
    n_params = {}
    for p in cfg.policies:
        recs = list(read_problem_records(out / "runs" / p.name / "records.jsonl"))
        assert len(recs) == len(expected) * 2 and all(r.error is None for r in recs)
        assert {(r.strategy, r.budget) for r in recs} == expected
        n_params[p.name] = recs[0].n_params
        # tree search spends more FLOPs at a larger budget (mean over the problems)
        for s in ("beam", "mcts", "rebase"):
            mean = {b: sum(r.ledger.total_flops for r in recs if (r.strategy, r.budget) == (s, b)) / 2 for b in (2, 4)}
            assert mean[4] > mean[2] > 0, (p.name, s, mean)
    assert n_params["p16"] < n_params["p24"] < n_params["p32"]
    assert [m["n_params"] for m in report["models"]] == [n_params[k] for k in ("p16", "p24", "p32")]
    assert all(m["steps"] == 3 and not m["reused"] for m in report["models"])
    assert all(0.0 <= m["greedy_accuracy"] <= 1.0 for m in report["models"])
    assert 0.0 <= report["prm"]["step_auc"] <= 1.0 and report["prm"]["steps"] == 3
    import torch

    prm = torch.load(out / "models" / "prm16.pt", weights_only=True)
    base = torch.load(out / "models" / "p16.pt", weights_only=True)
    assert prm["kind"] == "prm" and prm["extra"]["init_from"] == str(out / "models" / "p16.pt")
    assert max(float((prm["state_dict"][k] - v).abs().max()) for k, v in base["state_dict"].items()) < 1e-5

    # verdicts: every (larger model's MV point n = 1, 2, 4) x (each smaller model), under both accountings
    vs = report["verdicts"]
    pairs = {("p24", "p16"), ("p32", "p16"), ("p32", "p24")}
    for acc in ("ours", "wu2025", "memory"):
        mine = [v for v in vs if v["accounting"] == acc]
        assert sorted((v["large"], v["small"], v["large_n"]) for v in mine) == sorted(
            (lg, sm, n) for lg, sm in pairs for n in (1, 2, 4))
        assert sum(report["counts"][acc].values()) == len(mine)
        for v in mine:
            assert v["large_n_params"] > v["small_n_params"]
            if v["outcome"] == "none":
                assert v["small_flops"] is None
            else:
                assert v["small_flops"] <= v["large_flops"]
                assert v["outcome"] == ("small" if v["small_accuracy"] > v["large_accuracy"] else
                                        "tie" if v["small_accuracy"] == v["large_accuracy"] else "large")
        # the larger model's majority-vote FLOPs grow with n (subsampled pool: n / M of the decode and PRM FLOPs)
        for lg in ("p24", "p32"):
            f = [v["large_flops"] for v in sorted(mine, key=lambda v: v["large_n"]) if v["large"] == lg]
            assert f == sorted(f) and f[0] < f[-1]
        front = report["frontier"][acc]
        assert front and all(a["flops_used"] <= b["flops_used"] for a, b in pairwise(front))
        assert all(a["accuracy"] < b["accuracy"] for a, b in pairwise(front))
        assert Path(report["figures"][acc]).stat().st_size > 10_000
    assert (out / "points.csv").read_text().count("\n") > 20
    # the memory accounting: Wu et al.'s FLOPs + the KV bytes read at the A100's FLOPs per byte, so never below Wu et al.'s
    assert report["flops_per_byte"] == pytest.approx(312e12 / 2.039e12, rel=0.01)
    mem = {(v["large"], v["large_n"]): v["large_flops"] for v in vs if v["accounting"] == "memory"}
    sb = {(v["large"], v["large_n"]): v["large_flops"] for v in vs if v["accounting"] == "wu2025"}
    assert all(mem[k] > sb[k] for k in sb)

    # the PRM-quality crossover: the smaller policies' REBASE rerun with a noisy verifier of each AUC
    rows = report["crossover"]
    assert sorted((r["reward_auc"], r["accounting"]) for r in rows) == sorted(
        (a, acc) for a in (0.7, 1.0) for acc in ("ours", "wu2025", "memory"))
    for r in rows:
        assert r["small"] + r["tie"] + r["large"] + r["none"] == 9 and r["decided"] == 9 - r["none"]
    for name in ("p16", "p24"):
        recs = list(read_problem_records(out / "crossover" / f"{name}-auc0.7" / "records.jsonl"))
        assert {(r.strategy, r.budget) for r in recs} == {("rebase", 2), ("rebase", 4)}
        assert {r.reward for r in recs} == {"noisy_verifier"} and all(r.ledger.reward_flops > 0 for r in recs)
    assert not (out / "crossover" / "p32-auc0.7").exists()  # the largest model is never the smaller side
    assert set(report["crossover_at"]) == {"ours", "wu2025", "memory"}
    assert Path(report["figures"]["crossover"]).stat().st_size > 10_000
    auc = report["prm"]["outcome_auc_on_samples"]  # None: 3 training steps leave no correct sample to rank
    assert auc is None or 0.0 <= auc <= 1.0
    assert yaml.safe_load((out / "config.yaml").read_text())["name"] == "tiny"

    # resume: checkpoints and records are reused, nothing is regenerated
    files = sorted((out / "runs").glob("*/records.jsonl")) + sorted((out / "crossover").glob("*/records.jsonl"))
    before = {f: f.read_text() for f in files}
    again = run_study(cfg, out, log=lambda _: None, plot=False)
    assert all(m["reused"] for m in again.models)
    assert before == {f: f.read_text() for f in files}
    assert again.crossover == report["crossover"]
    assert [v.outcome for v in again.verdicts] == [v["outcome"] for v in vs]

    # a checkpoint trained with other settings is never mixed in silently
    changed = json.loads(json.dumps(TINY))
    changed["policies"][0]["max_steps"] = 4
    with pytest.raises(InputError, match="p16.pt: a policy checkpoint trained with other settings"):
        run_study(MiniStudyConfig.model_validate(changed), out, log=lambda _: None, plot=False)


def test_bundled_name_resolves_beside_a_directory_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "wu2025_mini").mkdir()  # e.g. an output directory named after the recipe
    monkeypatch.chdir(tmp_path)
    assert load_mini_config("wu2025_mini").name == "wu2025_mini"
    with pytest.raises(InputError, match="no_such_recipe: no such file, and not a bundled recipe"):
        load_mini_config("no_such_recipe")
