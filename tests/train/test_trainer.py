"""The trainer: schedule, token planning, memory refusal, learning on real text, the record, exact resume."""

from __future__ import annotations

import json
import math
import time

import pytest

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.memory import estimate_train_bytes
from infscale.train.config import parse_train
from infscale.train.trainer import lr_at, native_bf16, plan_tokens, resolve_dtype, train

from .conftest import tiny_config


def _cfg(text_corpus, token_cache, **over):
    return parse_train(tiny_config(text_corpus, token_cache, **over))


def test_lr_schedule_closed_form(text_corpus, token_cache):
    cfg = _cfg(text_corpus, token_cache, optim={"lr": 1e-2, "min_lr_ratio": 0.1, "warmup_fraction": 0.1})
    steps = 101
    assert lr_at(0, steps, cfg) == pytest.approx(1e-2 / 10)
    assert lr_at(9, steps, cfg) == pytest.approx(1e-2)
    assert lr_at(steps - 1, steps, cfg) == pytest.approx(1e-3)
    mid = 10 + (steps - 1 - 10) / 2  # half-way through the cosine: mean of peak and floor
    assert lr_at(int(mid), steps, cfg) == pytest.approx(0.5 * (1e-2 + 1e-3), rel=1e-2)
    lrs = [lr_at(s, steps, cfg) for s in range(10, steps)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_plan_tokens_rounds_up_to_whole_steps(text_corpus, token_cache):
    cfg = _cfg(text_corpus, token_cache, tokens=None, tokens_per_param=20, grad_accum=2)
    steps, d = plan_tokens(cfg, 10_000, world_size=2)
    per_step = 8 * 32 * 2 * 2
    assert steps == math.ceil(200_000 / per_step) and d == steps * per_step and d >= 200_000


def test_memory_estimate_grows_and_covers_adam_state():
    s = TransformerShape(d_model=256, n_layers=4, n_heads=4, vocab_size=1000)
    base = estimate_train_bytes(s, 8, 128)
    assert base > 18 * s.n_params  # fp32 weights + grads + two Adam moments + bf16 copy
    assert estimate_train_bytes(s, 16, 128) > base
    assert estimate_train_bytes(s.with_(n_layers=8), 8, 128) > base


def test_too_large_shape_refused_before_allocating(text_corpus, token_cache, tmp_path):
    cfg = _cfg(text_corpus, token_cache, model={"d_model": 16384, "n_layers": 96, "n_heads": 128})
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"needs ~\d+.* GB .* available"):
        train(cfg, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    assert time.perf_counter() - t0 < 30  # a 300B-parameter model would take far longer (and far more RAM) to build
    small_limit = _cfg(text_corpus, token_cache, memory_limit_gb=0.001)
    with pytest.raises(InputError, match="0.00 GB available"):
        train(small_limit, tmp_path / "never")


def test_training_learns_and_writes_record(text_corpus, token_cache, tmp_path):
    cfg = _cfg(text_corpus, token_cache, tokens=8 * 32 * 60, group="g1")
    rec = train(cfg, tmp_path / "run")
    shape = TransformerShape(d_model=32, n_layers=2, n_heads=2, d_ff=64, vocab_size=320, tied_embeddings=True,
                             context_length=32)
    assert rec["N"] == shape.n_params
    assert rec["D"] == 8 * 32 * 60 and rec["tokens_per_param"] == pytest.approx(rec["D"] / rec["N"])
    assert rec["flops"] == 6.0 * rec["N"] * rec["D"]
    assert rec["flops_exact"] == pytest.approx(shape.flops_train_token(32) * rec["D"])
    assert rec["group"] == "g1" and rec["aspect_ratio"] == 16.0
    # a uniform guess scores ln(320) = 5.77; 60 steps on real text must do clearly better
    assert rec["loss"] < math.log(320) - 0.8
    assert rec["train_loss_smoothed"] < math.log(320) - 0.8
    assert rec["tokens_per_s"] > 0 and rec["wall_s"] > 0
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if "loss" in x]
    assert [x["step"] for x in train_lines] == list(range(5, 61, 5))
    assert lines[-1]["final"] and lines[-1]["val_loss"] == rec["loss"]
    assert (tmp_path / "run" / "config.yaml").exists() and not (tmp_path / "run" / "ckpt.pt").exists()
    # idempotent: a finished run returns its record without training
    assert train(cfg, tmp_path / "run") == json.loads((tmp_path / "run" / "record.json").read_text())


