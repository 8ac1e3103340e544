"""A Llama-style decoder built from a `TransformerShape` (one readable file, nanoGPT style).

RMSNorm (pre-norm), rotary positions, grouped-query attention, SwiGLU (or GELU) FFN, untied or tied LM head, no biases.
Its parameter count equals ``TransformerShape.n_params`` exactly (tests/train/test_model.py).
The model is single-device; data parallelism is applied from outside (train/trainer.py wraps it in DDP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from infscale.arch import TransformerShape
from infscale.errors import InputError


def check_supported(shape: TransformerShape) -> None:
    """Raise ``ValueError`` for shape features this model does not implement."""
    if shape.bias:
        raise ValueError("LlamaModel has no biases: use a shape with bias=False")
    if shape.position != "rope":
        raise ValueError(f"LlamaModel uses rotary positions: position={shape.position!r} is not supported")
    if shape.norm_kind != "rmsnorm":
        raise ValueError(f"LlamaModel uses RMSNorm: norm_kind={shape.norm_kind!r} is not supported")
    if shape.hd % 2:
        raise ValueError(f"rotary embeddings need an even head_dim, got {shape.hd}")


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalise in fp32 for stability under bf16 autocast
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).type_as(x)


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (max_len, head_dim // 2)."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    t = torch.arange(max_len, dtype=torch.float32)
    freqs = torch.outer(t, inv)
    return freqs.cos(), freqs.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, nh, T, hs); cos/sin: (T, hs/2) -- rotate pairs (even, odd)
    x1, x2 = x[..., 0::2].float(), x[..., 1::2].float()
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    return out.type_as(x)


@dataclass
class KVCache:
    """Pre-allocated keys and values for every layer: (n_layers, B, n_kv, max_len, hs) each."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @classmethod
    def empty(cls, shape: TransformerShape, batch: int, max_len: int, device: torch.device | str,
              dtype: torch.dtype) -> KVCache:
        size = (shape.n_layers, batch, shape.kv_heads, max_len, shape.hd)
        # zeros, not torch.empty: a masked slot (left padding of a batch) still enters the attention's weighted sum
        # with weight 0, and 0 x NaN from uninitialised memory is NaN (seen as a flaky NaN logit in a batched decode)
        return cls(torch.zeros(size, device=device, dtype=dtype), torch.zeros(size, device=device, dtype=dtype))

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def select(self, index: torch.Tensor) -> KVCache:
        """Rows of the batch (e.g. to fork beams): a new cache holding ``index``'s sequences (indexing copies)."""
        return KVCache(self.k[:, index], self.v[:, index], self.length)


class Attention(nn.Module):
    def __init__(self, shape: TransformerShape, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_heads, self.n_kv, self.hd = shape.n_heads, shape.kv_heads, shape.hd
        self.wq = nn.Linear(shape.d_model, shape.d_attn, bias=False)
        self.wk = nn.Linear(shape.d_model, shape.d_kv, bias=False)
        self.wv = nn.Linear(shape.d_model, shape.d_kv, bias=False)
        self.wo = nn.Linear(shape.d_attn, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None,
                attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.hd).transpose(1, 2)  # (B, nh, T, hs)
        k = self.wk(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.wv(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            start = cache.length
            cache.k[self.layer, :, :, start:start + T] = k
            cache.v[self.layer, :, :, start:start + T] = v
            k = cache.k[self.layer, :, :, :start + T]  # (B, nkv, S, hs)
            v = cache.v[self.layer, :, :, :start + T]
        rep = self.n_heads // self.n_kv  # query heads per KV head (grouped-query attention when > 1)
        if rep > 1 and T == 1 and attn_mask is None:  # a decode step: each KV head's queries attend as one group,
            # reading the cache once (expanding K/V to every query head copied the whole cache every step)
            y = F.scaled_dot_product_attention(q.reshape(B, self.n_kv, rep, self.hd), k, v)
            y = y.reshape(B, self.n_heads, 1, self.hd)
        elif attn_mask is None and (cache is None or cache.length == 0):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=rep > 1)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, enable_gqa=rep > 1)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_heads * self.hd)  # (B, T, d_attn)
        return self.wo(y)


