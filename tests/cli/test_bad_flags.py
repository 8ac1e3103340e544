"""Bad flags and config values across commands: exit 2, one line naming the flag or field, no traceback, nothing
started. (A table that grows with every hardening fix; the controls at the end must pass.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

LAW = '{"law": "inference_aware", "params": {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574, "eps": 0.00114621}}'
PLAN = ("plan", "--law", "law.json", "--hardware", "a100-40gb-bian2025", "--tokens", "29e9")


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


CASES = [
    (PLAN + ("--params", "0"), "--params 0: must be > 0"),
    (PLAN + ("--params", "-1"), "--params -1: must be > 0"),
    (PLAN + ("--params", "nan"), "--params nan: must be a finite number"),
    (PLAN + ("--params", "inf"), "--params inf: must be a finite number"),
    (PLAN + ("--params", "1e9", "--params-band", "0.5"), "--params-band 0.5: must be >= 1"),
    (PLAN + ("--params", "1e9", "--max-latency", "-2"), "--max-latency -2: must be > 0"),
    (PLAN + ("--params", "1e9", "--batch", "0"), "--batch 0: must be >= 1"),
    (PLAN + ("--params", "1e9", "--baseline", "gpt-17"), "--baseline: unknown shape preset 'gpt-17'"),
    (PLAN + ("--params", "7e10", "--family", "llama"), "infeasible: binding constraint memory <= 4e+10 B"),
    (("plan", "--law", "missing.json", "--params", "1e9", "--tokens", "1e9"), "missing.json: law file not found"),
    (("plan", "--law", ".", "--params", "1e9", "--tokens", "1e9"), ".: is a directory, not a saved fit"),
    (("lifetime", "--law", "law.json", "--loss-target", "2.9", "--decode-tokens", "inf", "--aspect-ratio", "256"),
     "--decode-tokens inf: must be a finite number"),
    (("lifetime", "--law", "law.json", "--loss-target", "2.9", "--aspect-ratio", "0"), "--aspect-ratio 0: must be > 0"),
    (("lifetime", "--law", "law.json", "--loss-target", "nan", "--aspect-ratio", "256"), "--loss-target nan"),
    (("fit", "--bootstrap", "100000000", "--no-plot"), "--bootstrap 1e+08: must be at most 100000"),
    (("fit", "--seed", "-1", "--no-plot"), "--seed -1: must be >= 0"),
    (("tts", "analyze", "--wu2025", "--seed", "-1"), "--seed -1: must be >= 0"),
    (("tts", "analyze", "--wu2025", "--bootstrap", "1000000000"), "--bootstrap 1e+09: must be at most 100000"),
    (("demo", "--quick", "--config", "inf.yaml"), "field plan_a100.max_latency_s: Input should be a finite number"),
    (("demo", "--quick", "--config", "."), ".: is a directory"),
    (("tts", "run", "."), ".: is a directory"),
    (("tts", "run", "bin.yaml"), "bin.yaml: binary content"),
    (("tts", "run", "tts_arith_own", "--shard", "4/3"), "--shard '4/3': expected I/K with 1 <= I <= K"),
    (("tts", "run", "tts_arith_own", "--shard", "x"), "--shard 'x': expected I/K"),
    (("tts", "run", "no_such_recipe"), "no_such_recipe: no such file, and not a bundled recipe"),
    (("latency", "predict", "--shape", "d128x2", "--hardware", "."), "is a directory"),
    (("latency", "measure", "huge.yaml", "--out", "r.jsonl"), "shape d16384x64: timing it needs ~"),
]


@pytest.fixture()
def cwd(tmp_path):
    (tmp_path / "law.json").write_text(LAW)
    (tmp_path / "inf.yaml").write_text("plan_a100: {max_latency_s: .inf}\n")
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01\x02")
    (tmp_path / "huge.yaml").write_text("device: cpu\nshapes: [d64x1h2, d16384x64]\n")
    return tmp_path


@pytest.mark.parametrize("args, needle", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_bad_input_is_one_line_exit_2(cwd, args, needle):
    res = _cli(*args, cwd=cwd)
    assert res.returncode == 2, (res.returncode, res.stdout[-500:], res.stderr[-1500:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
    assert not (cwd / "infscale-out").exists() and not (cwd / "plan_out").exists() and not (cwd / "r.jsonl").exists()


def test_controls_pass(cwd):
    assert _cli(*PLAN, "--params", "1e9", "--max-latency", "2", "--json", cwd=cwd).returncode == 0
    assert _cli("lifetime", "--law", "law.json", "--loss-target", "2.9", "--aspect-ratio", "256",
                cwd=cwd).returncode == 0


def test_latency_predict_says_when_a_model_does_not_fit(cwd):
    res = _cli("latency", "predict", "--shape", "chinchilla-70b", "--shape", "d2048x24h16", "--hardware",
               "a100-40gb", "--json", cwd=cwd)
    assert res.returncode == 0
    import json

    rows = {r["shape"]: r for r in json.loads(res.stdout)["predictions"]}
    assert rows["chinchilla-70b"]["fits_memory"] is False and rows["d2048x24h16"]["fits_memory"] is True
    assert rows["chinchilla-70b"]["memory_bytes"] == pytest.approx(64.95e9 * 2 + 2 * 80 * 8192 * 384 * 2, rel=1e-3)
    warn = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warn) == 1 and "chinchilla-70b needs 130.9 GB" in warn[0] and "does not fit" in warn[0]
