"""The own torch generator: batched, left-padded, forked KV-cache decoding equals plain full recomputation."""

import pytest
import torch

from infscale.arch import TransformerShape
from infscale.train.model import LlamaModel
from infscale.tts.backends.torch import TorchGenerator
from infscale.tts.core.generation import SamplingParams
from infscale.tts.own_models.tokenizer import CharTokenizer

TOK = CharTokenizer()


@pytest.fixture(scope="module")
def gen():
    torch.manual_seed(0)
    shape = TransformerShape(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=TOK.vocab_size,
                             context_length=128)
    model = LlamaModel(shape)
    model.reset_parameters(std=0.3)  # peaked logits: greedy choices are far from ties
    return TorchGenerator(model=model, seed=0)


def _reference_greedy(model, prompt, n_new):
    ids = TOK.encode(prompt, bos=True)
    out = []
    with torch.no_grad():
        for _ in range(n_new):
            nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
            out.append(nxt)
            if nxt == TOK.eos_id:
                break
            ids.append(nxt)
    return out


def test_batched_greedy_matches_full_recomputation(gen):
    prompts = ["7 +5 *3\n", "12 -4 +9 *2 -1\n", "3\n"]
    params = SamplingParams(temperature=0.0, max_tokens=12)
    outs = gen.generate(prompts, [2, 1, 3], params)
    assert [len(o) for o in outs] == [2, 1, 3]
    for prompt, comps in zip(prompts, outs, strict=True):
        ref = _reference_greedy(gen.model, prompt, 12)
        ref_text = TOK.decode([t for t in ref if t != TOK.eos_id])
        for c in comps:
            assert c.text == ref_text
            assert c.completion_tokens == len(ref)
            assert c.prompt_tokens == len(TOK.encode(prompt, bos=True))
            assert c.finish_reason == ("eos" if ref[-1] == TOK.eos_id else "length")


def test_stop_string_ends_completion(gen):
    params = SamplingParams(temperature=0.0, max_tokens=12)
    full = gen.generate(["5 +1\n"], 1, params)[0][0].text
    stop = full[2]
    comp = gen.generate(["5 +1\n"], 1, SamplingParams(temperature=0.0, max_tokens=12, stop=(stop,)))[0][0]
    assert comp.finish_reason == "stop"
    assert comp.text == full[: full.index(stop) + 1]
    assert comp.completion_tokens == len(comp.text)


def test_sampling_counts_logprobs_and_seed(gen):
    params = SamplingParams(temperature=1.0, max_tokens=8, logprobs=True)
    a = gen.generate(["1 +2\n", "4 *2\n"], 4, params, seeds=[123, 124])
    b = gen.generate(["1 +2\n", "4 *2\n"], 4, params, seeds=[123, 124])
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]
    # a prompt's samples are keyed by its own seed: alone, or after another prompt, they are the same
    alone = gen.generate(["4 *2\n"], 4, params, seeds=[124])
    assert [c.text for c in alone[0]] == [c.text for c in a[1]]
    assert len({c.text for c in a[0]}) > 1
    for row in a:
        assert len(row) == 4
        for c in row:
            assert 1 <= c.completion_tokens <= 8
            assert c.logprob is not None and c.logprob <= 0.0
    assert gen.generate(["1\n"], [0], params) == [[]]


def _tree_walk(generator, prompts, depth, params):
    """Tree-search-like calls: every next prompt is a previous prompt + one of its completions."""
    texts = []
    for _ in range(depth):
        outs = generator.generate(prompts, 2, params)
        texts.append([(c.text, c.logprob, c.completion_tokens, c.finish_reason) for row in outs for c in row])
        prompts = [p + row[k].text for p, row in zip(prompts, outs, strict=True) for k in (0, 1)][:4]
    return texts


def test_prefix_cache_gives_the_same_greedy_text_and_logprobs(gen):
    """Children prompts prefilled from the parents' cached K/V: same greedy text and log-probs as recomputing them."""
    cached = TorchGenerator(model=gen.model, seed=0)
    plain = TorchGenerator(model=gen.model, seed=0, prefix_cache_mb=0)
    assert plain.prefix_store is None
    params = SamplingParams(temperature=0.0, max_tokens=7, logprobs=True)
    prompts = ["7 +5 *3\n", "12 -4 +9 *2 -1\n"]
    got, ref = _tree_walk(cached, prompts, 4, params), _tree_walk(plain, prompts, 4, params)
    assert cached.prefix_store.hit_tokens > 50  # the walk really reused stored prefixes
    for depth_got, depth_ref in zip(got, ref, strict=True):
        assert [g[0] for g in depth_got] == [r[0] for r in depth_ref]
        assert [g[2:] for g in depth_got] == [r[2:] for r in depth_ref]
        for g, r in zip(depth_got, depth_ref, strict=True):
            assert g[1] == pytest.approx(r[1], abs=1e-4)


def test_prefix_cache_is_dropped_when_weights_change():
    torch.manual_seed(3)
    shape = TransformerShape(d_model=64, n_layers=2, n_heads=4, vocab_size=TOK.vocab_size, context_length=128)
    model = LlamaModel(shape)
    model.reset_parameters(std=0.3)
    cached = TorchGenerator(model=model, seed=0)
    params = SamplingParams(temperature=0.0, max_tokens=10)
    first = cached.generate(["3 *4 -2\n"], 1, params)[0][0].text
    with torch.no_grad():
        for block in model.blocks:
            block.attn.wk.weight.mul_(-1.5)  # stale keys would now be wrong
    child = "3 *4 -2\n" + first
    assert cached.generate([child], 1, params)[0][0].text == TorchGenerator(
        model=model, prefix_cache_mb=0).generate([child], 1, params)[0][0].text
    assert cached.prefix_store.hit_tokens == 0


def test_prefix_cache_stays_within_its_budget(gen):
    small = TorchGenerator(model=gen.model, seed=0, prefix_cache_mb=0.05)
    budget = small.prefix_store.max_tokens
    assert 0 < budget < 200
    params = SamplingParams(temperature=1.0, max_tokens=12)
    for k in range(12):
        small.generate([f"{k} +{k + 1} *2\n"], 3, params, seeds=[5])
        assert small.prefix_store.n_tokens <= budget
    assert len(small.prefix_store) > 0


def test_each_row_keeps_its_own_room_in_the_context():
    """A short prompt batched with a long one may still write up to its own limit (context minus its own prompt), as
    it would alone: a row's completion does not depend on the longest prompt of its batch."""
    torch.manual_seed(1)
    shape = TransformerShape(d_model=32, n_layers=1, n_heads=2, vocab_size=TOK.vocab_size, context_length=40)
    g = TorchGenerator(model=LlamaModel(shape), seed=0)  # untrained: never stops by itself
    params = SamplingParams(temperature=1.0, max_tokens=30)
    short, long = "1 +2\n", "1 +2 *3 -4 +5 *6 -7 +8\n"
    alone = g.generate([short], 1, params, seeds=[9])[0][0]
    both = g.generate([short, long], 1, params, seeds=[9, 10])
    assert both[0][0].text == alone.text and both[0][0].completion_tokens == alone.completion_tokens == 30
    assert both[1][0].completion_tokens == 40 - len(TOK.encode(long, bos=True))
