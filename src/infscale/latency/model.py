"""Analytic latency predictor: per-op roofline plus per-layer and per-step overheads (pure numpy).

One forward step of a decoder is split into four kinds of op per layer -- the attention projections (Q, K, V, O),
the attention itself (``Q K^T`` and ``A V`` over the KV cache) and the FFN -- plus the LM head. Each op costs

    t_op = max(FLOPs / (peak_flops * compute_efficiency), bytes / (bandwidth * memory_efficiency))

and every step adds ``n_layers * layer_overhead_s + step_overhead_s`` (kernel launches, Python, synchronisation).
docs/references.md §3 explains why the overhead terms are needed: at equal parameter count a pure roofline gives equal
weights and FLOPs, so it cannot reproduce "deeper is slower"; the per-layer overhead does.

Protocol (optimum-benchmark, Bian et al.): *prefill* is one forward over the ``input_len`` prompt tokens that yields the
first new token; *decode* is the remaining ``output_len - 1`` single-token steps, step ``k`` attending to
``input_len + k`` keys. Units: seconds, FLOP/s, bytes/s.

Everything is vectorised: `predict_latency_arrays` evaluates 1e5 shapes in a few milliseconds.
Hardware presets are data (`HARDWARE`); loading and saving profiles lives in `latency/io.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

import numpy as np

from infscale.arch import TransformerShape, ffn_width
from infscale.arch import ffn_matrices as arch_ffn_matrices
from infscale.jsonsafe import is_finite_number
from infscale.registry import Registry

__all__ = [
    "DTYPE_BYTES",
    "Workload",
    "HardwareProfile",
    "LatencyPrediction",
    "HARDWARE",
    "predict_latency_arrays",
    "predict",
    "latency_terms",
]

DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
"""Bytes per element of each supported dtype name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What is generated: batch size, prompt and output lengths, and the number format."""

    batch: int = 1
    """Sequences generated together."""
    input_len: int = 128
    """Prompt tokens per sequence (Bian et al.: 128)."""
    output_len: int = 256
    """New tokens per sequence, the first one produced by the prefill (Bian et al.: 256)."""
    dtype: str = "bf16"
    """Weights and activations (a key of `DTYPE_BYTES`)."""
    kv_dtype: str | None = None
    """KV-cache elements; ``None`` means ``dtype``."""
    full_prefill_logits: bool = False
    """Whether the prefill computes logits at every prompt position (a plain ``model(ids)``) or only the last
    one (HF ``generate``, vLLM)."""

    def __post_init__(self) -> None:
        for name in ("batch", "input_len", "output_len"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Workload.{name} must be a positive integer, got {value!r}")
        for name in ("dtype", "kv_dtype"):
            value = getattr(self, name)
            if value is not None and value not in DTYPE_BYTES:
                raise ValueError(f"Workload.{name} must be one of {sorted(DTYPE_BYTES)}, got {value!r}")

    @property
    def weight_bytes(self) -> float:
        return DTYPE_BYTES[self.dtype]

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv_dtype or self.dtype]

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Workload:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Workload: unknown field(s) {sorted(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


MAX_EFFICIENCY = 50.0
"""Upper bound of a profile's efficiencies, the calibrator's own bound. Above 1 is physical on CPUs only: a rate
relative to the nominal peak, reached when weights or KV sit in cache; a compute or memory efficiency far above that
is a typo or a wrong peak."""


def _finite_positive(value: object) -> bool:
    return is_finite_number(value) and value > 0  # type: ignore[operator]


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareProfile:
    """A device's peak rates and the calibrated terms of the latency model."""

    name: str
    """Registry name, e.g. ``a100-40gb``."""
    peak_flops_per_s: Mapping[str, float]
    """Dense peak FLOP/s per dtype name (no sparsity)."""
    memory_bandwidth_bytes_per_s: float
    """Peak memory bandwidth."""
    compute_efficiency: float = 0.6
    """Fraction of peak FLOP/s a matmul reaches."""
    memory_efficiency: float = 0.7
    """Fraction of peak bandwidth a weight/KV stream reaches (may exceed 1 on CPUs when data sits in cache)."""
    layer_overhead_s: float = 0.0
    """Fixed cost per layer per forward step (kernel launches, framework work)."""
    step_overhead_s: float = 0.0
    """Fixed cost per forward step (sampling, Python loop, synchronisation)."""
    attention_efficiency: float = 1.0
    """Extra factor on both rates for the attention over the KV cache (small strided per-head reads and copies run
    far below streaming bandwidth on CPUs); 1 = like the matmuls."""
    cache_bytes: float = 0.0
    """Cache that keeps weights between steps (a CPU's last-level cache); 0 = none. The fraction
    ``min(1, cache_bytes / working_set)`` of the traffic streams at ``cache_bandwidth_bytes_per_s``."""
    cache_bandwidth_bytes_per_s: float = 0.0
    """Effective bandwidth of that cache (already including its efficiency); used only with ``cache_bytes > 0``."""
    overlap_overhead: bool = False
    """``True`` when the host issues work asynchronously (CUDA): a step takes ``max(device time, overhead)``, as
    kernel launches for the next ops run while the device computes. ``False`` (CPU): the same cores do both, so
    a step takes ``device time + overhead``."""
    memory_bytes: float | None = None
    """Device memory, for reference."""
    description: str = ""
    """Where the numbers come from."""
    calibrated_on: str = ""
    """The measurements its efficiencies and overheads were fitted on; empty for a datasheet preset whose
    efficiencies and overheads are assumed, never calibrated (`infscale.extrapolation.profile_warnings` says so beside
    every latency predicted on it)."""
    calibrated_n_params: tuple[float, float] | None = None
    """Smallest and largest model (parameters) among those measurements: a prediction outside them extrapolates."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"HardwareProfile.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.peak_flops_per_s, Mapping) or not self.peak_flops_per_s:
            raise ValueError(f"HardwareProfile {self.name}: peak_flops_per_s must be a non-empty mapping dtype -> "
                             f"FLOP/s, got {self.peak_flops_per_s!r}")
        for dtype, value in self.peak_flops_per_s.items():
            if dtype not in DTYPE_BYTES or not _finite_positive(value):
                raise ValueError(f"HardwareProfile {self.name}: bad peak_flops_per_s entry {dtype!r}: {value!r}")
        if not _finite_positive(self.memory_bandwidth_bytes_per_s):
            raise ValueError(f"HardwareProfile {self.name}: memory_bandwidth_bytes_per_s must be a finite positive "
                             f"number, got {self.memory_bandwidth_bytes_per_s!r}")
        for name in ("compute_efficiency", "memory_efficiency", "attention_efficiency"):
            value = getattr(self, name)
            if not _finite_positive(value) or value > MAX_EFFICIENCY:
                raise ValueError(f"HardwareProfile {self.name}: {name} must be in (0, {MAX_EFFICIENCY:g}], got "
                                 f"{value!r}")
        for name in ("layer_overhead_s", "step_overhead_s", "cache_bytes", "cache_bandwidth_bytes_per_s"):
            value = getattr(self, name)
            if not (is_finite_number(value) and value >= 0):
                raise ValueError(f"HardwareProfile {self.name}: {name} must be a finite number >= 0, got {value!r}")
        if self.cache_bytes > 0 and not self.cache_bandwidth_bytes_per_s > 0:
            raise ValueError(f"HardwareProfile {self.name}: cache_bytes needs a positive cache_bandwidth_bytes_per_s")
        if self.memory_bytes is not None and not _finite_positive(self.memory_bytes):
            raise ValueError(f"HardwareProfile {self.name}: memory_bytes must be a finite positive number or null, "
                             f"got {self.memory_bytes!r}")
        if not isinstance(self.overlap_overhead, bool):
            raise ValueError(f"HardwareProfile {self.name}: overlap_overhead must be true or false")
        if not isinstance(self.calibrated_on, str):
            raise ValueError(f"HardwareProfile {self.name}: calibrated_on must be a string")
        span = self.calibrated_n_params
        if span is not None:
            ok = isinstance(span, list | tuple) and len(span) == 2 and all(_finite_positive(v) for v in span) \
                and span[0] <= span[1]
            if not ok:
                raise ValueError(f"HardwareProfile {self.name}: calibrated_n_params must be [smallest, largest] "
                                 f"positive parameter counts, got {span!r}")
            object.__setattr__(self, "calibrated_n_params", (float(span[0]), float(span[1])))

    def peak_flops(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype``; fp16/bf16 stand in for each other, fp32 falls back to tf32."""
        table = self.peak_flops_per_s
        for key in (dtype, {"bf16": "fp16", "fp16": "bf16", "fp32": "tf32"}.get(dtype, dtype)):
            if key in table:
                return float(table[key])
        raise ValueError(f"hardware {self.name!r} has no peak FLOP/s for dtype {dtype!r} (has {sorted(table)})")

    def flops_per_byte(self, dtype: str = "bf16") -> float:
        """Peak FLOP/s over peak memory bandwidth: what one byte of memory traffic costs in FLOPs on this hardware
        (the exchange rate of a memory-aware accounting; A100 bf16: 312e12 / 2.039e12 = 153)."""
        return self.peak_flops(dtype) / self.memory_bandwidth_bytes_per_s

    def with_(self, **changes: object) -> HardwareProfile:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["peak_flops_per_s"] = dict(self.peak_flops_per_s)
        if self.calibrated_n_params is not None:
            out["calibrated_n_params"] = list(self.calibrated_n_params)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> HardwareProfile:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"HardwareProfile: unknown field(s) {sorted(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyPrediction:
    """Predicted latency of one workload on one shape."""

    prefill_s: float
    """Time to the first token."""
    decode_s: float
    """Time for the remaining ``output_len - 1`` tokens."""
    total_s: float
    """``prefill_s + decode_s`` (what ``generate`` takes)."""
    decode_per_token_s: float
    """``decode_s / (output_len - 1)`` (0 when only one token is generated)."""
    breakdown: dict[str, float] = field(default_factory=dict)
    """Seconds per term: ``matmul``, ``attention``, ``lm_head``, ``overhead``."""


