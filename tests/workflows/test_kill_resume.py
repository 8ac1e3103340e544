"""kill -9 each long job mid-run, run it again: its records hold every unit of work once (nothing lost, nothing
duplicated) and equal an uninterrupted seeded run's record for record, timings aside. (The sweep and the trainer:
tests/train/test_sweep.py, tests/train/test_trainer.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from infscale.records import read_records
from infscale.workflows.demo import quick_config


def _cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-W", "ignore", "-m", "infscale.cli.main", *args]


def _kill_when(cmd: list[str], cwd: Path, ready: Callable[[], bool], timeout_s: float = 240) -> None:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout_s
    while not ready() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the job finished before it could be killed"
    assert ready(), "the job never reached the point to kill it at"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _n_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _keys(path: Path, key: Callable[[dict], object]) -> list:
    return [key(r) for r in read_records(path)]


def _finish(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def _tts_key(r: dict) -> tuple:
    return (r["model"], r["strategy"], r["budget"], r["problem_id"])


TTS_TIMINGS = ("wall_s", "generation_s", "scoring_s")
LATENCY_TIMINGS = ("prefill_s", "decode_s", "total_s", "spread", "runs", "env", "time_utc")


def _untimed(path: Path, timings: tuple[str, ...], key: Callable[[dict], object]) -> dict:
    """Every record of ``path`` by key, without the fields that measure time (they differ between any two runs)."""
    return {key(r): {k: v for k, v in r.items() if k not in timings} for r in read_records(path)}


def test_latency_measure(tmp_path):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text("device: cpu\nthreads: 1\nwarmup: 0\nrepeats: 3\nvocab_size: 97\n"
                   "workload: {input_len: 8, output_len: 64}\n"
                   "shapes: [d64x1h2f128, d64x2h2f128, d64x4h2f128, d64x8h2f128, d128x4h4f256, d128x8h4f256]\n")
    out = tmp_path / "r.jsonl"
    cmd = _cli("latency", "measure", str(cfg), "--out", str(out), cwd=tmp_path)
    _kill_when(cmd, tmp_path, lambda: _n_lines(out) >= 2)
    before = _keys(out, lambda r: r["key"])
    _finish(cmd, tmp_path)
    after = _keys(out, lambda r: r["key"])
    _finish(_cli("latency", "measure", str(cfg), "--out", str(tmp_path / "clean.jsonl"), cwd=tmp_path), tmp_path)
    assert after[: len(before)] == before and len(set(after)) == len(after) == 6
    key = lambda r: r["key"]  # noqa: E731
    assert _untimed(out, LATENCY_TIMINGS, key) == _untimed(tmp_path / "clean.jsonl", LATENCY_TIMINGS, key)


def _kill_and_resume_tts(tmp_path: Path, cfg: dict, kill_at: int) -> tuple[Path, list, list]:
    """`tts run` of ``cfg`` killed once ``kill_at`` records are written, then run again to the end: the records
    file, its keys at the kill and its keys at the end."""
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    records = tmp_path / "runs" / "k" / "records.jsonl"
    cmd = _cli("tts", "run", str(path), "--json", cwd=tmp_path)
    _kill_when(cmd, tmp_path, lambda: _n_lines(records) >= kill_at)
    before = _keys(records, _tts_key)
    _finish(cmd, tmp_path)
    return records, before, _keys(records, _tts_key)


def test_tts_run(tmp_path):
    cfg = {"run": "k", "out_dir": str(tmp_path / "runs"),
           "task": {"name": "arith", "params": {"n_problems": 400, "difficulty": 3, "seed": 5}},
           "generator": {"name": "scripted", "params": {"error_rate": 0.3}}, "reward": {"name": "verifier"},
           "strategies": [{"name": "greedy"}, {"name": "weighted_vote", "budgets": [4]}],
           "search": {"max_step_tokens": 40}}
    records, before, after = _kill_and_resume_tts(tmp_path, cfg, 30)
    assert after[: len(before)] == before and len(set(after)) == len(after) == 800
    assert _n_lines(records) == 800  # every finished unit written once
    # the same records as an uninterrupted run of the same config (its randomness is keyed per unit of work)
    clean = tmp_path / "clean.yaml"
    clean.write_text(yaml.safe_dump({**cfg, "out_dir": str(tmp_path / "clean")}))
    _finish(_cli("tts", "run", str(clean), "--json", cwd=tmp_path), tmp_path)
    resumed = _untimed(records, TTS_TIMINGS, _tts_key)
    assert resumed == _untimed(tmp_path / "clean" / "k" / "records.jsonl", TTS_TIMINGS, _tts_key)
    # and the records depend on the seed: another seed draws other mistakes
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**cfg, "out_dir": str(tmp_path / "other"), "seed": 1}))
    _finish(_cli("tts", "run", str(other), "--json", cwd=tmp_path), tmp_path)
    assert _untimed(tmp_path / "other" / "k" / "records.jsonl", TTS_TIMINGS, _tts_key) != resumed


def test_tts_run_torch_backend(tmp_path):
    """The bundled policy + PRM through the scheduler (many problems per call): killed mid-run and resumed, the
    records equal an uninterrupted run's, text for text (answers and ledgers identical; scores within 1e-6, the
    prefix cache's float noise)."""
    cfg = {"run": "k", "out_dir": str(tmp_path / "runs"), "model_name": "arith-policy-d64x4",
           "task": {"name": "arith", "params": {"n_problems": 48, "difficulty": 3, "seed": 5}},
           "generator": {"name": "torch", "params": {"seed": 0}}, "reward": {"name": "torch_prm"},
           "strategies": [{"name": "sampling", "budgets": [8]}, {"name": "rebase", "budgets": [8]}],
           "search": {"max_tokens": 96, "max_step_tokens": 32, "depth_cap": 10}, "batch": {"max_rows": 64}}
    records, before, after = _kill_and_resume_tts(tmp_path, cfg, 20)
    assert 20 <= len(before) < 96
    assert after[: len(before)] == before and len(set(after)) == len(after) == 96
    clean = tmp_path / "clean.yaml"
    clean.write_text(yaml.safe_dump({**cfg, "out_dir": str(tmp_path / "clean"), "batch": {"max_rows": 256}}))
    _finish(_cli("tts", "run", str(clean), "--json", cwd=tmp_path), tmp_path)
    resumed = _untimed(records, TTS_TIMINGS, _tts_key)
    reference = _untimed(tmp_path / "clean" / "k" / "records.jsonl", TTS_TIMINGS, _tts_key)
    assert resumed.keys() == reference.keys()
    for key, rec in resumed.items():
        ref = reference[key]
        assert [c["text"] for c in rec["candidates"]] == [c["text"] for c in ref["candidates"]], key
        assert rec["answers"] == ref["answers"] and rec["ledger"] == ref["ledger"], key
        for c, d in zip(rec["candidates"], ref["candidates"], strict=True):
            assert c["step_scores"] == pytest.approx(d["step_scores"], abs=1e-6)


