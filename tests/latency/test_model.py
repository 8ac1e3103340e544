"""The latency predictor against closed forms (arch.py's FLOPs and bytes), brute-force sums and properties."""

import numpy as np
import pytest

from infscale.arch import TransformerShape
from infscale.latency.model import (
    HARDWARE,
    HardwareProfile,
    Workload,
    latency_terms,
    predict,
    predict_latency_arrays,
)

SHAPE = TransformerShape(d_model=256, n_layers=6, n_heads=8, n_kv_heads=2, d_ff=704, vocab_size=1000)
HUGE = 1e30


def _profile(**kw):
    base = dict(name="test", peak_flops_per_s={"fp32": 1e12, "bf16": 4e12}, memory_bandwidth_bytes_per_s=1e11,
                compute_efficiency=1.0, memory_efficiency=1.0)
    base.update(kw)
    return HardwareProfile(**base)


def test_memory_bound_decode_equals_arch_bytes_over_bandwidth():
    # infinite FLOP/s: each decode step streams the matmul weights and reads the KV cache (arch.decode_step_bytes),
    # plus the activations in and out of each op group
    wl = Workload(batch=1, input_len=32, output_len=9, dtype="fp32")
    bw = 1e11
    p = predict(SHAPE, wl, _profile(peak_flops_per_s={"fp32": HUGE}, memory_bandwidth_bytes_per_s=bw))
    s, d, L = 32, SHAPE.d_model, SHAPE.n_layers
    act = (L * ((2 * d + 2 * SHAPE.d_attn + 2 * SHAPE.d_kv) + (2 * d + 3 * SHAPE.ffn_hidden)) + d + SHAPE.vocab_size) * 4
    expected = sum((SHAPE.decode_step_bytes(s + k, 1, 4.0, 4.0) + act) / bw for k in range(1, 9))
    assert p.decode_s == pytest.approx(expected, rel=1e-12)
    assert p.decode_per_token_s == pytest.approx(expected / 8, rel=1e-12)


def test_compute_bound_prefill_equals_arch_flops_over_peak():
    # infinite bandwidth, logits at every position: prefill FLOPs are exactly arch.flops_prefill
    wl = Workload(batch=1, input_len=64, output_len=1, dtype="bf16", full_prefill_logits=True)
    p = predict(SHAPE, wl, _profile(memory_bandwidth_bytes_per_s=HUGE))
    assert p.prefill_s == pytest.approx(SHAPE.flops_prefill(64) / 4e12, rel=1e-12)
    assert p.decode_s == 0.0
    # and compute-bound decode at large batch: FLOPs of arch.flops_decode
    wl = Workload(batch=4, input_len=64, output_len=17, dtype="bf16")
    p = predict(SHAPE, wl, _profile(memory_bandwidth_bytes_per_s=HUGE))
    assert p.decode_s == pytest.approx(4 * SHAPE.flops_decode(64, 16) / 4e12, rel=1e-12)


def test_overheads_add_per_layer_and_per_step():
    wl = Workload(batch=1, input_len=16, output_len=33, dtype="fp32")
    plain = predict(SHAPE, wl, _profile())
    over = predict(SHAPE, wl, _profile(layer_overhead_s=1e-4, step_overhead_s=2e-3))
    per_step = SHAPE.n_layers * 1e-4 + 2e-3
    assert over.decode_s - plain.decode_s == pytest.approx(32 * per_step, rel=1e-12)
    assert over.prefill_s - plain.prefill_s == pytest.approx(per_step, rel=1e-12)


@pytest.mark.parametrize("tau_l", [0.0, 2e-5, 1e-4, 1e-2])
def test_overlapped_closed_form_equals_step_by_step_max(tau_l):
    # with overlap, each step costs max(roofline_k, overhead); the closed form must equal the explicit sum
    wl = Workload(batch=2, input_len=100, output_len=300, dtype="fp32")
    prof = _profile(memory_bandwidth_bytes_per_s=2e9, layer_overhead_s=tau_l, step_overhead_s=1e-4,
                    overlap_overhead=True)
    got = predict(SHAPE, wl, prof).decode_s
    serial = prof.with_(overlap_overhead=False, layer_overhead_s=0.0, step_overhead_s=0.0)
    total = 0.0
    for k in range(1, 300):  # roofline time of the single step k from one-step workloads
        def one(c):
            w = Workload(batch=2, input_len=c, output_len=2, dtype="fp32")
            return predict(SHAPE, w, serial).decode_s
        total += max(one(100 + k - 1), SHAPE.n_layers * tau_l + 1e-4)
    assert got == pytest.approx(total, rel=1e-9)


def test_vectorised_equals_scalar():
    rng = np.random.default_rng(0)
    heads = rng.choice([4, 8, 16], 50)
    d = heads * rng.choice([32, 64, 128], 50)
    L = rng.integers(1, 40, 50)
    kv = heads // rng.choice([1, 2, 4], 50)
    ff = rng.integers(100, 5000, 50)
    prof = HARDWARE["h100"]
    wl = Workload(batch=3, input_len=200, output_len=50)
    arr = predict_latency_arrays(prof, d_model=d, n_layers=L, n_heads=heads, n_kv_heads=kv, d_ff=ff,
                                 vocab_size=32000, workload=wl)
    for i in range(50):
        shape = TransformerShape(d_model=int(d[i]), n_layers=int(L[i]), n_heads=int(heads[i]),
                                 n_kv_heads=int(kv[i]), d_ff=int(ff[i]), vocab_size=32000)
        p = predict(shape, wl, prof)
        assert arr["total_s"][i] == pytest.approx(p.total_s, rel=1e-12)
        assert arr["decode_s"][i] == pytest.approx(p.decode_s, rel=1e-12)
    assert arr["total_s"].shape == (50,)