def _roofline(flops: np.ndarray, nbytes: np.ndarray, flops_per_s: np.ndarray, bytes_per_s: np.ndarray) -> np.ndarray:
    return np.maximum(flops / flops_per_s, nbytes / bytes_per_s)


def latency_terms(
    *,
    flops_per_s: np.ndarray | float,
    bytes_per_s: np.ndarray | float,
    layer_overhead_s: np.ndarray | float,
    step_overhead_s: np.ndarray | float,
    d_model: np.ndarray | int,
    n_layers: np.ndarray | int,
    d_attn: np.ndarray | int,
    d_kv: np.ndarray | int,
    d_ff: np.ndarray | int,
    ffn_matrices: np.ndarray | int,
    vocab_size: np.ndarray | int,
    batch: np.ndarray | int,
    input_len: np.ndarray | int,
    output_len: np.ndarray | int,
    weight_bytes: np.ndarray | float,
    kv_bytes: np.ndarray | float,
    full_prefill_logits: np.ndarray | bool = False,
    overlap_overhead: np.ndarray | bool = False,
    cache_bytes: np.ndarray | float = 0.0,
    cache_bytes_per_s: np.ndarray | float = 0.0,
    attention_efficiency: np.ndarray | float = 1.0,
) -> dict[str, np.ndarray]:
    """The model's core, every argument broadcastable: effective rates (already multiplied by the efficiencies),
    overheads, widths and workloads. Returns seconds: ``prefill_s``, ``decode_s`` and their parts.

    Per layer the matmul weights are ``w_proj = 2 d d_attn + 2 d d_kv`` and ``w_ffn = m d d_ff``; the LM head has
    ``V d``. A decode step streams every weight once (bytes ``w * weight_bytes``, FLOPs ``2 B w``) and reads the KV
    cache (``2 B t d_kv kv_bytes`` bytes, ``4 B t d_attn`` FLOPs per layer at context ``t``). Activations entering
    and leaving each matmul are counted as memory traffic too. With ``overlap_overhead`` a step costs
    ``max(roofline, overhead)`` instead of their sum; the decode sum over steps stays closed-form because the
    roofline part grows linearly with the context. With a cache (``cache_bytes > 0``) the fraction
    ``h = min(1, cache_bytes / working_set)`` of all traffic streams at ``cache_bytes_per_s``:
    ``1 / bandwidth_eff = h / cache_bytes_per_s + (1 - h) / bytes_per_s``, the working set being the matmul weights
    plus the KV cache at the mean decode context.
    """
    f64 = np.float64
    d, L, V = np.asarray(d_model, f64), np.asarray(n_layers, f64), np.asarray(vocab_size, f64)
    da, dkv = np.asarray(d_attn, f64), np.asarray(d_kv, f64)
    ff, m = np.asarray(d_ff, f64), np.asarray(ffn_matrices, f64)
    B, s, n = np.asarray(batch, f64), np.asarray(input_len, f64), np.asarray(output_len, f64)
    wb, kvb = np.asarray(weight_bytes, f64), np.asarray(kv_bytes, f64)
    net = _Net(d=d, L=L, V=V, da=da, dkv=dkv, wb=wb, kvb=kvb,
               w_proj=2.0 * d * da + 2.0 * d * dkv, w_ffn=m * d * ff, w_head=V * d,
               act_proj=2.0 * d + 2.0 * da + 2.0 * dkv, act_ffn=2.0 * d + m * ff)  # activations: elements per token
    P = np.asarray(flops_per_s, f64)
    working_set = (L * (net.w_proj + net.w_ffn) + net.w_head) * wb + 2.0 * B * L * (s + n / 2.0) * dkv * kvb
    BW = _cached_bandwidth(np.asarray(bytes_per_s, f64), np.asarray(cache_bytes, f64),
                           np.asarray(cache_bytes_per_s, f64), working_set)
    ea = np.asarray(attention_efficiency, f64)
    step_overhead = L * np.asarray(layer_overhead_s, f64) + np.asarray(step_overhead_s, f64)
    overlap = np.asarray(overlap_overhead, bool)
    decode = _decode_terms(net, B, s, n, P, BW, ea, step_overhead, overlap)
    return {**_prefill_terms(net, B, s, P, BW, ea, np.asarray(full_prefill_logits, bool), step_overhead, overlap),
            **decode}


