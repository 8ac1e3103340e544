"""Shared helpers for the tts tests: a tiny HF Llama with a locally trained BPE tokenizer, saved with
`save_pretrained` (the real loading code is exercised; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


def save_tiny_llama(path: Path, with_tag: bool = True, hidden: int = 32, heads: int = 4, kv_heads: int = 2,
                    vocab: int = 300) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from infscale.tts.core.tasks import ArithmeticTask

    corpus = [ArithmeticTask.solution(p) for p in ArithmeticTask(n_problems=200, difficulty=3).load()]
    if not with_tag:
        corpus = [t.replace("ки", "") for t in corpus]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<s>", "</s>"] + (["ки"] if with_tag else [])
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab, special_tokens=special,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama():
    """The `save_tiny_llama` function, for tests that need a local HF model directory."""
    return save_tiny_llama
