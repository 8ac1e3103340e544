"""Before a latency sweep times anything: will its shapes fit the device's free memory (`check_fits`)?"""

from __future__ import annotations

from collections.abc import Iterable

from infscale.arch import TransformerShape, serving_memory_bytes
from infscale.errors import InputError
from infscale.latency.model import DTYPE_BYTES, Workload
from infscale.memory import available_bytes

__all__ = ["estimate_measure_bytes", "check_fits"]


def estimate_measure_bytes(shape: TransformerShape, workload: Workload) -> float:
    """Peak bytes to time ``shape``: weights and the KV cache at the workload's dtype, the prefill's activations
    (residual, attention and FFN of one layer at a time) and its logits, with a 20% margin. An estimate."""

    elem = DTYPE_BYTES[workload.dtype]
    ctx = workload.input_len + workload.output_len
    resident = float(serving_memory_bytes(shape.n_params, shape.n_layers, shape.d_kv, ctx, workload.batch, elem))
    tokens = workload.batch * workload.input_len
    activations = tokens * (4 * shape.d_model + 2 * shape.d_attn + 2 * shape.ffn_hidden) * elem
    logit_rows = tokens if workload.full_prefill_logits else workload.batch
    logits = logit_rows * shape.vocab_size * 4.0
    return 1.2 * (resident + activations + logits)


def check_fits(shapes: Iterable[TransformerShape], workload: Workload, device: str, group: int = 1) -> None:
    """Before any shape is timed: every ``group`` of consecutive shapes (timed together, `MeasureSettings.interleave`)
    must fit the memory ``device`` has free, else one line naming the first shape that does not (instead of growing
    to the limit and dying mid-sweep)."""

    free = available_bytes(device)
    shapes = list(shapes)
    for start in range(0, len(shapes), group):
        members = shapes[start:start + group]
        needs = [estimate_measure_bytes(s, workload) for s in members]
        for i, shape in enumerate(members):
            need = sum(needs[: i + 1])
            if need > free:
                together = f" (with the {i} shape(s) timed beside it)" if i else ""
                raise InputError(f"shape {shape.label}: timing it needs ~{need / 1e9:.3g} GB{together} (weights + "
                                 f"KV cache + activations at {workload.dtype}), {device} has {free / 1e9:.3g} GB "
                                 "free; drop it or measure on a larger device")