@dataclass(frozen=True, slots=True)
class _Net:
    """The widths `latency_terms` reads, as float arrays: per-layer matmul weights (``w_proj``, ``w_ffn``), the LM
    head's (``w_head``), the activations entering and leaving each op group per token, the bytes per element."""

    d: np.ndarray
    L: np.ndarray
    V: np.ndarray
    da: np.ndarray
    dkv: np.ndarray
    wb: np.ndarray
    kvb: np.ndarray
    w_proj: np.ndarray
    w_ffn: np.ndarray
    w_head: np.ndarray
    act_proj: np.ndarray
    act_ffn: np.ndarray


def _cached_bandwidth(bw: np.ndarray, cache: np.ndarray, cache_bw: np.ndarray, working_set: np.ndarray) -> np.ndarray:
    """A cache holding the fraction ``h`` of the working set serves that share of the traffic at its own rate."""
    hit = np.where(cache > 0, np.minimum(1.0, cache / working_set), 0.0)
    with np.errstate(divide="ignore"):
        inv_cache = np.where(hit > 0, 1.0 / np.where(cache_bw > 0, cache_bw, 1.0), 0.0)
    return 1.0 / (hit * inv_cache + (1.0 - hit) / bw)


def _decode_terms(net: _Net, B, s, n, P, BW, ea, step_overhead, overlap) -> dict[str, np.ndarray]:
    """n - 1 steps of one token per sequence: matmuls, attention (linear in the context, summed in closed form), the
    LM head and the per-step overhead (summed, or hidden behind the roofline where ``overlap``)."""
    wb, L = net.wb, net.L
    steps = n - 1.0
    t_proj = _roofline(2.0 * B * net.w_proj, net.w_proj * wb + B * net.act_proj * wb, P, BW)
    t_ffn = _roofline(2.0 * B * net.w_ffn, net.w_ffn * wb + B * net.act_ffn * wb, P, BW)
    t_head = _roofline(2.0 * B * net.w_head, net.w_head * wb + B * (net.d + net.V) * wb, P, BW)
    # attention at context t is linear in t for both FLOPs and bytes, so the max is taken per unit of context
    attn_per_key = np.maximum(4.0 * B * net.da / (P * ea), 2.0 * B * net.dkv * net.kvb / (BW * ea))
    sum_context = steps * s + steps * (steps + 1.0) / 2.0  # sum over k = 1..n-1 of (s + k)
    decode_matmul = steps * L * (t_proj + t_ffn)
    decode_attn = L * attn_per_key * sum_context
    decode_head = steps * t_head
    roofline = decode_matmul + decode_attn + decode_head
    # overlapped: sum over k = 1..S of max(a + b k, O) with a + b k the roofline time of step k
    a = L * (t_proj + t_ffn) + t_head + L * attn_per_key * s
    b = L * attn_per_key
    with np.errstate(divide="ignore", invalid="ignore"):
        k_ratio = np.where(b > 0, np.floor((step_overhead - a) / np.where(b > 0, b, 1.0)),
                           np.where(a <= step_overhead, steps, 0.0))
    k0 = np.clip(k_ratio, 0.0, steps)  # steps whose roofline time is below the overhead
    overlapped = k0 * step_overhead + (steps - k0) * a + b * (steps * (steps + 1.0) - k0 * (k0 + 1.0)) / 2.0
    decode_s = np.where(overlap, overlapped, roofline + steps * step_overhead)
    return {"decode_s": decode_s, "decode_matmul_s": decode_matmul, "decode_attention_s": decode_attn,
            "decode_lm_head_s": decode_head,
            "decode_overhead_s": decode_s - roofline}  # the overhead not hidden behind device work


