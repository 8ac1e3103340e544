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
