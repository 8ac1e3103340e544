"""Data parallel: the same entry point under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import tiny_config


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(text_corpus, token_cache, tmp_path, small_data):
    cfg = tiny_config(text_corpus, token_cache, tokens=8 * 32 * 2 * 20, run_id="ddp", checkpoint_every=5)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "infscale.cli.main", "train", str(path), "--out", str(out), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rec = json.loads((out / "ddp" / "record.json").read_text())
    assert rec["world_size"] == 2
    assert rec["steps"] == 20 and rec["D"] == 20 * 8 * 32 * 2  # each step sees both ranks' batches
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1  # only rank 0 writes
    assert rec["loss"] < 5.5
