"""The life-cycle workflow on the acceptance cases: Bian et al.'s decision through the joint planner, Wu et al.'s tables as
sunk models, the bundled deployments, and bad or infeasible deployment files in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infscale.errors import InfeasibleError, InputError
from infscale.workflows.lifecycle import load_deploy, plan_lifecycle, run_lifecycle

BIAN2025 = {
    "name": "bian2025-decision",
    "law": {"fit": {"data": "bian2025", "law": "inference_aware", "fitter": "least_squares",
                    "fit_on": "in_main_fit_set == 1"}},
    "accuracy": {"form": "exp", "data": "gadre"},
    "hardware": {"profile": "a100-40gb-bian2025"},
    "candidates": {"family": "bian2025", "min_params": 5.0e8, "max_params": 2.0e9, "tokens": 2.9e10},
    "strategies": {"greedy": [1]},
    "deployment": {"queries": 1000, "prompt_tokens": 128, "output_tokens": 256, "batch": 1, "max_latency_s": 2.0},
}


def _write(tmp_path: Path, data: dict, name: str = "deploy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_bian2025_decision_few_queries_two_second_limit_greedy(tmp_path):
    """Bian et al.'s Morph-1B decision: the A100 profile calibrated on Bian et al., 2 s per query, greedy, 29B tokens, few
    queries: the most accurate feasible model is the 12-layer d3328x12 (loss 2.9474), latency the binding limit."""
    report = run_lifecycle(_write(tmp_path, BIAN2025), tmp_path / "out")
    best = report.best
    assert best["model"] == "d3328x12 h16" and best["model"].split("x")[1].startswith("12")
    assert best["loss"] == pytest.approx(2.9474, abs=2e-4) and best["latency_s"] <= 2.0
    assert report.binding == ["latency"]
    assert (report.n_configs, report.mode) == (572, "max_accuracy")
    assert {"lifecycle_json", "crossover_csv", "crossover_png", "frontier_png", "report_html"} <= set(report.files)
    saved = json.loads((tmp_path / "out" / "lifecycle.json").read_text())
    assert saved["best"]["model"] == "d3328x12 h16" and (tmp_path / "out" / "config.yaml").exists()


@pytest.mark.parametrize("budget", [4e12, 2e13, 1.1e14, 3e14, 1e15])
def test_wu2025_tables_with_training_sunk_match_tts_analyze(tmp_path, budget):
    """Training as a sunk cost on Wu et al.'s tables: the planner's choice at a FLOPs budget per query is the
    compute-optimal (model, strategy) of `tts analyze --wu2025` (`compute_optimal` over the same points)."""
    from infscale.tts.analysis import compute_optimal
    from infscale.workflows.lifecycle_inputs import canonical_strategy
    from infscale.workflows.wu2025_tables import load_wu2025_points

    data = {"name": "wu2025-sunk", "law": {"law": "chinchilla", "params": {"E": 1.69, "A": 406.4, "B": 410.7,
                                                                            "alpha": 0.34, "beta": 0.28}},
            "candidates": {"measured": "wu2025-math500"},
            "deployment": {"queries": 1.0e6, "cost_ceiling": budget * 1.0e6}}
    report = plan_lifecycle(load_deploy(_write(tmp_path, data)), tmp_path)
    ref = compute_optimal(load_wu2025_points("MATH500"), [budget], accounting="wu2025")[0]
    assert (report.best["model"], report.best["strategy"], report.best["n"]) == (
        ref.model, canonical_strategy(ref.strategy), ref.n)
    assert report.breakdown["train_flops"] == 0.0


def test_bundled_llm_deployment_plans_shape_strategy_and_n(tmp_path):
    report = run_lifecycle("lifecycle_llm", tmp_path / "llm", plot=False)
    assert report.mode == "min_cost" and report.best["accuracy"] >= 0.42 - 1e-9
    assert report.n_configs > 1e5 and report.best["latency_s"] <= 20.0
    assert "accuracy target" in report.binding
    assert report.curves["leave_one_size_out"]["mae_points"] < 6.0
    assert report.link["heldout"]["mae_points"] < 2.0
    assert report.breakdown["train_usd"] > 0 and report.breakdown["serve_usd"] > 0
    strategies = {r["strategy"] for r in report.crossover if r.get("feasible")}
    assert len(strategies) >= 2  # the choice of strategy changes with the query volume
    sizes = [r["n_params"] for r in report.crossover if r.get("feasible")]
    assert sizes[0] != sizes[-1]
    # trained on 3.9e10 tokens to a loss below any of the law's 27 fit runs, timed on a datasheet A100: both said
    assert any(w.startswith("extrapolation: D = ") and "27 runs the law was fitted on" in w for w in report.warnings)
    assert any(w.startswith("uncalibrated: profile 'a100-80gb'") for w in report.warnings)
    # the crossover's choices reach aspect ratios far beyond the 17.5-384 the law was fitted on: said once
    reach = [w for w in report.warnings if w.startswith("extrapolation: crossover/frontier rows reach")
             and w.quantity == "d_model/n_layers"]
    assert len(reach) == 1 and "range 17.45 to 384 of the 27 runs the law was fitted on" in reach[0]
    assert reach[0].value > 384 * 1.05 and reach[0].range == (pytest.approx(17.45, rel=1e-3), 384)


def test_infeasible_deployment_is_one_line_naming_the_constraint(tmp_path):
    data = {**BIAN2025, "deployment": {**BIAN2025["deployment"], "max_latency_s": 0.05}}
    with pytest.raises(InfeasibleError) as err:
        run_lifecycle(_write(tmp_path, data), tmp_path / "out")
    msg = str(err.value)
    assert msg.startswith("deploy.yaml: infeasible: binding constraint latency <= 0.05 s; closest feasible")
    assert "\n" not in msg


@pytest.mark.parametrize("change,expected", [
    ({"deployment": {"queries": 10}, "nonsense": 1}, "nonsense"),
    ({"strategies": {"greedy": [1], "rebase": [4]}}, "need test-time curves"),
    ({"deployment": {"queries": -1}}, "deployment.queries"),
    ({"accuracy": {"form": "exp", "data": "gadre", "loss_column": "missing"}}, "no column 'missing'"),
])
def test_bad_deployment_files_are_one_line(tmp_path, change, expected):
    data = {**BIAN2025, **change}
    with pytest.raises(InputError) as err:
        run_lifecycle(_write(tmp_path, data), tmp_path / "out")
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bundled_mini_study_crossover_and_leave_one_size_out(tmp_path):
    """The project's own mini study (measured, training paid, the reward model existing; points re-derived on
    2026-12-06 with the scheduler and the reward FLOPs charged only to the answers the reward chose): for >= 75% the
    210k-parameter policy with REBASE n = 32 read by best-of-n is cheapest until ~1.8e3 lifetime queries, then
    training the 1.08M policy and decoding greedily (79%) is; with the reward model's training paid too, the large
    greedy model wins at every volume. Leave-one-size-out, the curves miss by about 7 points on average."""
    report = run_lifecycle("lifecycle_mini", tmp_path / "mini", plot=False)
    rows = [r for r in report.crossover if r["feasible"]]
    first, last = rows[0], rows[-1]
    assert (first["model"], first["strategy"], first["n"]) == ("mini-d64x3", "rebase+best_of_n", 32)
    assert (last["model"], last["strategy"]) == ("mini-d128x4", "greedy")
    switch = next(r["queries"] for r in rows if r["changes"])
    assert 1e3 < switch < 1e4
    loso = report.curves["leave_one_size_out"]
    assert set(loso["per_size"]) == {"mini-d32x2", "mini-d64x3", "mini-d128x4"}
    assert 4.0 < loso["mae_points"] < 10.0
    assert all(v["mae_points"] < 10.0 for v in loso["per_size"].values())
    from infscale.configio import resolve_recipe

    data = yaml.safe_load(resolve_recipe("lifecycle_mini").read_text())
    data["candidates"]["prm_train_flops"] = 2.58e13  # the reward model is the largest policy's LM: train it too
    paid = plan_lifecycle(load_deploy(_write(tmp_path, data)), tmp_path)
    assert {(r["model"], r["strategy"]) for r in paid.crossover if r["feasible"]} == {("mini-d128x4", "greedy")}


def test_a_large_leave_one_size_out_error_is_said_where_sizes_are_predicted(tmp_path):
    from infscale.workflows.lifecycle import _sweep_warnings

    class Law:
        meta: dict = {}

        class law:  # noqa: N801 - the shape of a FittedLaw's form
            needs_aspect_ratio = False

    curves = {"leave_one_size_out": {"mae_points": 16.0}}
    (line,) = _sweep_warnings(Law(), [], curves, sizes_predicted=True)
    assert "leave-one-size-out error 16.0 points" in line and "testtime.pilots" in line
    assert _sweep_warnings(Law(), [], curves, sizes_predicted=False) == []


def test_an_optimum_outside_the_links_fitted_losses_carries_a_warning(tmp_path):
    """The same Bian et al. case with a link fitted (given) on losses 3.0-4.0 only: the optimum's loss 2.947 is an
    extrapolation and says so; with the link's real range (Gadre's 2.38-6.12) it does not."""
    data = {**BIAN2025, "accuracy": {"form": "exp", "data": None, "params": {"eps": 0.759, "k": 2.03, "gamma": 1.065},
                                   "loss_range": [3.0, 4.0]}}
    report = plan_lifecycle(load_deploy(_write(tmp_path, data)), tmp_path)
    assert any(w.startswith("extrapolation: the optimum's predicted loss 2.947") for w in report.warnings)
    data["accuracy"]["loss_range"] = [2.38, 6.12]
    report = plan_lifecycle(load_deploy(_write(tmp_path, data)), tmp_path)
    assert not any("accuracy link" in w for w in report.warnings)
    # the loss law's own range is another matter: a 1.9B model from runs of 78M-312M parameters
    assert any(w.startswith("extrapolation: N = 1.941e+09") for w in report.warnings)
