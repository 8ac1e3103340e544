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
    # and lines inside the long steps (shapes timed, problem x strategy x budget) with an ETA: one per 5% of the
    # units (or per interval), rising, the last one the total
    shapes = progress_lines(res.stderr, "latency own")
    assert shapes[-1] == (len(out["latency"]["rows"]), len(out["latency"]["rows"]))
    units = progress_lines(res.stderr, "tts run arith-own")
    done = [d for d, _ in units]
    assert units[-1] == (out["tts"]["n_records"], out["tts"]["n_records"]) and done == sorted(set(done))
    assert len(units) <= 21


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
