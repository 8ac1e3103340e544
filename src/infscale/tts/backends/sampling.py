"""Token sampling with one random stream per row, for the torch-based backends (own models, HF transformers).

A batch holds rows of many problems (the scheduler packs them into one call), so the draw of a row must not depend
on which other rows share the batch, nor on the row's position in it. Each row carries a 31-bit key
(`infscale.tts.core.generation.sample_seed`); the uniform number it uses at decode step ``t`` is a counter-based hash
of (key, t), computed on the device for the whole batch at once, and the token is drawn by inverting the row's
cumulative distribution at that number. Nothing is drawn from a shared generator, so a row's text is the same at
batch size 1, 8 or 64 (up to the float noise of its logits, which moves a draw only when the number falls within
~1e-7 of a boundary between two tokens).

The hash is a 32-bit integer mixer (xor-shift / multiply rounds) evaluated in int64 with every product below 2**63,
so it is exact on every device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from infscale.tts.core.generation import SamplingParams, sample_seed

__all__ = ["row_keys", "row_uniforms", "sample_rows"]

_MASK32 = 0xFFFFFFFF
_MULTIPLIERS = (0x7FEB352D, 0x5BD1E995)  # odd, below 2**31: a 32-bit value times either stays below 2**63
_GOLDEN = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer on int64 values in [0, 2**32)."""
    for m in _MULTIPLIERS:
        x = x ^ (x >> 16)
        x = (x * m) & _MASK32
    return x ^ (x >> 15)


def row_keys(samples: Sequence[tuple[int, int]], seeds: Sequence[int] | None, rng: torch.Generator) -> torch.Tensor:
    """The key of every row, given as (prompt index, sample index): ``sample_seed(seeds[prompt], sample)`` for a
    seeded call, else drawn from the backend's own generator ``rng`` (int64, on the CPU)."""
    if seeds is None:
        return torch.randint(0, 1 << 31, (len(samples),), generator=rng)
    return torch.tensor([sample_seed(seeds[i], j) for i, j in samples], dtype=torch.long)


def row_uniforms(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One number in (0, 1) per row: a pure function of the row's key and the step (float32, 24 random bits)."""
    counter = _mix32(torch.full_like(keys, (step * _GOLDEN) & _MASK32))
    h = _mix32(_mix32((keys & _MASK32) ^ counter) ^ _GOLDEN)
    return ((h >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def sample_rows(logits: torch.Tensor, params: SamplingParams, keys: torch.Tensor,
                step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(token, its log-probability under the distribution it was drawn from) per row of ``logits`` (B, V).

    Temperature 0 is the argmax; otherwise the tempered softmax, cut to the nucleus when ``top_p < 1`` (the
    smallest set of most likely tokens whose mass reaches ``top_p``, renormalised), inverted at
    ``row_uniforms(keys, step)``."""
    logits = logits.float()
    if params.temperature == 0:
        nxt = logits.argmax(-1)
        return nxt, torch.log_softmax(logits, -1).gather(-1, nxt[:, None])[:, 0]
    logprobs = torch.log_softmax(logits / params.temperature, -1)
    probs = logprobs.exp()
    u = row_uniforms(keys, step)
    if params.top_p < 1.0:
        sp, order = probs.sort(-1, descending=True)
        sp = sp.masked_fill(sp.cumsum(-1) - sp >= params.top_p, 0.0)  # the first token always stays
        cdf = sp.cumsum(-1)
        pick = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=probs.shape[-1] - 1)
        nxt = order.gather(-1, pick)[:, 0]
        return nxt, (sp.gather(-1, pick)[:, 0] / cdf[:, -1]).log()
    else:
        cdf = probs.cumsum(-1)
        nxt = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=probs.shape[-1] - 1)[:, 0]
    return nxt, logprobs.gather(-1, nxt[:, None])[:, 0]
