"""The one-pass llama GGUF reader: a tiny random Llama written to GGUF the way llama.cpp converts checkpoints (Q and K
rows interleaved per rotary half, ggml dimension order) reads back to the same weights and the same logits; files it
does not fully understand are handed back (None)."""

import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from infscale.tts.backends.gguf import hf_tensor_name, load_llama_gguf, unpermute_rotary_rows  # noqa: E402

LAYER_NAMES = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
               "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
               "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def interleave_rotary_rows(w, n_heads):
    """llama.cpp's conversion: per head, row i of the first rotary half and row i of the second become rows 2i, 2i+1."""
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, path, extra_key=None, arch="llama", tied=True):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_uint32(f"{arch}.block_count", cfg.num_hidden_layers)
    w.add_uint32(f"{arch}.context_length", cfg.max_position_embeddings)
    w.add_uint32(f"{arch}.embedding_length", cfg.hidden_size)
    w.add_uint32(f"{arch}.feed_forward_length", cfg.intermediate_size)
    w.add_uint32(f"{arch}.attention.head_count", cfg.num_attention_heads)
    w.add_uint32(f"{arch}.attention.head_count_kv", cfg.num_key_value_heads)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", cfg.rms_norm_eps)
    w.add_float32(f"{arch}.rope.freq_base", 50000.0)
    w.add_uint32(f"{arch}.vocab_size", cfg.vocab_size)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    if extra_key:
        w.add_string(f"{arch}.{extra_key}", "yarn")
    for name, t in model.state_dict().items():
        x = t.numpy()
        if name == "model.embed_tokens.weight":
            g = "token_embd.weight"
        elif name == "model.norm.weight":
            g = "output_norm.weight"
        elif name == "lm_head.weight":
            if tied:
                continue
            g = "output.weight"
        else:
            _, _, layer, rest = name.split(".", 3)
            module, _, suffix = rest.rpartition(".")
            g = f"blk.{layer}.{LAYER_NAMES[module]}.{suffix}"
            if module == "self_attn.q_proj":
                x = interleave_rotary_rows(x, cfg.num_attention_heads)
            elif module == "self_attn.k_proj":
                x = interleave_rotary_rows(x, cfg.num_key_value_heads)
        w.add_tensor(g, x.copy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
                      num_key_value_heads=2, max_position_embeddings=128, rope_theta=50000.0,
                      tie_word_embeddings=True, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


def test_tiny_llama_round_trips_through_gguf(tiny, tmp_path):
    model = load_llama_gguf(write_gguf(tiny, tmp_path / "tiny.gguf"))
    assert model is not None
    ref, got = tiny.state_dict(), model.state_dict()
    assert set(got) == set(ref)
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied as in the file (no output.weight)
    assert (model.config.num_key_value_heads, model.config.head_dim, model.config.eos_token_id) == (2, 8, 2)
    ids = torch.tensor([[5, 9, 17, 33, 1, 60, 2, 7]])
    with torch.inference_mode():
        assert torch.allclose(model(ids).logits, tiny(ids).logits, atol=1e-6, rtol=0)
    # the rotary frequencies were rebuilt from the file's base, not left on the meta device
    assert torch.allclose(model.model.rotary_emb.inv_freq, tiny.model.rotary_emb.inv_freq)


def test_rotary_unpermute_inverts_the_conversion():
    w = torch.arange(24 * 3, dtype=torch.float32).reshape(24, 3)
    assert torch.equal(unpermute_rotary_rows(interleave_rotary_rows(w, 3), 3), w)
    # head 0 (rows 0..7): rotary halves 0..3 and 4..7 are stored interleaved as 0,4,1,5,2,6,3,7
    assert interleave_rotary_rows(w, 3)[:8, 0].tolist() == [0.0, 12.0, 3.0, 15.0, 6.0, 18.0, 9.0, 21.0]


def test_tensor_names():
    assert hf_tensor_name("blk.12.attn_k.weight") == "model.layers.12.self_attn.k_proj.weight"
    assert hf_tensor_name("token_embd.weight") == "model.embed_tokens.weight"
    assert hf_tensor_name("output.weight") == "lm_head.weight"
    assert hf_tensor_name("rope_freqs.weight") is None
    assert hf_tensor_name("blk.x.attn_q.weight") is None


def test_files_it_does_not_understand_are_handed_back(tiny, tmp_path):
    assert load_llama_gguf(write_gguf(tiny, tmp_path / "scaled.gguf", extra_key="rope.scaling.type")) is None
    assert load_llama_gguf(write_gguf(tiny, tmp_path / "qwen.gguf", arch="qwen2")) is None