def test_default_widths_follow_transformershape():
    prof = HARDWARE["a100-40gb"]
    a = predict_latency_arrays(prof, d_model=np.array([2048, 3072]), n_layers=np.array([24, 12]),
                               n_heads=np.array([16, 16]))
    for i, shape in enumerate([TransformerShape.open_lm(2048, 24, 16), TransformerShape.open_lm(3072, 12, 16)]):
        assert a["total_s"][i] == pytest.approx(predict(shape, Workload(), prof).total_s, rel=1e-12)


def test_deeper_is_slower_only_through_the_layer_overhead():
    # equal non-embedding parameters (12 d^2 L): d128x16 vs d256x4 (docs/references.md §3)
    deep = TransformerShape(d_model=128, n_layers=16, n_heads=4, d_ff=384, vocab_size=4096)
    wide = TransformerShape(d_model=256, n_layers=4, n_heads=8, d_ff=768, vocab_size=4096)
    assert deep.n_params_non_embedding == pytest.approx(wide.n_params_non_embedding, rel=0.01)
    wl = Workload(batch=1, input_len=128, output_len=256, dtype="fp32")
    roof = HARDWARE["generic-cpu"].with_(layer_overhead_s=0.0, step_overhead_s=0.0)
    # pure roofline: the deep shape is not slower (less LM-head traffic, equal weights)
    assert predict(deep, wl, roof).decode_s <= predict(wide, wl, roof).decode_s * 1.05
    cpu = HARDWARE["generic-cpu"]
    assert predict(deep, wl, cpu).decode_s > 1.5 * predict(wide, wl, cpu).decode_s


def test_monotone_in_lengths_and_batch():
    prof = HARDWARE["l4"].with_(overlap_overhead=False)  # overlapped, a small shape is overhead-bound
    base = predict(SHAPE, Workload(), prof)
    assert predict(SHAPE, Workload(output_len=512), prof).decode_s > base.decode_s
    assert predict(SHAPE, Workload(input_len=1024), prof).prefill_s > base.prefill_s
    assert predict(SHAPE, Workload(batch=64), prof).decode_s >= base.decode_s
    overlapped = HARDWARE["l4"]
    assert predict(SHAPE, Workload(input_len=1024), overlapped).prefill_s >= predict(SHAPE, Workload(), overlapped).prefill_s


def test_latency_terms_broadcast_over_workloads():
    out = latency_terms(flops_per_s=1e12, bytes_per_s=1e11, layer_overhead_s=0.0, step_overhead_s=0.0,
                        d_model=256, n_layers=4, d_attn=256, d_kv=256, d_ff=704, ffn_matrices=3, vocab_size=1000,
                        batch=np.array([1, 2, 4]), input_len=16, output_len=8, weight_bytes=2.0, kv_bytes=2.0)
    assert out["decode_s"].shape == (3,)
    assert np.all(np.diff(out["decode_s"]) > 0)


def test_validation_and_roundtrip():
    with pytest.raises(ValueError, match="batch"):
        Workload(batch=0)
    with pytest.raises(ValueError, match="dtype"):
        Workload(dtype="fp64")
    with pytest.raises(ValueError, match="memory_bandwidth"):
        _profile(memory_bandwidth_bytes_per_s=0.0)
    with pytest.raises(ValueError, match="layer_overhead"):
        _profile(layer_overhead_s=-1.0)
    with pytest.raises(ValueError, match="no peak"):
        _profile().peak_flops("int8")
    with pytest.raises(ValueError, match="positive"):
        predict_latency_arrays(_profile(), d_model=[128, 0], n_layers=2, n_heads=2)
    for _, prof in HARDWARE.items():
        assert HardwareProfile.from_dict(prof.to_dict()) == prof
        assert prof.peak_flops("bf16") > 0
    wl = Workload(batch=2, kv_dtype="fp8")
    assert Workload.from_dict(wl.to_dict()) == wl and wl.kv_bytes == 1.0
    with pytest.raises(ValueError, match="unknown"):
        HardwareProfile.from_dict({**_profile().to_dict(), "colour": "red"})


def test_cache_bandwidth_mixture():
    # no FLOP limit, no overheads: memory time = bytes * (h / cache_bw + (1 - h) / dram_bw), h = min(1, C / ws)
    wl = Workload(batch=1, input_len=32, output_len=9, dtype="fp32")
    dram = _profile(peak_flops_per_s={"fp32": HUGE}, memory_bandwidth_bytes_per_s=1e10)
    base = predict(SHAPE, wl, dram).decode_s
    ws = SHAPE.n_params_matmul * 4 + 2 * SHAPE.n_layers * (32 + 9 / 2) * SHAPE.d_kv * 4
    for cache_bytes in (ws / 4, ws / 2, 2 * ws):
        h = min(1.0, cache_bytes / ws)
        cached = dram.with_(cache_bytes=cache_bytes, cache_bandwidth_bytes_per_s=5e10)
        expected = base * 1e10 * (h / 5e10 + (1 - h) / 1e10)
        assert predict(SHAPE, wl, cached).decode_s == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="cache_bandwidth"):
        dram.with_(cache_bytes=1e6)


def test_attention_efficiency_scales_only_the_attention_term():
    wl = Workload(batch=1, input_len=300, output_len=40, dtype="fp32")
    a = predict(SHAPE, wl, _profile())
    b = predict(SHAPE, wl, _profile(attention_efficiency=0.25))
    assert b.breakdown["attention"] == pytest.approx(4 * a.breakdown["attention"], rel=1e-12)
    assert b.breakdown["matmul"] == a.breakdown["matmul"]
    assert b.decode_s - a.decode_s == pytest.approx(3 * a.breakdown["attention"], rel=1e-9)
