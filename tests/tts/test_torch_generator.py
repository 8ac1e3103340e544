"""The own torch generator: batched, left-padded, forked KV-cache decoding equals plain full recomputation."""

import pytest
import torch

from infscale.arch import TransformerShape
from infscale.train.model import LlamaModel
from infscale.tts.generation import SamplingParams
from infscale.tts.tokenizer import CharTokenizer
from infscale.tts.torch_generator import TorchGenerator

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
    params = SamplingParams(temperature=1.0, max_tokens=8, logprobs=True, seed=123)
    a = gen.generate(["1 +2\n", "4 *2\n"], 4, params)
    b = gen.generate(["1 +2\n", "4 *2\n"], 4, params)
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]
    for row in a:
        assert len(row) == 4
        for c in row:
            assert 1 <= c.completion_tokens <= 8
            assert c.logprob is not None and c.logprob <= 0.0
    assert gen.generate(["1\n"], [0], params) == [[]]
