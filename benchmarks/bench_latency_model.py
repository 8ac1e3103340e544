"""Latency predictor: error on held-out measured shapes, and time to predict 100,000 shapes (vectorised).

Usage: flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_latency_model.py [RECORDS.jsonl]

1. Calibrates the generic CPU profile on 5 of the bundled CPU records (spread over sizes and aspect ratios) and
   prints the relative decode-latency error on every other shape (median and max of |error|).
2. Bian et al.: held-out Morph-1B (calibrated on the other published A100 latencies) and the Morph-1B / Open-LM-1B ratio.
3. Times `predict_latency_arrays` on 100,000 random shapes (median of 7) against the scalar `predict` loop measured
   in the same run (on 2,000 shapes, scaled to 100,000). Last line: the headline figure.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from infscale.arch import TransformerShape
from infscale.latency.calibrate import (
    BIAN2025_SHAPES,
    BIAN2025_WORKLOAD,
    calibrate_holdout,
    default_free,
    observations_from_records,
)
from infscale.latency.io import DATA_DIR, calibrate_bian2025, latest_records, read_measurements
from infscale.latency.model import HARDWARE, Workload, predict, predict_latency_arrays


def held_out_cpu(path: Path) -> None:
    obs = observations_from_records(latest_records(read_measurements(path)), source=str(path))
    base = HARDWARE["generic-cpu"]
    res = calibrate_holdout(obs, base, n_fit=5, free=default_free(base))
    p = res.calibrator.profile_
    print(f"CPU records: {path.name}, {len(obs)} shapes; calibrated on {', '.join(res.fit_labels)}")
    print(f"  compute eff {p.compute_efficiency:.3f}, memory eff {p.memory_efficiency:.3f}, "
          f"per-layer {p.layer_overhead_s * 1e3:.4f} ms, per-step {p.step_overhead_s * 1e3:.4f} ms, "
          f"attention eff {p.attention_efficiency:.3f}")
    for label, err in zip(res.test_labels, res.test_errors["decode_s"], strict=True):
        print(f"  held-out {label:>10}: decode error {err * 100:+6.1f}%")
    print(f"held-out decode |error| over {len(res.test_labels)} shapes: median {res.median_abs_error() * 100:.1f}%, "
          f"max {res.max_abs_error() * 100:.1f}%")


def bian2025() -> None:
    cal = calibrate_bian2025([m for m in BIAN2025_SHAPES if m != "Morph-1B"])
    morph = predict(BIAN2025_SHAPES["Morph-1B"][0], BIAN2025_WORKLOAD, cal.profile_).total_s
    openlm = predict(BIAN2025_SHAPES["Open-LM-1B"][0], BIAN2025_WORKLOAD, cal.profile_).total_s
    print(f"Bian et al. A100, Morph-1B held out: predicted {morph:.2f} s (published 1.96 s, {morph / 1.96 - 1:+.1%}), "
          f"ratio Open-LM-1B/Morph-1B {openlm / morph:.2f}x (published 1.84x)")
    full = calibrate_bian2025()
    morph = predict(BIAN2025_SHAPES["Morph-1B"][0], BIAN2025_WORKLOAD, full.profile_).total_s
    openlm = predict(BIAN2025_SHAPES["Open-LM-1B"][0], BIAN2025_WORKLOAD, full.profile_).total_s
    print(f"Bian et al. A100, all 7 rows: ratio {openlm / morph:.2f}x; max |error| "
          f"{np.max(np.abs(full.relative_errors_['total_s'])):.1%}")


def timing(n: int = 100_000, n_scalar: int = 2_000) -> None:
    rng = np.random.default_rng(0)
    heads = rng.choice([8, 16, 32, 64], n)
    d = heads * 128
    layers = rng.integers(4, 96, n)
    kv = heads // rng.choice([1, 4, 8], n)
    prof = HARDWARE["a100-40gb-bian2025"]
    wl = Workload()
    vec = []
    for _ in range(7):
        t0 = time.perf_counter()
        out = predict_latency_arrays(prof, d_model=d, n_layers=layers, n_heads=heads, n_kv_heads=kv, workload=wl)
        vec.append(time.perf_counter() - t0)
    shapes = [TransformerShape(d_model=int(d[i]), n_layers=int(layers[i]), n_heads=int(heads[i]),
                               n_kv_heads=int(kv[i])) for i in range(n_scalar)]
    loop = []
    for _ in range(3):
        t0 = time.perf_counter()
        scalar = [predict(s, wl, prof).total_s for s in shapes]
        loop.append((time.perf_counter() - t0) * n / n_scalar)
    assert np.allclose(scalar, out["total_s"][:n_scalar], rtol=1e-12)
    v, s = statistics.median(vec), statistics.median(loop)
    print(f"predict {n:,} shapes: vectorised {v * 1e3:.1f} ms (median of 7), scalar loop {s:.2f} s (scaled from "
          f"{n_scalar:,}; median of 3)")
    print(f"vectorised 100,000 shapes in {v:.3f} s; speed-up vs scalar loop: {s / v:.0f}x")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_DIR / "cpu-records-own.jsonl"
    if path.exists():
        held_out_cpu(path)
    else:
        print(f"no CPU records at {path}: run `infscale latency measure` first")
    bian2025()
    timing()


if __name__ == "__main__":
    main()
