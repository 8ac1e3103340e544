"""The torch model's parameter count equals infscale.arch's, and the KV cache reproduces full forwards."""

import pytest
import torch

from infscale.arch import TransformerShape
from infscale.train.model import KVCache, LlamaModel

SHAPES = [
    TransformerShape(d_model=64, n_layers=2, n_heads=4, vocab_size=97, context_length=64),
    TransformerShape(d_model=64, n_layers=3, n_heads=4, n_kv_heads=2, vocab_size=97, context_length=64,
                     tied_embeddings=True),
    TransformerShape(d_model=48, n_layers=2, n_heads=4, d_ff=100, ffn_kind="gelu", vocab_size=50, context_length=32),
    TransformerShape.open_lm(128, 2, 4, vocab_size=256, context_length=64),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.label)
def test_param_count_equals_arch(shape):
    assert LlamaModel(shape).num_params() == shape.n_params


@pytest.mark.parametrize("shape", SHAPES[:2], ids=lambda s: s.label)
def test_kv_cache_matches_full_forward(shape):
    torch.manual_seed(0)
    model = LlamaModel(shape).eval()
    idx = torch.randint(0, shape.vocab_size, (2, 12))
    with torch.no_grad():
        full = model(idx)
        cache = KVCache.empty(shape, batch=2, max_len=16, device="cpu", dtype=torch.float32)
        part = [model(idx[:, :5], cache=cache)]
        part.append(model(idx[:, 5:9], cache=cache))  # multi-token chunk after a cached prefix
        for t in range(9, 12):
            part.append(model(idx[:, t:t + 1], cache=cache))
    torch.testing.assert_close(torch.cat(part, dim=1), full, rtol=1e-4, atol=1e-4)
    assert cache.length == 12


def test_unsupported_shape_raises():
    with pytest.raises(ValueError, match="biases"):
        LlamaModel(TransformerShape(d_model=64, n_layers=1, n_heads=4, bias=True))


def test_context_overflow_raises():
    shape = SHAPES[0]
    with pytest.raises(ValueError, match="context_length"):
        LlamaModel(shape)(torch.zeros(1, shape.context_length + 1, dtype=torch.long))


def test_per_row_positions_keep_moved_keys_valid():
    """Keys computed for each sequence alone (positions 0..L-1) and copied into a left-padded batch cache at different
    slots stay valid when the batch decodes with per-row (B, T) ``positions``: every row gets its unpadded logits."""
    shape = SHAPES[1]
    torch.manual_seed(1)
    model = LlamaModel(shape).eval()
    lengths = [4, 9, 7]
    seqs = [torch.randint(1, shape.vocab_size, (n + 2,)) for n in lengths]  # prompt + 2 tokens to decode
    B, T = len(lengths), max(lengths)
    real = torch.zeros(B, T + 2, dtype=torch.bool)
    batch = KVCache.empty(shape, B, T + 2, "cpu", torch.float32)
    # the padding slots are never written: they must hold finite numbers (0 x NaN from uninitialised memory is NaN
    # in the attention's weighted sum, which once made this test fail at random)
    assert not batch.k.any() and not batch.v.any()
    with torch.no_grad():
        for r, (x, n) in enumerate(zip(seqs, lengths, strict=True)):
            alone = KVCache.empty(shape, 1, n, "cpu", torch.float32)
            model(x[None, :n], cache=alone)
            batch.k[:, r, :, T - n:T] = alone.k[:, 0]
            batch.v[:, r, :, T - n:T] = alone.v[:, 0]
            real[r, T - n:T] = True
        batch.length = T
        base = torch.tensor(lengths)[:, None]
        steps = []
        for k in range(2):
            real[:, T + k] = True
            tok = torch.stack([x[n + k] for x, n in zip(seqs, lengths, strict=True)])[:, None]
            steps.append(model(tok, cache=batch, attn_mask=real[:, None, None, :T + k + 1], positions=base + k))
        for r, (x, n) in enumerate(zip(seqs, lengths, strict=True)):
            ref = model(x[None])[0, n:]
            torch.testing.assert_close(torch.cat([steps[0][r], steps[1][r]]), ref, rtol=1e-5, atol=1e-5)


def test_cache_select_forks_independent_rows():
    shape = SHAPES[0]
    cache = KVCache.empty(shape, batch=3, max_len=5, device="cpu", dtype=torch.float32)
    cache.k.copy_(torch.arange(cache.k.numel(), dtype=torch.float32).view_as(cache.k))
    cache.v.copy_(-cache.k)
    cache.length = 4
    fork = cache.select(torch.tensor([2, 0, 2]))
    assert fork.length == 4 and fork.k.shape[1] == 3
    assert torch.equal(fork.k[:, 0], cache.k[:, 2]) and torch.equal(fork.v[:, 1], cache.v[:, 0])
    before = cache.k.clone()
    fork.k.zero_()
    assert torch.equal(cache.k, before)  # the fork owns its memory


@pytest.mark.parametrize("kv", [1, 2])
def test_grouped_query_attention_equals_expanded_heads(kv):
    """Grouped-query attention reads each KV head once (a decode step groups its query heads; longer inputs use SDPA's
    GQA mode): the output equals attention over K/V expanded to every query head, for full, chunked and one-token
    calls, and gradients flow."""
    import torch.nn.functional as F

    from infscale.train.model import Attention, rope_tables

    shape = TransformerShape(d_model=64, n_layers=1, n_heads=4, n_kv_heads=kv, vocab_size=97, context_length=32)
    torch.manual_seed(kv)
    attn = Attention(shape, 0)
    cos, sin = rope_tables(shape.hd, 32)
    x = torch.randn(2, 9, 64, requires_grad=True)

    def expanded(x, start=0):
        B, T, _ = x.shape
        q = attn.wq(x).view(B, T, 4, shape.hd).transpose(1, 2)
        k = attn.wk(x).view(B, T, kv, shape.hd).transpose(1, 2)
        v = attn.wv(x).view(B, T, kv, shape.hd).transpose(1, 2)
        from infscale.train.model import apply_rope

        q, k = apply_rope(q, cos[:T], sin[:T]), apply_rope(k, cos[:T], sin[:T])
        k, v = k.repeat_interleave(4 // kv, 1), v.repeat_interleave(4 // kv, 1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return attn.wo(y.transpose(1, 2).reshape(B, T, 64))

    full = attn(x, cos[:9], sin[:9], None, None)
    torch.testing.assert_close(full, expanded(x), rtol=1e-5, atol=1e-5)
    full.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():
        cache = KVCache.empty(shape, batch=2, max_len=16, device="cpu", dtype=torch.float32)
        out = [attn(x[:, :5], cos[:5], sin[:5], cache, None)]
        cache.length = 5
        mask = torch.ones(1, 1, 3, 8, dtype=torch.bool).tril(diagonal=5)
        out.append(attn(x[:, 5:8], cos[5:8], sin[5:8], cache, mask))
        cache.length = 8
        out.append(attn(x[:, 8:9], cos[8:9], sin[8:9], cache, None))
        torch.testing.assert_close(torch.cat(out, 1), expanded(x.detach()), rtol=1e-5, atol=1e-5)
