"""Prefix K/V store: longest-prefix lookup, bounded LRU, invalidation on weight change; a prefill that reuses stored
K/V computes the same logits as a full forward of each unpadded sequence."""

import random

import pytest
import torch

from infscale.arch import TransformerShape
from infscale.train.model import KVCache, LlamaModel
from infscale.tts.backends.prefix_cache import PrefixStore, prefill, store_tokens

SHAPE = TransformerShape(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=40, context_length=96)


def _kv(ids):
    """K/V whose every entry is the token id at that position (lets a test see which tokens a copy came from)."""
    t = torch.tensor(ids, dtype=torch.float32)[None, None, :, None].expand(2, 2, len(ids), 4).clone()
    return t, t.clone()


def _lcp(a, b):
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def test_match_returns_the_longest_common_prefix():
    store = PrefixStore(max_tokens=100)
    for ids in ([1, 2, 3, 4], [1, 2, 5], [7, 8]):
        store.insert(ids, *_kv(ids))
    seq, n = store.match([1, 2, 3, 9, 9])
    assert (seq.ids, n) == ((1, 2, 3, 4), 3)
    seq, n = store.match([1, 2, 5, 6])
    assert (seq.ids, n) == ((1, 2, 5), 3)
    seq, n = store.match([1, 9])
    assert n == 1 and seq.ids[0] == 1
    assert store.match([9, 1]) == (None, 0)
    assert store.match([]) == (None, 0)
    assert torch.equal(store.match([7, 8])[0].k[0, 0, :, 0], torch.tensor([7.0, 8.0]))


def test_covered_prefixes_are_dropped_and_duplicates_not_stored():
    store = PrefixStore(max_tokens=100)
    store.insert([1, 2, 3], *_kv([1, 2, 3]))
    store.insert([1, 2, 3, 4, 5], *_kv([1, 2, 3, 4, 5]))  # extends the first: the first is redundant
    assert len(store) == 1 and store.n_tokens == 5
    store.insert([1, 2], *_kv([1, 2]))  # inside a held sequence
    store.insert([1, 2, 3, 4, 5], *_kv([1, 2, 3, 4, 5]))  # held already
    assert len(store) == 1 and store.n_tokens == 5
    assert store.match([1, 2, 3, 4, 5, 6])[1] == 5


def test_lru_bound_and_lookups_agree_with_brute_force():
    """Random inserts and lookups under a tight token budget: the store never exceeds it, keeps exactly the sequences
    it reports, and every lookup finds the longest common prefix over the held sequences."""
    rng = random.Random(0)
    store = PrefixStore(max_tokens=60)
    for _ in range(400):
        base = [rng.randrange(3) for _ in range(rng.randrange(1, 6))]
        ids = base + [rng.randrange(4) for _ in range(rng.randrange(0, 12))]
        if rng.random() < 0.5:
            store.insert(ids, *_kv(ids))
        else:
            held = [s.ids for s in store._lru.values()]
            seq, n = store.match(ids)
            best = max((_lcp(ids, h) for h in held), default=0)
            assert n == best
            if n:
                assert seq.ids[:n] == tuple(ids[:n]) and seq in store._lru.values()
        held = list(store._lru.values())
        assert store.n_tokens == sum(len(s.ids) for s in held) <= 60
        for s in held:  # no held sequence is a strict prefix of another
            assert not any(o is not s and o.ids[:len(s.ids)] == s.ids for o in held)


def test_lru_keeps_the_recently_used():
    store = PrefixStore(max_tokens=9)
    store.insert([1, 1, 1], *_kv([1, 1, 1]))
    store.insert([2, 2, 2], *_kv([2, 2, 2]))
    store.insert([3, 3, 3], *_kv([3, 3, 3]))
    store.match([1, 1])  # touch the oldest
    store.insert([4, 4, 4], *_kv([4, 4, 4]))  # over budget: the least recently used ([2, 2, 2]) goes
    assert sorted(s.ids[0] for s in store._lru.values()) == [1, 3, 4]
    assert store.match([2]) == (None, 0)


def test_store_clears_when_weights_change():
    model = LlamaModel(SHAPE).eval()
    store = PrefixStore(max_tokens=100)
    store.sync(model)
    store.insert([1, 2], *_kv([1, 2]))
    store.sync(model)
    assert len(store) == 1
    with torch.no_grad():
        model.blocks[0].attn.wk.weight.mul_(2.0)  # in place: the version counter moves
    store.sync(model)
    assert len(store) == 0
    store.insert([1, 2], *_kv([1, 2]))
    model.load_state_dict(LlamaModel(SHAPE).state_dict())
    store.sync(model)
    assert len(store) == 0


def test_store_tokens_from_megabytes():
    model = LlamaModel(SHAPE)
    per_token = 2 * SHAPE.n_layers * SHAPE.kv_heads * SHAPE.hd * 4  # K and V, fp32
    assert store_tokens(model, 1.0) == 2**20 // per_token
    assert store_tokens(model, 0.0) == 0


def _nan_empty(shape, batch, max_len, device, dtype):
    """`KVCache.empty` whose uninitialised memory happens to be NaN (what `torch.empty` may return)."""
    size = (shape.n_layers, batch, shape.kv_heads, max_len, shape.hd)
    return KVCache(torch.full(size, float("nan"), dtype=dtype), torch.full(size, float("nan"), dtype=dtype))


@pytest.mark.parametrize("n_kv_heads", [None, 2])
def test_prefill_with_stored_prefixes_equals_full_forward(n_kv_heads, monkeypatch):
    """Parents prefilled without a store; their K/V stored; children (parent + new tokens, and an unrelated sequence)
    prefilled through the store compute only a short window and still give every position's full-forward logits,
    even when the fresh cache's memory is NaN garbage (padding slots are masked but must still be finite)."""
    monkeypatch.setattr(KVCache, "empty", staticmethod(_nan_empty))
    torch.manual_seed(0)
    shape = TransformerShape(d_model=64, n_layers=2, n_heads=4, n_kv_heads=n_kv_heads, vocab_size=40,
                             context_length=96)
    model = LlamaModel(shape).eval()
    model.reset_parameters(std=0.3)
    gen = torch.Generator().manual_seed(1)
    parents = [torch.randint(1, 40, (n,), generator=gen).tolist() for n in (30, 17, 24)]
    store = PrefixStore(max_tokens=1000)
    with torch.inference_mode():
        pre = prefill(model, parents, None, 0, pad_id=0)
        assert pre.window == 30
        for r, p in enumerate(parents):
            off = pre.width - len(p)
            store.insert(p, pre.cache.k[:, r, :, off:], pre.cache.v[:, r, :, off:])
        pre.cache.k.fill_(float("nan"))  # the store copied what it keeps: the batch cache may be reused
        children = [parents[0] + [5, 6, 7], parents[1] + [9], parents[2][:20] + [3, 3], [2, 4, 6, 8]]
        out = prefill(model, children, store, 4, pad_id=0)
        assert [c for _, c in out.hits] == [30, 17, 20, 0]
        assert out.window == 4  # the longest uncached tail: the unrelated 4-token sequence
        assert out.cache.max_len == out.width + 4 and out.cache.length == out.width
        for r, ch in enumerate(children):
            ref = model(torch.tensor([ch]))[0]
            k = min(len(ch), out.window)
            torch.testing.assert_close(out.logits[r, -k:], ref[-k:], rtol=1e-4, atol=1e-4)
    assert store.hit_tokens == (33 - 4) + (18 - 4) + (22 - 4)