def _prefill_terms(net: _Net, B, s, P, BW, ea, full_logits, step_overhead, overlap) -> dict[str, np.ndarray]:
    """One step over ``B s`` tokens: matmuls, causal attention (token i attends to i keys; K and V written once and
    read back), the LM head (every position's logits, or the last one's), the step's overhead."""
    wb, L = net.wb, net.L
    tok = B * s
    p_proj = _roofline(2.0 * tok * net.w_proj, net.w_proj * wb + tok * net.act_proj * wb, P, BW)
    p_ffn = _roofline(2.0 * tok * net.w_ffn, net.w_ffn * wb + tok * net.act_ffn * wb, P, BW)
    p_attn = _roofline(4.0 * B * net.da * s * (s + 1.0) / 2.0, 4.0 * B * s * net.dkv * net.kvb + 2.0 * tok * net.da * wb,
                       P * ea, BW * ea)
    head_pos = np.where(full_logits, s, 1.0)
    p_head = _roofline(2.0 * B * head_pos * net.w_head, net.w_head * wb + B * head_pos * (net.d + net.V) * wb, P, BW)
    prefill_roofline = L * (p_proj + p_ffn + p_attn) + p_head
    prefill_s = np.where(overlap, np.maximum(prefill_roofline, step_overhead), prefill_roofline + step_overhead)
    return {"prefill_s": prefill_s, "prefill_overhead_s": prefill_s - prefill_roofline}