def test_demo_quick(tmp_path):
    """Killed in its latency step, then in its tts step, the demo ends with the numbers of an uninterrupted seeded
    run (tests/workflows/data/demo_reference.json, which test_demo.py also holds the uninterrupted run to)."""
    out = tmp_path / "run"
    cmd = _cli("demo", "--quick", "--out", str(out), "--json", cwd=tmp_path)
    _kill_when(cmd, tmp_path, lambda: _n_lines(out / "latency_records.jsonl") >= 2)
    lat_before = _keys(out / "latency_records.jsonl", lambda r: r["key"])
    tts_records = out / "tts/arith-own/records.jsonl"
    _kill_when(cmd, tmp_path, lambda: _n_lines(tts_records) >= 2)
    tts_before = _keys(tts_records, _tts_key)
    _finish(cmd, tmp_path)
    lat = _keys(out / "latency_records.jsonl", lambda r: r["key"])
    tts = _keys(tts_records, _tts_key)
    assert lat[: len(lat_before)] == lat_before and len(set(lat)) == len(lat) == len(quick_config().latency.shapes)
    assert tts[: len(tts_before)] == tts_before and len(set(tts)) == len(tts) == _n_lines(tts_records) == 24
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tts"]["n_records"] == 24 and summary["plan"]["a100"]["best"]["label"].startswith("d3328x12")
    ref = json.loads((Path(__file__).parent / "data" / "demo_reference.json").read_text())["quick"]
    accuracy = sorted([p["strategy"], p["n"], p["accuracy"]] for p in summary["tts"]["points"])
    assert accuracy == ref["tts_accuracy"]