def test_resume_reproduces_the_uninterrupted_run(text_corpus, token_cache, tmp_path):
    cfg = _cfg(text_corpus, token_cache, tokens=8 * 32 * 40, grad_accum=2, batch_size=4, checkpoint_every=0)
    full = train(cfg, tmp_path / "full")
    assert train(cfg, tmp_path / "split", stop_after_steps=13) is None
    assert (tmp_path / "split" / "ckpt.pt").exists()
    resumed = train(cfg, tmp_path / "split")
    assert resumed["loss"] == pytest.approx(full["loss"], rel=1e-6)
    assert resumed["train_loss_smoothed"] == pytest.approx(full["train_loss_smoothed"], rel=1e-6)
    assert resumed["D"] == full["D"]
    events = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert {"event": "resume", "step": 13} in events


def test_progress_one_line_per_log_interval_with_eta(text_corpus, token_cache, tmp_path, capsys, progress_lines):
    cfg = _cfg(text_corpus, token_cache, tokens=8 * 32 * 20, progress=True, run_id="p")  # 20 steps, log_every 5
    assert train(cfg, tmp_path / "run", stop_after_steps=12) is None
    first = capsys.readouterr().err
    assert progress_lines(first, "train p") == [(5, 20), (10, 20)]
    train(cfg, tmp_path / "run")  # resumed at step 12: the first line counts from there
    assert progress_lines(capsys.readouterr().err, "train p") == [(12, 20), (15, 20), (20, 20)]


def test_fp32_and_z_loss_run(text_corpus, token_cache, tmp_path):
    a = train(_cfg(text_corpus, token_cache, dtype="fp32", optim={"z_loss": 0.0}), tmp_path / "a")
    b = train(_cfg(text_corpus, token_cache, dtype="fp32", optim={"z_loss": 0.1}), tmp_path / "b")
    assert a["loss"] != b["loss"] and math.isfinite(b["loss"])


def test_auto_dtype_follows_native_bf16(text_corpus, token_cache, tmp_path, monkeypatch):
    import torch

    assert resolve_dtype("fp32", "cpu") == "fp32" and resolve_dtype("bf16", "cpu") == "bf16"
    for native in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert native_bf16("cpu") is native
        assert resolve_dtype("auto", "cpu") == ("bf16" if native else "fp32")
    # the record and the resolved config name the dtype the run computed in
    rec = train(_cfg(text_corpus, token_cache, dtype="auto", device="cpu"), tmp_path / "auto")
    assert rec["dtype"] == "fp32" and rec["config"]["dtype"] == "auto"
    assert "dtype: fp32" in (tmp_path / "auto" / "config.yaml").read_text()


def test_config_errors_are_one_line():
    with pytest.raises(InputError, match="field model.d_model"):
        parse_train({"model": {"d_model": -1, "n_layers": 1, "n_heads": 1}, "tokens": 10})
    with pytest.raises(InputError, match="field bogus: Extra inputs"):
        parse_train({"model": {"d_model": 8, "n_layers": 1, "n_heads": 1}, "tokens": 10, "bogus": 1})
    with pytest.raises(InputError, match="exactly one of"):
        parse_train({"model": {"d_model": 8, "n_layers": 1, "n_heads": 1}})


TRAIN_TIMINGS = ("wall_s", "train_time_s", "tokens_per_s", "downstream_s")


def test_kill_9_then_rerun_equals_the_uninterrupted_run(text_corpus, token_cache, tmp_path):
    """`infscale train` killed (SIGKILL) after a checkpoint, run again: it resumes from the checkpoint, and its record
    equals an uninterrupted run's field for field (timings aside; losses to float rounding)."""
    import os
    import signal
    import subprocess
    import sys

    import yaml

    cfg = tiny_config(text_corpus, token_cache, tokens=8 * 32 * 400, checkpoint_every=20, run_id="k")
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-W", "ignore", "-m", "infscale.cli.main", "train", str(path), "--json"]
    ckpt = tmp_path / "a" / "k" / "ckpt.pt"
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "a")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert ckpt.exists() and proc.poll() is None, "the run never checkpointed, or finished first"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "a" / "k" / "record.json").exists()
    runs = []
    for out in ("a", "clean"):
        done = subprocess.run([*cmd, "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout))
    resumed, clean = ({k: v for k, v in r.items() if k not in TRAIN_TIMINGS} for r in runs)
    for key in ("loss", "train_loss_smoothed"):
        assert resumed.pop(key) == pytest.approx(clean.pop(key), rel=1e-6)
    assert resumed == clean
    metrics = (tmp_path / "a" / "k" / "metrics.jsonl").read_text()
    assert '"event": "resume"' in metrics
