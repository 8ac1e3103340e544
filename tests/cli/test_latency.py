"""`infscale latency` end to end through the real console entry point (subprocess): outputs, errors, exit codes."""

import json
import subprocess
import sys

import pytest

from infscale.arch import TransformerShape
from infscale.latency.calibrate import BIAN2025_SHAPES, BIAN2025_WORKLOAD
from infscale.latency.model import HARDWARE, Workload, predict
from infscale.records import append_one


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "infscale.cli.main", "latency", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def test_predict_json_matches_library():
    out = json.loads(run("predict", "--shape", "morph-1b", "--shape", "open-lm-1b", "--json").stdout)
    assert out["hardware"] == "a100-40gb-bian2025"
    got = {p["shape"]: p["total_s"] for p in out["predictions"]}
    prof = HARDWARE["a100-40gb-bian2025"]
    assert got["morph-1b"] == pytest.approx(predict(BIAN2025_SHAPES["Morph-1B"][0], BIAN2025_WORKLOAD, prof).total_s)
    assert got["open-lm-1b"] / got["morph-1b"] == pytest.approx(1.84, rel=0.10)
    # both within the sizes the Bian et al. profile was calibrated on: no warning
    assert out["calibrated_on"].startswith("Bian et al.'s published") and all(not p["warnings"] for p in out["predictions"])


def test_predict_says_when_it_rests_on_an_uncalibrated_profile_or_extrapolates():
    h100 = run("predict", "--shape", "d2048x24h16", "--hardware", "h100")
    assert "warning: uncalibrated: profile 'h100' is a datasheet preset" in h100.stderr  # warnings: stderr
    out = json.loads(run("predict", "--shape", "d2048x24h16", "--hardware", "h100", "--json").stdout)
    assert out["calibrated_on"] is None and out["predictions"][0]["warnings"][0].startswith("uncalibrated")
    small = run("predict", "--shape", "d512x8", "--shape", "morph-1b")
    assert "warning: extrapolation: d512x8: N = " in small.stderr and "morph-1b: N" not in small.stderr


def test_json_lists_each_notice_with_its_fields():
    """--json keeps the warning lines where they were and lists each notice once, typed, under "notices"."""
    out = json.loads(run("predict", "--shape", "d512x8", "--shape", "d512x8h4", "--json").stdout)
    (notice,) = out["notices"]
    assert notice["kind"] == "extrapolation" and notice["quantity"] == "N" and notice["source"] == "profile"
    lo, hi = notice["range"]
    assert notice["value"] < lo < hi and out["predictions"][0]["warnings"] == [f"extrapolation: {notice['text']}"]
    assert "notices" not in json.loads(run("predict", "--shape", "morph-1b", "--json").stdout)


@pytest.mark.parametrize("args, message", [
    (("predict", "--shape", "d100x2h3"), "not divisible by n_heads"),
    (("predict", "--shape", "d128x0"), "n_layers must be a positive integer"),
    (("predict", "--shape", "d128x2", "--hardware", "tpu-v9"), "unknown hardware profile 'tpu-v9'"),
    (("predict", "--shape", "d128x2", "--dtype", "fp64"), "workload"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_measure_missing_backend_and_bad_config(tmp_path):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text("device: cpu\nshapes: [d64x1h2v97]\nworkload: {input_len: 4, output_len: 3}\n")
    proc = run("measure", str(cfg), "--out", str(tmp_path / "r.jsonl"), "--backend", "vllm", check=False)
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert proc.returncode == 2 and "vllm" in proc.stderr and not (tmp_path / "r.jsonl").exists()
    cfg.write_text("device: cpu\nshapes: [d64x1h2]\nwarmups: 3\n")
    proc = run("measure", str(cfg), "--out", str(tmp_path / "r.jsonl"), check=False)
    assert proc.returncode == 2 and "warmups" in proc.stderr


def test_measure_then_resume(tmp_path):
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text("device: cpu\nthreads: 1\nwarmup: 0\nrepeats: 2\nvocab_size: 97\n"
                   "workload: {input_len: 4, output_len: 3}\nshapes: [d64x1h2f128, d64x2h2f128]\n")
    out = tmp_path / "r.jsonl"
    first = json.loads(run("measure", str(cfg), "--out", str(out), "--json").stdout)
    assert [r["label"] for r in first] == ["d64x1", "d64x2"]
    second = run("measure", str(cfg), "--out", str(out), "--json")
    assert json.loads(second.stdout) == first and "[1/" not in second.stderr  # nothing re-measured
    assert len(out.read_text().splitlines()) == 2


def test_calibrate_on_synthetic_records_and_plot(tmp_path):
    # records generated from known terms: the CLI fits 5, reports (near-)zero held-out error, saves a usable profile
    true = HARDWARE["generic-cpu"].with_(memory_efficiency=1.2, layer_overhead_s=0.2e-3)
    wl = Workload(batch=1, input_len=64, output_len=65, dtype="fp32", full_prefill_logits=True)
    path = tmp_path / "rec.jsonl"
    for d, L in [(64, 32), (128, 8), (256, 2), (128, 32), (256, 8), (512, 2), (256, 32), (512, 8)]:
        shape = TransformerShape(d_model=d, n_layers=L, n_heads=d // 32, vocab_size=4096)
        p = predict(shape, wl, true)
        append_one(path, {"key": shape.label, "label": shape.label, "backend": "own", "shape": shape.to_dict(),
                             "workload": wl.to_dict(), "prefill_s": p.prefill_s, "decode_s": p.decode_s,
                             "total_s": p.total_s})
    prof = tmp_path / "cpu.json"
    out = json.loads(run("calibrate", str(path), "--out", str(prof), "--json").stdout)
    assert len(out["fit_on"]) == 5 and len(out["held_out"]) == 3
    assert out["held_out_decode_median_abs_error"] < 1e-6
    assert out["profile"]["layer_overhead_s"] == pytest.approx(0.2e-3, rel=1e-5)
    pred = json.loads(run("predict", "--shape", "d128x8h4v4096", "--hardware", str(prof), "--dtype", "fp32",
                          "--json").stdout)
    assert pred["hardware"] == "generic-cpu-calibrated"
    png = tmp_path / "plot.png"
    run("plot", str(path), "--hardware", str(prof), "--out", str(png))
    assert png.stat().st_size > 10_000


def test_bian2025_calibration_and_hardware_list(tmp_path):
    out = json.loads(run("calibrate", "--bian2025", "--json").stdout)
    assert out["ratio"] == pytest.approx(1.84, rel=0.10)
    prof = tmp_path / "a100.json"
    text = run("calibrate", "--bian2025", "--out", str(prof)).stdout
    assert prof.exists() and f"wrote {prof}: use it with --hardware {prof}" in " ".join(text.split())
    assert "profile not saved (give --out FILE.json to keep it)" in run("calibrate", "--bian2025").stdout
    names = {p["name"] for p in json.loads(run("hardware", "--json").stdout)}
    assert {"a100-40gb", "a100-80gb", "h100", "h200", "a30", "l4", "generic-cpu", "a100-40gb-bian2025"} <= names