def predict_latency_arrays(
    profile: HardwareProfile,
    *,
    d_model: np.ndarray | int,
    n_layers: np.ndarray | int,
    n_heads: np.ndarray | int,
    n_kv_heads: np.ndarray | int | None = None,
    d_ff: np.ndarray | int | None = None,
    vocab_size: np.ndarray | int = 50432,
    head_dim: np.ndarray | int | None = None,
    ffn_matrices: int = 3,
    workload: Workload | None = None,
) -> dict[str, np.ndarray]:
    """Vectorised prediction over arrays of shapes for one workload (what the planner calls on 1e5 shapes).

    Defaults follow `TransformerShape`: ``n_kv_heads = n_heads``, ``head_dim = d_model // n_heads``,
    ``d_ff = 256 * ceil(8 d / 3 / 256)`` (SwiGLU). Returns arrays ``prefill_s``, ``decode_s``, ``total_s``,
    ``decode_per_token_s`` (broadcast shape of the inputs).
    """
    wl = Workload() if workload is None else workload
    d = np.asarray(d_model, np.int64)
    L = np.asarray(n_layers, np.int64)
    h = np.asarray(n_heads, np.int64)
    if np.any(d <= 0) or np.any(L <= 0) or np.any(h <= 0):
        raise ValueError("predict_latency_arrays: d_model, n_layers and n_heads must be positive")
    hd = d // h if head_dim is None else np.asarray(head_dim, np.int64)
    kv = h if n_kv_heads is None else np.asarray(n_kv_heads, np.int64)
    ff = ffn_width(d) if d_ff is None else np.asarray(d_ff, np.int64)
    out = latency_terms(
        flops_per_s=profile.peak_flops(wl.dtype) * profile.compute_efficiency,
        bytes_per_s=profile.memory_bandwidth_bytes_per_s * profile.memory_efficiency,
        layer_overhead_s=profile.layer_overhead_s,
        step_overhead_s=profile.step_overhead_s,
        d_model=d, n_layers=L, d_attn=h * hd, d_kv=kv * hd, d_ff=ff, ffn_matrices=ffn_matrices,
        vocab_size=vocab_size, batch=wl.batch, input_len=wl.input_len, output_len=wl.output_len,
        weight_bytes=wl.weight_bytes, kv_bytes=wl.kv_bytes, full_prefill_logits=wl.full_prefill_logits,
        overlap_overhead=profile.overlap_overhead, cache_bytes=profile.cache_bytes,
        cache_bytes_per_s=profile.cache_bandwidth_bytes_per_s, attention_efficiency=profile.attention_efficiency,
    )
    out["total_s"] = out["prefill_s"] + out["decode_s"]
    out["decode_per_token_s"] = out["decode_s"] / max(wl.output_len - 1, 1)
    return out


