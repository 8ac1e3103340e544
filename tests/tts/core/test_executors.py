"""tts run on Ray: shards of units to actors that each own a generator; the records equal the local run's, text for
text, with 1 and 2 actors, on a local Ray and on a two-node cluster started here on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infscale.tts.backends.torch import DEFAULT_POLICY, DEFAULT_PRM
from infscale.tts.core.config import load_config
from infscale.tts.core.executors import default_threads
from infscale.workflows.tts_run import run_tts

pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not (DEFAULT_POLICY.exists() and DEFAULT_PRM.exists()),
                                reason="bundled checkpoints missing")


def _cfg(tmp_path: Path, name: str, **over) -> Path:
    cfg = {"run": name, "out_dir": str(tmp_path / "runs"), "model_name": "arith-policy-d64x4",
           "task": {"name": "arith", "params": {"n_problems": 10, "difficulty": 3, "seed": 8}},
           "generator": {"name": "torch", "params": {"seed": 0}}, "reward": {"name": "torch_prm"},
           "strategies": [{"name": "greedy"}, {"name": "sampling", "budgets": [4]}, {"name": "rebase", "budgets": [4]}],
           "search": {"max_tokens": 96, "max_step_tokens": 32, "depth_cap": 10}, "threads": 1, **over}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _same(a, b) -> None:
    ka = {(r.strategy, r.budget, r.problem_id): r for r in a.records}
    kb = {(r.strategy, r.budget, r.problem_id): r for r in b.records}
    assert ka.keys() == kb.keys() and len(ka) == 30
    for k, r in ka.items():
        s = kb[k]
        assert [c.text for c in r.candidates] == [c.text for c in s.candidates], k
        assert r.answers == s.answers and r.ledger == s.ledger
        for c, d in zip(r.candidates, s.candidates, strict=True):
            assert c.step_scores == pytest.approx(d.step_scores, abs=1e-6)


def test_ray_actors_give_the_local_records(tmp_path):
    local = run_tts(load_config(_cfg(tmp_path, "local")), quiet=True)
    for workers in (1, 2):
        ray = run_tts(load_config(_cfg(tmp_path, f"ray{workers}", executor="ray", workers=workers)), quiet=True)
        assert ray.executor == "ray" and ray.failed == 0 and ray.written == 30
        _same(ray, local)
    # a rerun on Ray finds every unit recorded and starts nothing
    again = run_tts(load_config(_cfg(tmp_path, "ray2", executor="ray", workers=2)), quiet=True)
    assert (again.written, again.skipped) == (0, 30)


def test_default_threads_share_the_free_cores():
    assert 1 <= default_threads(1) <= (os.cpu_count() or 1)
    assert default_threads(10_000) == 1


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_two_node_ray_cluster(tmp_path):
    """A head and a second node started on loopback with `ray start`; `infscale tts run` (its own process) sends the
    shards to two actors, one per node's CPU; the records equal the local run's. Every Ray process runs with a HOME
    of its own: Ray turns token authentication on when it finds a token under ~/.ray, which an earlier local Ray of
    the same user may have left."""
    import json

    from infscale.tts.core.record_files import read_run

    ray_cli = str(Path(sys.executable).parent / "ray")
    port = _port()
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    tmp = Path("/tmp") / f"ray-{port}"  # ray's socket paths must stay short
    head = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
            "--node-ip-address=127.0.0.1", f"--temp-dir={tmp}", "--disable-usage-stats"]
    worker = [ray_cli, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", "--node-ip-address=127.0.0.1"]
    try:
        for cmd in (head, worker):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stderr[-2000:]
        local = run_tts(load_config(_cfg(tmp_path, "local")), quiet=True)
        cfg = _cfg(tmp_path, "cluster", executor="ray", workers=2, address=f"127.0.0.1:{port}")
        done = subprocess.run([sys.executable, "-m", "infscale.cli.main", "tts", "run", str(cfg), "--json"], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout)
        assert summary["executor"] == "ray" and summary["failed"] == 0 and summary["written"] == 30

        class _Result:
            records = read_run(tmp_path / "runs" / "cluster")

        _same(_Result, local)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
