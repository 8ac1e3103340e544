"""Training memory estimate (checked before any tensor is allocated) and the memory a device has free.

Estimate for AdamW training of ``N`` parameters on ``B x T`` tokens per micro-batch:
- fp32 weights ``4N``, fp32 gradients ``4N``, Adam moments ``8N``; with bf16 autocast also a bf16 weight copy ``2N``;
- activations kept for backward, per layer and token, in elements:
  ``4 d`` (norm inputs/outputs, residual) ``+ 2 d_attn + 2 d_kv`` (q, k, v, attention output) ``+ n_heads * T``
  (attention probabilities of the math kernel; an upper bound) ``+ 4 d_ff`` (FFN up/gate/activation/product);
- logits: fp32 logits, their gradient and the log-softmax ``3 * 4 * V`` bytes per token (+ a bf16 copy).
Activation bytes per element: 2 under bf16 autocast, 4 in fp32. The figure is an estimate with a 20% margin, not a bound.
"""

from __future__ import annotations

import os

from infscale.arch import TransformerShape


def estimate_train_bytes(shape: TransformerShape, batch_size: int, seq_len: int, dtype: str = "bf16") -> float:
    """Estimated peak bytes to train ``shape`` with AdamW on micro-batches of ``batch_size x seq_len`` tokens."""
    n = float(shape.n_params)
    act = 2.0 if dtype == "bf16" else 4.0
    state = 16.0 * n + (2.0 * n if dtype == "bf16" else 0.0)
    per_token_layer = (4 * shape.d_model + 2 * shape.d_attn + 2 * shape.d_kv + shape.n_heads * seq_len
                       + 4 * shape.ffn_hidden)
    tokens = float(batch_size) * seq_len
    activations = tokens * shape.n_layers * per_token_layer * act
    logits = tokens * shape.vocab_size * (12.0 + act)
    return 1.2 * (state + activations + logits)


def available_bytes(device: str) -> float:
    """Free memory on ``device``: CUDA free memory, or MemAvailable of /proc/meminfo (physical pages as a fallback)."""
    if device.startswith("cuda"):
        import torch  # lazy: torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return float(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