def predict(shape: TransformerShape, workload: Workload, profile: HardwareProfile) -> LatencyPrediction:
    """Scalar prediction for one `TransformerShape` (same formulas as `predict_latency_arrays`)."""
    out = predict_latency_arrays(
        profile, d_model=shape.d_model, n_layers=shape.n_layers, n_heads=shape.n_heads,
        n_kv_heads=shape.kv_heads, d_ff=shape.ffn_hidden, vocab_size=shape.vocab_size, head_dim=shape.hd,
        ffn_matrices=arch_ffn_matrices(shape.ffn_kind), workload=workload,
    )
    breakdown = {
        "matmul": float(out["decode_matmul_s"]),
        "attention": float(out["decode_attention_s"]),
        "lm_head": float(out["decode_lm_head_s"]),
        "overhead": float(out["decode_overhead_s"] + out["prefill_overhead_s"]),
        "prefill": float(out["prefill_s"]),
    }
    return LatencyPrediction(
        prefill_s=float(out["prefill_s"]), decode_s=float(out["decode_s"]), total_s=float(out["total_s"]),
        decode_per_token_s=float(out["decode_per_token_s"]), breakdown=breakdown,
    )


def _gpu(name: str, flops: dict[str, float], bw: float, mem_gb: float, desc: str) -> HardwareProfile:
    # GPU defaults: eager PyTorch issues ~10 kernels per layer at ~4 us each; the step overhead covers sampling
    # and the Python loop. Calibrate for real numbers (`infscale latency calibrate`).
    return HardwareProfile(
        name=name, peak_flops_per_s=flops, memory_bandwidth_bytes_per_s=bw, compute_efficiency=0.6,
        memory_efficiency=0.8, layer_overhead_s=40e-6, step_overhead_s=1e-3, overlap_overhead=True,
        memory_bytes=mem_gb * 1e9, description=desc,
    )


