"""`infscale lifecycle` end to end through the console entry point: a saved law, the table, --json, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from infscale.laws.io import load_runs, save_fit
from infscale.laws.pipeline import run_fit


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd)


def _deploy(tmp_path, **deployment):
    law = run_fit(load_runs("bian2025"), "inference_aware", "least_squares", fit_on="in_main_fit_set == 1").law
    save_fit(law, tmp_path / "law.json")
    data = {"name": "cli-case", "law": {"path": "law.json"}, "accuracy": {"form": "exp", "data": "gadre"},
            "hardware": {"profile": "a100-40gb-bian2025", "usd_per_hour": 1.5, "train_mfu": 0.45},
            "candidates": {"family": "bian2025", "min_params": 5.0e8, "max_params": 2.0e9, "tokens": 2.9e10},
            "deployment": {"queries": 1000, "prompt_tokens": 128, "output_tokens": 256,
                           "max_latency_s": 2.0, **deployment},
            "crossover": {"queries": [10, 1.0e9], "points": 5}}
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_lifecycle_prints_the_decision_and_writes_its_files(tmp_path):
    path = _deploy(tmp_path)
    proc = run("lifecycle", str(path), "--out", str(tmp_path / "out"), "--no-plot")
    assert proc.returncode == 0, proc.stderr
    assert "Train d3328x12 h16" in proc.stdout and "binding: latency" in proc.stdout
    assert "Cost of the optimum" in proc.stdout and "USD" in proc.stdout
    saved = json.loads((tmp_path / "out" / "lifecycle.json").read_text())
    assert saved["unit"] == "USD" and saved["breakdown"]["train_usd"] > 0
    assert abs(saved["breakdown"]["train_usd"] - 1.5 * saved["breakdown"]["train_device_hours"]) < 1e-6
    proc = run("lifecycle", str(path), "--out", str(tmp_path / "out2"), "--no-plot", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["best"]["model"] == "d3328x12 h16"


def test_lifecycle_infeasible_is_one_line_with_exit_code(tmp_path):
    path = _deploy(tmp_path, accuracy_target=0.95)
    proc = run("lifecycle", str(path), "--out", str(tmp_path / "out"), "--no-plot")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "binding constraint accuracy >= 0.95" in lines[0], proc.stderr
    assert "closest feasible configuration" in lines[0]
