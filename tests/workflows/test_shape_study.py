"""`infscale study`: the bundled recipe's quick block end to end (train, time, fit own laws, hold out the largest size,
noise floor, calibrate, plan, verify), its config errors, and kill -9 + resume writing the runs table an uninterrupted
study writes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infscale.configio import resolve_recipe
from infscale.errors import InputError
from infscale.jsonsafe import finite
from infscale.workflows.shape_study import RUN_COLUMNS, TIMED_COLUMNS, run_study
from infscale.workflows.shape_study_config import load_study, parse_study, study_sweep

RECIPE = resolve_recipe("shape_study")


def _quick(cache: Path, **over):
    cfg = load_study(RECIPE, quick=True)
    data = cfg.model_dump(mode="json")
    data["base"]["data"]["cache_dir"] = str(cache)
    data.update(over)
    return parse_study(data, "test")


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    cfg = _quick(root / "tokens")
    said = []
    result = run_study(cfg, root / "out", say=lambda step, msg: said.append(step))
    return cfg, result, root / "out", said


def test_quick_study_end_to_end(quick_study):
    cfg, r, out, said = quick_study
    assert said[:2] == ["train", "latency"] and "fit" in said and "verify" in said
    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert [tuple(rows[0])] == [RUN_COLUMNS] and len(rows) == r.n_runs == 15
    assert {row["group"] for row in rows if row["held_out"] == "True"} == {"q3"}
    # equal D within a size (Bian et al.'s per-size comparison), the seeds of the noise group, a standard error per loss
    q2 = [row for row in rows if row["group"] == "q2"]
    assert len({row["D"] for row in q2}) == 1 and sorted({row["seed"] for row in q2}) == ["0", "1"]
    assert all(0 < float(row["loss_se"]) < 0.05 * float(row["loss"]) and float(row["decode_s"]) != 0 for row in rows)
    assert [f["law"] for f in r.fits] == ["chinchilla", "inference_aware", "aspect_optimum"]
    assert r.preferred_law in {"inference_aware", "aspect_optimum"}
    for f in r.fits:
        assert f["n_held_out"] == 3 and f["n_fit"] == 9  # the primary seed only; q3 never in a fit
        assert f["held_out"]["mse"]["low"] <= f["held_out"]["mse"]["high"]
        assert [s["group"] for s in f["size_spearman"]] == (["q1", "q2", "q3"] if f["shape_aware"] else [])
    assert r.noise["group"] == "q2" and r.noise["n_seeds"] == 2 and r.noise["seed_std"] > 0
    law = json.loads((out / "law.json").read_text())
    assert law["law"] == r.preferred_law and law["meta"]["fit_range"]["n_runs"] == 9
    assert r.latency["n_shapes"] == 9 and Path(r.latency["profile_json"]).is_file()
    v = r.verify
    assert [row["role"] for row in v["rows"]] == ["recommended", "baseline"]
    rec, base = v["rows"]
    assert rec["n_tokens"] == base["n_tokens"] == 240000 and rec["shape"] != base["shape"]
    assert rec["aspect_ratio"] > base["aspect_ratio"] and v["speedup"] > 0
    for name in ("heldout_pred_vs_measured.png", "loss_vs_aspect.png", "study.json", "fits.json", "config.yaml"):
        assert (out / name).is_file(), name
    assert json.loads((out / "study.json").read_text())["preferred_law"] == r.preferred_law


def test_rerun_trains_and_times_nothing_again(quick_study):
    cfg, first, out, _ = quick_study
    before = (out / "runs.csv").read_text()
    lines = {p: p.read_text() for p in (out / "records.jsonl", out / "latency.jsonl", out / "verify" / "records.jsonl")}
    again = run_study(cfg, out)
    assert (out / "runs.csv").read_text() == before
    assert all(p.read_text() == text for p, text in lines.items())
    same = [json.dumps(finite(x), sort_keys=True) for x in (again.fits, first.fits)]  # NaN != NaN
    assert again.train_wall_s < 5 and same[0] == same[1] and again.verify["rows"] == first.verify["rows"]


@pytest.mark.parametrize("change, message", [
    ({"held_out": "q9"}, "held_out: 'q9' is not a group"),
    ({"noise_group": "q1"}, "noise_group 'q1': give it at least two seeds"),
    ({"laws": ["chinchilla", "nope"]}, "laws: unknown 'nope'"),
    ({"extra": 1}, "extra"),
])
def test_config_errors_name_the_field(tmp_path, change, message):
    data = load_study(RECIPE, quick=True).model_dump(mode="json") | change
    with pytest.raises(InputError, match=message):
        parse_study(data, "cfg.yaml")


def test_bad_shape_and_quick_block_fail_before_anything_is_written(tmp_path):
    data = yaml.safe_load(RECIPE.read_text())
    data["groups"][0]["shapes"][0] = "8by31"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"shape '8by31': write <d_model>x<n_layers>"):
        load_study(bad)
    data = yaml.safe_load(RECIPE.read_text())
    data["quick"]["groups"][0]["shapes"][0] = "12x3"  # 12 is not a multiple of the 8-wide heads
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="d_model 12 is not a multiple"):
        study_sweep(load_study(bad, quick=True))
    del data["quick"]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="--quick needs a 'quick' block"):
        load_study(bad, quick=True)


def test_the_full_recipe_spans_what_the_design_asks():
    cfg = load_study(RECIPE)
    from infscale.train.sweep import expand

    runs = expand(study_sweep(cfg), 512)
    n = {g.name: g.n_params for g in cfg.groups}
    assert len(n) >= 5 and max(n.values()) / min(n.values()) >= 10 and cfg.held_out == max(n, key=n.get)
    for g in cfg.groups:
        ratios = [int(d) / int(L) for d, L in (s.split("x") for s in g.shapes)]
        assert len(ratios) >= 4 and max(ratios) / min(ratios) >= 30, g.name
    two_smallest = sorted(n, key=n.get)[:2]
    assert all(max(cfg.group(g).tokens_per_param) > 20 for g in two_smallest)
    assert len(cfg.group(cfg.noise_group).seeds) >= 3
    ids = [rid for rid, _ in runs]
    assert len(ids) == len(set(ids)) == 36
    # every shape of a size trains on the same D, and its exact N is within 20% of the size's nominal N
    for rid, c in runs:
        g = cfg.group(c.group)
        assert c.tokens in {round(m * g.n_params) for m in g.tokens_per_param}, rid


def _small(cache: Path) -> dict:
    cfg = _quick(cache).model_dump(mode="json")
    cfg["groups"] = [
        {"name": "q1", "n_params": 20000, "shapes": ["8x19", "24x1"], "tokens_per_param": [2, 8]},
        {"name": "q2", "n_params": 40000, "shapes": ["16x9", "32x2"], "tokens_per_param": [2], "seeds": [0, 1]},
        {"name": "q3", "n_params": 55000, "shapes": ["16x14", "32x3"], "tokens_per_param": [2]},
    ]
    cfg["verify"] = None
    cfg["bootstrap"] = 5
    return cfg


def _untimed(path: Path) -> list[dict]:
    rows = list(csv.DictReader(path.open()))
    out = []
    for row in rows:
        row = {k: v for k, v in row.items() if k not in TIMED_COLUMNS}
        for key in ("loss", "loss_se", "train_loss_smoothed"):
            row[key] = pytest.approx(float(row[key]), rel=1e-6)
        out.append(row)
    return out


def test_kill_9_during_the_study_then_resume_writes_the_uninterrupted_runs_table(tmp_path):
    cfg = _small(tmp_path / "tokens")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "infscale.cli.main", "study", str(path), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    records = out / "records.jsonl"

    def mid_study() -> bool:
        done = records.is_file() and len(records.read_text().splitlines()) >= 2
        return done and any((out / "runs").glob("*/ckpt.pt"))

    while not mid_study() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert mid_study(), "the study never got mid-way through its runs"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "runs.csv").exists()
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads(done.stdout)
    clean = run_study(parse_study(cfg, "clean"), tmp_path / "clean")
    assert _untimed(out / "runs.csv") == _untimed(tmp_path / "clean" / "runs.csv")
    assert resumed["preferred_law"] == clean.preferred_law and resumed["n_runs"] == clean.n_runs == 10
    assert any('"event": "resume"' in p.read_text() for p in (out / "runs").glob("*/metrics.jsonl"))
