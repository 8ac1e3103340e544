"""Sweeps: grid expansion, the single-writer record file, idempotent re-runs, kill -9 + resume, the Ray executor."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.train.config import NearSpec, load_sweep_config, parse_sweep
from infscale.train.sweep import (
    EXECUTORS,
    append_record,
    expand,
    get_executor,
    read_run_records,
    run_sweep,
    shapes_near,
)

REPO = Path(__file__).resolve().parents[2]


def sweep_dict(text_corpus, token_cache, **over):
    base = {
        "model": {"context_length": 32, "tied_embeddings": True},
        "data": {"corpus": str(text_corpus), "vocab_size": 320, "val_fraction": 0.05, "cache_dir": str(token_cache)},
        "batch_size": 8, "eval_tokens": 1024, "log_every": 5, "checkpoint_every": 5, "threads": 1, "progress": False,
    }
    return {
        "base": base,
        "groups": [
            {"name": "a", "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64},
                                     {"d_model": 16, "n_layers": 2, "n_heads": 2, "d_ff": 32}],
             "tokens_per_param": [0.3]},
            {"name": "b", "shapes": [{"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64}], "tokens_per_param": [0.3]},
        ],
    } | over


def test_expand_grid_and_ids(text_corpus, token_cache):
    sweep = parse_sweep(sweep_dict(text_corpus, token_cache) | {"groups": [
        {"name": "g", "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2}, {"d_model": 16, "n_layers": 3,
                                                                               "n_heads": 2}],
         "tokens_per_param": [20, 80]}]})
    runs = expand(sweep, vocab_size=320)
    assert [r for r, _ in runs] == ["g-d32xL1h2-m20", "g-d32xL1h2-m80", "g-d16xL3h2-m20", "g-d16xL3h2-m80"]
    cfg = runs[3][1]
    assert cfg.tokens_per_param == 80 and cfg.model.n_layers == 3 and cfg.group == "g" and cfg.batch_size == 8


def test_a_nominal_size_gives_equal_d_and_seeds_repeat_runs(text_corpus, token_cache):
    sweep = parse_sweep(sweep_dict(text_corpus, token_cache) | {"groups": [
        {"name": "g", "n_params": 5000, "seeds": [0, 3], "tokens_per_param": [20],
         "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2}, {"d_model": 16, "n_layers": 3, "n_heads": 2}]}]})
    runs = expand(sweep, vocab_size=320)
    assert [rid for rid, _ in runs] == ["g-d32xL1h2-m20", "g-d32xL1h2-m20-s3", "g-d16xL3h2-m20", "g-d16xL3h2-m20-s3"]
    assert {c.tokens for _, c in runs} == {100_000} and all(c.tokens_per_param is None for _, c in runs)
    assert [c.seed for _, c in runs] == [0, 3, 0, 3]
    # without seeds the base's seed stands
    plain = parse_sweep(sweep_dict(text_corpus, token_cache) | {"base": sweep_dict(text_corpus, token_cache)["base"]
                                                                 | {"seed": 7}})
    assert {c.seed for _, c in expand(plain, vocab_size=320)} == {7}


def test_shapes_near_are_within_tolerance():
    spec = NearSpec(n_params=200_000, rel_tol=0.1, d_model=[32, 48, 64, 80, 96, 128], n_layers=list(range(1, 13)),
                    head_dim=16, max_shapes=3)
    found = shapes_near(spec, vocab_size=512, tied=True, context_length=128)
    assert len(found) == 3
    for s in found:
        n = TransformerShape(d_model=s["d_model"], n_layers=s["n_layers"], n_heads=s["n_heads"], vocab_size=512,
                             tied_embeddings=True).n_params
        assert abs(n - 200_000) / 200_000 <= 0.1


def test_unknown_executor_and_bad_sweep(text_corpus, token_cache, tmp_path):
    with pytest.raises(InputError, match="unknown executor 'slurm'; known: local, ray"):
        get_executor("slurm")
    assert set(EXECUTORS) == {"local", "ray"}
    with pytest.raises(InputError, match="field groups.0.tokens_per_param"):
        parse_sweep({"groups": [{"name": "x", "shapes": [{"d_model": 8, "n_layers": 1, "n_heads": 1}]}]})
    bad = tmp_path / "s.yaml"
    bad.write_text("groups: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_sweep_config(bad)


def test_append_record_never_duplicates_and_survives_torn_line(tmp_path):
    path = tmp_path / "records.jsonl"
    assert append_record(path, {"run_id": "a", "loss": 1.0})
    assert not append_record(path, {"run_id": "a", "loss": 2.0})
    with open(path, "a") as fh:
        fh.write('{"run_id": "b", "lo')  # a writer killed mid-line
    assert [r["run_id"] for r in read_run_records(path)] == ["a"]
    assert append_record(path, {"run_id": "c", "loss": 3.0})
    assert [r["run_id"] for r in read_run_records(path)] == ["a", "c"]


def test_sweep_is_idempotent(text_corpus, token_cache, tmp_path):
    sweep = parse_sweep(sweep_dict(text_corpus, token_cache))
    first = run_sweep(sweep, tmp_path)
    assert len(first) == 3
    lines = (tmp_path / "records.jsonl").read_text()
    seen = []
    second = run_sweep(sweep, tmp_path, on_record=lambda r, new: seen.append(new))
    assert seen == [False, False, False] and second == first
    assert (tmp_path / "records.jsonl").read_text() == lines
    # a run trained but killed before its line was appended: the line is added without training again
    rec_path = tmp_path / "runs" / first[0]["run_id"] / "record.json"
    kept = [r for r in read_run_records(tmp_path / "records.jsonl") if r["run_id"] != first[0]["run_id"]]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    mtime = rec_path.stat().st_mtime
    third = run_sweep(sweep, tmp_path)
    assert {r["run_id"] for r in third} == {r["run_id"] for r in first} and rec_path.stat().st_mtime == mtime
    assert len(read_run_records(tmp_path / "records.jsonl")) == 3


def test_kill_9_then_rerun_resumes(text_corpus, token_cache, tmp_path, progress_lines):
    """kill -9 the sweep process mid-run; the re-run keeps finished runs, resumes the interrupted one from its
    checkpoint, and ends with the same records (run ids, N, D, losses) as an uninterrupted sweep."""
    d = sweep_dict(text_corpus, token_cache)
    d["groups"][1]["tokens_per_param"] = [2.0]  # the last run is long enough to be killed inside
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(yaml.safe_dump(d))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "infscale.cli.main", "sweep", str(cfg_path), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = out / "runs" / "b-d32xL2h2-m2" / "ckpt.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists(), "the sweep never checkpointed its last run"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_run_records(out / "records.jsonl")
    assert [r["run_id"] for r in before] == ["a-d32xL1h2-m0.3", "a-d16xL2h2-m0.3"]
    assert not (out / "runs" / "b-d32xL2h2-m2" / "record.json").exists()
    # `infscale runs` lists the interrupted run beside the finished ones, with the step its checkpoint holds
    listed = subprocess.run([sys.executable, "-m", "infscale.cli.main", "runs", str(out)], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "2 finished, 1 in progress" in listed.stdout
    assert re.search(r"in progress: b-d32xL2h2-m2: step \d+ of \d+, train loss [\d.]+ \(stopped, resumes from its "
                     r"checkpoint\)", listed.stdout), listed.stdout

    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # off a terminal: one progress line per run (the two kept ones count, without setting the ETA's rate)
    assert sorted(set(progress_lines(done.stderr, "sweep out"))) == [(1, 3), (2, 3), (3, 3)]
    after = read_run_records(out / "records.jsonl")
    assert [r["run_id"] for r in after] == ["a-d32xL1h2-m0.3", "a-d16xL2h2-m0.3", "b-d32xL2h2-m2"]
    assert after[:2] == before
    metrics = (out / "runs" / "b-d32xL2h2-m2" / "metrics.jsonl").read_text()
    assert '"event": "resume"' in metrics
    # the uninterrupted sweep gives the same totals and the same losses (batches are a function of the step)
    clean = run_sweep(load_sweep_config(cfg_path), tmp_path / "clean")
    timings = ("wall_s", "train_time_s", "tokens_per_s", "downstream_s")
    for a, b in zip(after, clean, strict=True):  # record for record, timings aside, losses to float rounding
        a, b = ({k: v for k, v in r.items() if k not in timings} for r in (a, b))
        for key in ("loss", "loss_se", "train_loss_smoothed"):
            assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-6)
        assert a == b
    assert sum(r["D"] for r in after) == sum(r["D"] for r in clean)


def test_ray_executor_gives_the_same_records(text_corpus, token_cache, tmp_path):
    pytest.importorskip("ray")
    sweep = parse_sweep(sweep_dict(text_corpus, token_cache))
    local = run_sweep(sweep, tmp_path / "local")
    ray_recs = run_sweep(sweep, tmp_path / "ray", executor="ray", workers=2)
    assert sorted(r["run_id"] for r in ray_recs) == sorted(r["run_id"] for r in local)
    by_id = {r["run_id"]: r for r in ray_recs}
    for r in local:
        other = by_id[r["run_id"]]
        assert (other["N"], other["D"]) == (r["N"], r["D"])
        assert other["loss"] == pytest.approx(r["loss"], rel=1e-6)
    # re-running with ray skips everything
    assert len(run_sweep(sweep, tmp_path / "ray", executor="ray")) == 3
    assert len(read_run_records(tmp_path / "ray" / "records.jsonl")) == 3


def test_bundled_micro_sweep_loads():
    sweep = load_sweep_config(REPO / "src" / "infscale" / "recipes" / "micro_sweep.yaml")
    runs = expand(sweep, vocab_size=512)
    assert len(runs) == 12
    ns = {}
    for _, cfg in runs:
        m = cfg.model
        shape = TransformerShape(d_model=m.d_model, n_layers=m.n_layers, n_heads=m.n_heads, d_ff=m.d_ff,
                                 vocab_size=512, tied_embeddings=True, context_length=128)
        ns.setdefault(cfg.group, []).append(shape.n_params)
    assert len(ns) == 4
    for group, values in ns.items():  # shapes of a size group lie within 15% of each other
        assert max(values) / min(values) < 1.15, group
    assert {cfg.tokens_per_param for _, cfg in runs} == {20, 80}


def test_local_process_pool_gives_the_same_records(text_corpus, token_cache, tmp_path):
    sweep = parse_sweep(sweep_dict(text_corpus, token_cache))
    serial = run_sweep(sweep, tmp_path / "serial")
    pooled = run_sweep(sweep, tmp_path / "pool", workers=2)
    assert [r["run_id"] for r in pooled] == [r["run_id"] for r in serial]  # returned in grid order
    for a, b in zip(serial, pooled, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6) and b["D"] == a["D"]
    assert len(read_run_records(tmp_path / "pool" / "records.jsonl")) == 3


def test_a_pool_gets_the_runs_longest_first(text_corpus, token_cache, tmp_path, monkeypatch):
    """With several workers the runs are handed out by training FLOPs, largest first, so that no worker is left
    alone with a long run at the end; one worker keeps the grid order."""
    from infscale.train.sweep import LocalExecutor

    handed: list[list[str]] = []

    class Recording(LocalExecutor):
        def map(self, fn, jobs):
            handed.append([job.run_id for job in jobs])
            for job in jobs:  # in-process, in the order given
                yield fn(job)

    EXECUTORS.register("recording", Recording)
    try:
        d = sweep_dict(text_corpus, token_cache)
        d["groups"][0]["tokens_per_param"] = [0.3, 0.6]
        sweep = parse_sweep(d)
        records = run_sweep(sweep, tmp_path / "pool", executor="recording", workers=2)
        flops = {r["run_id"]: r["flops_exact"] for r in records}
        assert handed[0] == sorted(flops, key=lambda rid: -flops[rid]) != [r["run_id"] for r in records]
        run_sweep(sweep, tmp_path / "serial", executor="recording", workers=1)
        assert handed[1] == [rid for rid, _ in expand(sweep, vocab_size=320)]
    finally:
        EXECUTORS.unregister("recording")


def test_runs_in_progress_say_whether_a_trainer_holds_them(text_corpus, token_cache, tmp_path):
    """`infscale runs` on a directory whose records.jsonl does not exist yet: a started run is listed with the step
    its metrics reached, as training now while a writer holds its metrics file, and as stopped otherwise."""
    from infscale.records import RecordWriter
    from infscale.train.config import parse_train
    from infscale.train.sweep import runs_in_progress
    from infscale.train.trainer import train

    from .conftest import tiny_config

    cfg = parse_train(tiny_config(text_corpus, token_cache, tokens=8 * 32 * 30, run_id="r1"))
    assert train(cfg, tmp_path / "runs" / "r1", stop_after_steps=12) is None
    assert not (tmp_path / "records.jsonl").exists()
    (row,) = runs_in_progress(tmp_path, finished=set())
    assert (row["run_id"], row["step"], row["steps"], row["checkpoint"], row["active"]) == ("r1", 10, 30, True, False)
    with RecordWriter(tmp_path / "runs" / "r1" / "metrics.jsonl"):  # what a running trainer holds
        assert runs_in_progress(tmp_path, finished=set())[0]["active"] is True
    assert runs_in_progress(tmp_path, finished={"r1"}) == []


_POOL_SCRIPT = """
import sys, threading, time
from infscale.train.sweep import LocalExecutor

def work(x):
    time.sleep(30)
    return {"x": x}

if __name__ == "__main__":
    threading.Timer(2.0, lambda: print("started", flush=True)).start()
    list(LocalExecutor(workers=2).map(work, [1, 2]))
"""


def test_a_sweep_killed_with_9_leaves_no_worker_and_no_leaked_semaphore_warning(tmp_path):
    """The pool's workers exit with the sweep that started them (orphans would train on beside a resumed sweep), and
    the resource tracker cleans the pool's semaphores without a warning in the user's terminal."""
    script = tmp_path / "pool.py"
    script.write_text(_POOL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout.readline().strip() == b"started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    err = proc.stderr.read()  # returns once every process holding the pipe (workers, tracker) is gone
    assert time.time() - t0 < 15 and b"leaked semaphore" not in err, err[-800:]