HARDWARE: Registry[HardwareProfile] = Registry("hardware profile", normalize=lambda s: s.strip().lower())
"""Hardware profiles by name: the datasheet presets below, Bian et al.'s calibrated A100, the profiles shipped in
``latency/data/profiles/`` (registered by `infscale.latency.io`) and any a plugin adds."""
for _p in (
        _gpu("a100-40gb", {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12, "int8": 624e12},
             1.555e12, 40, "NVIDIA A100 SXM4 40GB datasheet (dense); default efficiencies/overheads"),
        _gpu("a100-80gb", {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12, "int8": 624e12},
             2.039e12, 80, "NVIDIA A100 SXM4 80GB datasheet (dense); default efficiencies/overheads"),
        _gpu("h100", {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12, "fp8": 1979e12,
                      "int8": 1979e12},
             3.35e12, 80, "NVIDIA H100 SXM5 80GB datasheet (dense); default efficiencies/overheads"),
        _gpu("h200", {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12, "fp8": 1979e12,
                      "int8": 1979e12},
             4.8e12, 141, "NVIDIA H200 SXM 141GB datasheet (dense); default efficiencies/overheads"),
        _gpu("a30", {"bf16": 165e12, "fp16": 165e12, "tf32": 82e12, "fp32": 10.3e12, "int8": 330e12},
             0.933e12, 24, "NVIDIA A30 24GB datasheet (dense); default efficiencies/overheads"),
        _gpu("l4", {"bf16": 121e12, "fp16": 121e12, "tf32": 60e12, "fp32": 30.3e12, "fp8": 242e12, "int8": 242e12},
             0.300e12, 24, "NVIDIA L4 24GB datasheet (dense); default efficiencies/overheads"),
        HardwareProfile(
            # 2 x86 cores with AVX2 FMA: 2 cores * 3 GHz * 32 FP32 FLOP/cycle; bf16 without AMX runs at fp32 rate
            name="generic-cpu", peak_flops_per_s={"fp32": 192e9, "bf16": 192e9, "fp16": 96e9},
            memory_bandwidth_bytes_per_s=20e9, compute_efficiency=0.5, memory_efficiency=0.7,
            layer_overhead_s=150e-6, step_overhead_s=0.5e-3, memory_bytes=24e9,
            description="a 2-core AVX2 server CPU; overheads from docs/references.md §3 (0.14-0.17 ms/layer/token)",
        ),
):
    HARDWARE.register(_p.name, _p)
    if _p.name == "a100-40gb":
        _a100_40gb = _p

# Bian et al.'s A100-40GB as calibrated by `infscale.latency.calibrate.calibrate_bian2025` on the published HF-generate
# latencies (Morph-1B 1.96 s, Open-LM-1B 3.61 s, OPT, Pythia, GPT-Neo; batch 1, 128 in / 256 out, bf16): the open_lm
# per-layer overhead and the shared per-step overhead. tests/latency/test_calibrate.py re-fits and checks these values.
HARDWARE.register("a100-40gb-bian2025", _a100_40gb.with_(
    name="a100-40gb-bian2025", layer_overhead_s=0.5406773e-3, step_overhead_s=1.229622e-3,
    description="A100-40GB calibrated on Bian et al.'s published HF generate latencies (open_lm per-layer overhead)",
    calibrated_on="Bian et al.'s published HF generate latencies of 7 models on an A100-40GB (Morph-1B, Open-LM-1B, OPT, "
                  "Pythia, GPT-Neo; batch 1, 128 in / 256 out, bf16)",
    calibrated_n_params=(1.315723264e9, 1.668885504e9),
))
