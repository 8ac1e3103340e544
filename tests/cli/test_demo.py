"""`infscale demo`: the command runs the reduced demo into --out and prints JSON; bad input -> one line, exit 2."""

import json
import subprocess
import sys


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_quick_demo_json(tmp_path, progress_lines):
    res = _cli("demo", "--quick", "--out", "run", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["report"] == "run/report.html" and (tmp_path / "run/report.html").is_file()
    assert out["plan"]["a100"]["best"]["label"].startswith("d3328x12")
    # progress went to stderr, one line per step start
    for step in ("laws", "latency", "plan", "tts", "report"):
        assert f"{step}" in res.stderr
    # and one line per unit of work inside the long steps (shapes timed, problem x strategy x budget), with an ETA
    shapes = progress_lines(res.stderr, "latency own")
    assert shapes == [(i, len(out["latency"]["rows"])) for i in range(1, len(out["latency"]["rows"]) + 1)]
    units = progress_lines(res.stderr, "tts run arith-own")
    assert len(units) == units[0][1] == out["tts"]["n_records"] and [d for d, _ in units] == list(range(1, len(units) + 1))


def test_quick_demo_table(tmp_path):
    res = _cli("demo", "--quick", "--out", "run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "plan A100" in res.stdout and "report: run/report.html" in res.stdout


def test_bad_config_one_line_exit_2(tmp_path):
    (tmp_path / "demo.yaml").write_text("plan_a100: {max_latency_s: -1}\n")
    res = _cli("demo", "--quick", "--config", "demo.yaml", "--out", "run", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "demo.yaml: field plan_a100.max_latency_s:" in res.stderr
    assert not (tmp_path / "run").exists()  # nothing started