def _mini_recipe(tmp_path: Path) -> Path:
    data = {
        "name": "tiny", "threads": 1,
        "train": {"context_length": 64, "min_difficulty": 2, "max_difficulty": 2, "batch_size": 8,
                  "warmup_steps": 1},
        "policies": [{"name": f"p{d}", "d_model": d, "n_layers": 1, "n_heads": 2, "max_steps": 3}
                     for d in (16, 24)],
        "prm": "bundled",
        "task": {"difficulty": 2, "n_problems": 30, "seed": 7},
        "strategies": [{"name": "greedy"}, {"name": "sampling", "budgets": [4]}],
        "search": {"max_tokens": 24, "max_step_tokens": 8, "depth_cap": 3},
        "analysis": {"n_bootstrap": 20, "small_strategy": "sampling+weighted_vote",
                     "large_strategy": "sampling+majority_vote"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
def test_tts_mini(tmp_path):
    recipe, out = _mini_recipe(tmp_path), tmp_path / "study"
    cmd = _cli("tts", "mini", str(recipe), "--out", str(out), "--no-plot", "--json", cwd=tmp_path)
    first = out / "runs" / "p16" / "records.jsonl"
    _kill_when(cmd, tmp_path, lambda: _n_lines(first) >= 10)
    before = _keys(first, _tts_key)
    _finish(cmd, tmp_path)
    for name in ("p16", "p24"):
        keys = _keys(out / "runs" / name / "records.jsonl", _tts_key)
        assert len(set(keys)) == len(keys) == 60, name
    assert _keys(first, _tts_key)[: len(before)] == before
    report = json.loads((out / "report.json").read_text())
    assert report["name"] == "tiny"


@pytest.mark.slow
def test_select(tmp_path):
    from infscale.laws.forms import get_law

    params = dict(zip(get_law("inference_aware").param_names, (54754.3, 778343.0, 2.44751, 0.614574, 0.00114621),
                      strict=True))
    data = {"law": {"law": "inference_aware", "params": params}, "family": "llama",
            "rules": {"head_dims": [16], "kv_heads": [], "d_model_multiple": 16, "d_model_min": 32,
                      "d_model_max": 80, "n_layers_min": 1, "n_layers_max": 4, "ffn_multiple": 16},
            "min_params": 9000, "max_params": 80000, "tokens": 30000,
            "hardware": "generic-cpu", "workload": {"batch": 1, "input_len": 16, "output_len": 16},
            "max_latency_s": 0.016, "shortlist": 3, "executor": "local",
            "model": {"context_length": 32, "tied_embeddings": True},
            "train": {"batch_size": 8, "threads": 1, "eval_tokens": 2048, "checkpoint_every": 5, "progress": False,
                      "data": {"vocab_size": 320, "max_bytes": 300000, "cache_dir": str(tmp_path / "cache")}}}
    cfg = tmp_path / "sel.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "sel"
    cmd = _cli("select", str(cfg), "--out", str(out), "--json", cwd=tmp_path)
    _kill_when(cmd, tmp_path, lambda: _n_lines(out / "records.jsonl") >= 1)
    before = _keys(out / "records.jsonl", lambda r: r["run_id"])
    _finish(cmd, tmp_path)
    after = _keys(out / "records.jsonl", lambda r: r["run_id"])
    assert after[: len(before)] == before and len(set(after)) == len(after) == 3
    assert json.loads((out / "report.json").read_text())["chosen"]["run_id"] in after