class FeedForward(nn.Module):
    def __init__(self, shape: TransformerShape) -> None:
        super().__init__()
        self.swiglu = shape.ffn_kind == "swiglu"
        self.w1 = nn.Linear(shape.d_model, shape.ffn_hidden, bias=False)
        self.w2 = nn.Linear(shape.ffn_hidden, shape.d_model, bias=False)
        if self.swiglu:
            self.w3 = nn.Linear(shape.d_model, shape.ffn_hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            return self.w2(F.silu(self.w1(x)) * self.w3(x))
        return self.w2(F.gelu(self.w1(x)))


class Block(nn.Module):
    def __init__(self, shape: TransformerShape, layer: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(shape.d_model)
        self.attn = Attention(shape, layer)
        self.ffn_norm = RMSNorm(shape.d_model)
        self.ffn = FeedForward(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None,
                attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, attn_mask)
        return x + self.ffn(self.ffn_norm(x))


class LlamaModel(nn.Module):
    """Decoder-only LM. ``forward(idx)`` returns logits (B, T, V); pass a `KVCache` for incremental decoding."""

    def __init__(self, shape: TransformerShape, rope_base: float = 10000.0) -> None:
        super().__init__()
        check_supported(shape)
        self.shape = shape
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape, i) for i in range(shape.n_layers))
        self.norm = RMSNorm(shape.d_model)
        self.lm_head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        if shape.tied_embeddings:
            self.lm_head.weight = self.embed.weight
        cos, sin = rope_tables(shape.hd, shape.context_length, rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02) -> None:
        """GPT-2 style init: N(0, 0.02); output projections scaled by 1/sqrt(2 L)."""
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, mean=0.0, std=std / math.sqrt(2 * self.shape.n_layers))
            else:
                nn.init.normal_(p, mean=0.0, std=std)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None,
                attn_mask: torch.Tensor | None = None, positions: torch.Tensor | None = None) -> torch.Tensor:
        """idx: (B, T) token ids -> logits (B, T, V).

        With ``cache``, the T tokens are appended after ``cache.length`` cached ones (positions continue from there)
        and ``cache.length`` advances by T. ``attn_mask`` (bool, broadcastable to (B, 1, T, S), True = attend) allows
        padded batches; ``positions`` overrides the rotary positions: (T,) for the whole batch or (B, T) per sequence
        (a padded batch whose rows keep their own unpadded positions, so cached keys stay valid wherever they sit).
        """
        B, T = idx.shape
        start = 0 if cache is None else cache.length
        # a row's length is its last position + 1: the cache slot without ``positions``, its own position with them
        # (a left-padded batch may hold more slots than any of its rows has tokens)
        longest = start + T if positions is None else int(positions.max()) + 1
        if longest > self.shape.context_length:
            raise ValueError(f"sequence of {longest} tokens exceeds context_length={self.shape.context_length}")
        if positions is None:
            cos = self.rope_cos[start:start + T]
            sin = self.rope_sin[start:start + T]
        else:
            cos, sin = self.rope_cos[positions], self.rope_sin[positions]
            if positions.dim() == 2:  # (B, T, hs/2) -> (B, 1, T, hs/2): broadcast over the heads
                cos, sin = cos[:, None], sin[:, None]
        if cache is not None and attn_mask is None and start > 0 and T > 1:
            # new tokens attend to everything cached plus causally among themselves
            attn_mask = torch.ones(T, start + T, dtype=torch.bool, device=idx.device).tril(diagonal=start)
        x = self.embed(idx)  # (B, T, d)
        for block in self.blocks:
            x = block(x, cos, sin, cache, attn_mask)
        if cache is not None:
            cache.length = start + T
        return self.lm_head(self.norm(x))  # (B, T, V)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, z_loss: float = 0.0) -> torch.Tensor:
        """Mean next-token cross-entropy (+ optional z-loss ``z * mean(logsumexp^2)``)."""
        return lm_loss(self(idx), targets, z_loss)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, z_loss: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of logits (B, T, V) against targets (B, T), plus ``z_loss * mean(logsumexp^2)`` (PaLM)."""
    logits = logits.float()
    ce = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
    if z_loss:
        ce = ce + z_loss * torch.logsumexp(logits, dim=-1).pow(2).mean()
    return ce


def load_weights(path: str | Path, map_location: str | torch.device = "cpu", *, what: str = "checkpoint") -> dict:
    """A checkpoint written by infscale (a dict of tensors and plain values), loaded with ``weights_only=True``: a
    pickle that would run code, or any file that is not such a checkpoint, is refused in one line naming it. The
    one place the toolkit calls ``torch.load``."""

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what}" if not path.exists() else f"{path}: not a file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a foreign pickle (refused by the weights-only unpickler), a torn or corrupt file
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise InputError(f"{path}: not an infscale {what}, refused ({type(exc).__name__}{': ' + first if first else ''})") \
            from None
    if not isinstance(ckpt, dict):
        raise InputError(f"{path}: not an infscale {what} (holds a {type(ckpt).__name__}, expected a mapping)")
    return ckpt
