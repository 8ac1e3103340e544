"""Llama-architecture GGUF files into a transformers ``LlamaForCausalLM`` in one pass over the file.

transformers' GGUF path parses the file's metadata once for the config, once more for the weights and once for the
tokenizer, then maps tensor names module by module through gguf-py's name tables; for SmolLM2-135M that is most of a
~12 s model load. Here the file is read once: the `LlamaConfig` comes from the ``llama.*`` metadata, the model is
built on the meta device (no random initialisation), every tensor is dequantised with gguf-py and becomes the
parameter itself, and llama.cpp's rotary row permutation of the Q and K projections is undone. A file this reader does not fully understand (another architecture, RoPE scaling, an unknown
metadata key or tensor) gives ``None`` and goes through transformers instead. The tokenizer still comes from
transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_LAYER_TENSORS = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_TOP_TENSORS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_LLAMA_KEYS = {
    "block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.dimension_count",
    "vocab_size", "attention.key_length", "attention.value_length",
}
"""``llama.*`` metadata this reader maps; any other (RoPE scaling, experts, ...) sends the file to transformers."""


def _value(field: Any) -> Any:
    """A scalar or string metadata value (gguf-py keeps strings as byte arrays)."""
    from gguf import GGUFValueType  # lazy: gguf

    part = field.parts[field.data[0]]
    if field.types == [GGUFValueType.STRING]:
        return bytes(part).decode("utf-8")
    return part.tolist()[0]


def hf_tensor_name(gguf_name: str) -> str | None:
    """``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``; None for a tensor outside the map."""
    stem, _, suffix = gguf_name.rpartition(".")
    if suffix not in ("weight", "bias"):
        return None
    if stem in _TOP_TENSORS:
        return f"{_TOP_TENSORS[stem]}.{suffix}"
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _LAYER_TENSORS:
        return f"model.layers.{parts[1]}.{_LAYER_TENSORS[parts[2]]}.{suffix}"
    return None


def unpermute_rotary_rows(weight: Any, n_heads: int) -> Any:
    """Undo llama.cpp's conversion of a Q or K projection: within each head it stores the rows of the two rotary
    halves interleaved (row ``2i + h`` holds half ``h``'s row ``i``); transformers keeps the halves contiguous."""
    rows = weight.shape[0]
    head_dim = rows // n_heads
    return (weight.reshape(n_heads, head_dim // 2, 2, *weight.shape[1:]).swapaxes(1, 2)
            .reshape(weight.shape))


def load_llama_gguf(path: Path, dtype: str = "float32") -> Any | None:
    """A ``LlamaForCausalLM`` with the file's weights (eval mode, on the CPU), or None when the file is not plain
    llama."""
    import numpy as np  # lazy: numpy
    import torch  # lazy: torch
    from gguf import GGUFReader  # lazy: gguf
    from gguf.quants import dequantize  # lazy: gguf
    from transformers import LlamaConfig, LlamaForCausalLM  # lazy: transformers

    reader = GGUFReader(path)
    fields = reader.fields
    if "general.architecture" not in fields or _value(fields["general.architecture"]) != "llama":
        return None
    meta = {k[len("llama."):]: _value(f) for k, f in fields.items() if k.startswith("llama.")}
    if set(meta) - _LLAMA_KEYS:
        return None
    names = {t.name: hf_tensor_name(t.name) for t in reader.tensors}
    if any(v is None for v in names.values()):
        return None
    heads, d = meta["attention.head_count"], meta["embedding_length"]
    kv_heads = meta.get("attention.head_count_kv", heads)
    head_dim = meta.get("attention.key_length", d // heads)
    if meta.get("attention.value_length", head_dim) != head_dim or meta.get("rope.dimension_count", head_dim) != head_dim:
        return None
    vocab = meta.get("vocab_size")
    if vocab is None:
        if "tokenizer.ggml.tokens" not in fields:
            return None
        vocab = len(fields["tokenizer.ggml.tokens"].data)

    def token_id(key: str) -> int | None:
        f = fields.get(f"tokenizer.ggml.{key}")
        return None if f is None else int(_value(f))

    tied = "output.weight" not in names
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=d, intermediate_size=meta["feed_forward_length"],
        num_hidden_layers=meta["block_count"], num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=head_dim, max_position_embeddings=meta.get("context_length", 2048),
        rms_norm_eps=meta.get("attention.layer_norm_rms_epsilon", 1e-5), rope_theta=meta.get("rope.freq_base", 1e4),
        tie_word_embeddings=tied, bos_token_id=token_id("bos_token_id"), eos_token_id=token_id("eos_token_id"),
        pad_token_id=token_id("padding_token_id"))
    with torch.device("meta"):  # no random initialisation of weights that are overwritten next
        model = LlamaForCausalLM(config)
    shapes = {k: tuple(v.shape) for k, v in model.named_parameters(remove_duplicate=False)}
    state = {}
    for t in reader.tensors:
        name = names[t.name]
        values = np.array(dequantize(t.data, t.tensor_type), dtype=np.float32)  # a writable copy off the memmap
        weight = torch.from_numpy(values).reshape(tuple(int(x) for x in reversed(t.shape.tolist())))
        if t.name.endswith(".attn_q.weight"):
            weight = unpermute_rotary_rows(weight, heads)
        elif t.name.endswith(".attn_k.weight"):
            weight = unpermute_rotary_rows(weight, kv_heads)
        if shapes.get(name) != tuple(weight.shape):
            return None
        state[name] = weight.to(getattr(torch, dtype))
    if set(shapes) - set(state) - ({"lm_head.weight"} if tied else set()):
        return None
    model.load_state_dict(state, strict=False, assign=True)
    if tied:
        model.tie_weights()
    # the rotary frequencies are a computed buffer, left on the meta device above: rebuild that module for real
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        return None
    return model.eval()
