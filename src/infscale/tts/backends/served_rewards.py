"""Rewards from a server: a PRM served by vLLM's pooling API, and an LLM judge through any OpenAI-compatible endpoint.

- ``served_prm``: a Qwen2.5-Math-PRM-layout checkpoint behind ``vllm serve MODEL --runner pooling`` (vLLM serves
  ``Qwen2ForProcessRewardModel`` natively, with step pooling at the separator). Requests are encoded here with the
  checkpoint's own tokenizer and the in-process head's layout (`infscale.tts.backends.hf_rewards.QwenPRM.layout`:
  only the tokenizer and config need to be local), sent as token ids to ``POST /pooling`` (``batch_size`` sequences
  per request, ``concurrency`` requests in flight over every endpoint of the pool, retried and moved between replicas
  like the generator client), and each step's score is the positive class's probability of the row vLLM returns for
  that separator. The in-process ``qwen_prm`` gives the same scores (CI's vLLM step checks it to 1e-4).
  vLLM 0.32 serves no other head of `hf_rewards` as such: a causal-LM PRM (Math-Shepherd, RLHFlow) under the pooling
  runner becomes an embedding model (its label-token logits are not returned), and Skywork's ``Qwen2ForPrmModel`` is
  not a vLLM architecture; those run in process.
- ``judge_verifier``: a generative verifier. For every step, the model is asked whether the latest step of the
  solution so far is correct (``template``) with one greedy token and the top log-probabilities; the score is
  ``P(yes) / (P(yes) + P(no))`` summed over the top tokens that read ``yes`` / ``no`` in any case or spacing. A step
  whose top tokens hold neither scores 0.5 and is counted in ``unread_steps``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from infscale.errors import InputError
from infscale.tts.backends.hf_rewards import QWEN_SYSTEM, QwenPRM
from infscale.tts.backends.openai import EndpointSpec, ServerClient, endpoint_pool, priced_shape
from infscale.tts.core.rewards import BatchedReward, ScoreItem, StepScores, per_item
from infscale.tts.core.tasks import Task


class ServedPRM(ServerClient, BatchedReward):
    """A Qwen2.5-Math-PRM-layout PRM behind vLLM's ``POST /pooling`` (``path``: the local tokenizer and config)."""

    name = "served_prm"
    outcome_only = False

    def __init__(self, task: Task | None = None, path: str = "", base_url: str | None = None,
                 endpoints: list[EndpointSpec] | None = None, model: str | None = None, separator: str = "<extra_0>",
                 system: str | None = None, batch_size: int = 16, concurrency: int = 8, timeout_s: float = 120.0,
                 max_retries: int = 3, backoff_s: float = 0.5, api_key_env: str | None = None) -> None:
        if batch_size < 1:
            raise InputError(f"reward 'served_prm': batch_size must be >= 1, got {batch_size}")
        self.pool = endpoint_pool(f"reward {self.name!r}", base_url, endpoints, concurrency, timeout_s=timeout_s,
                                  max_retries=max_retries, backoff_s=backoff_s, api_key_env=api_key_env)
        self.layout = QwenPRM.layout(path, separator, QWEN_SYSTEM if system is None else system)
        self.shape = self.layout.shape
        self.batch_size, self.concurrency, self._model = batch_size, concurrency, model

    def _request(self, chunk: list[tuple[list[int], list[int]]]) -> list[StepScores]:
        res = self.pool.request("/pooling", {"model": self.model, "input": [ids for ids, _ in chunk]}, root=True)
        data = res.get("data")
        if not isinstance(data, list) or len(data) != len(chunk):
            raise InputError(f"server {self.pool.live}: /pooling answered {len(data or [])} results for {len(chunk)} "
                             "inputs (is it `vllm serve ... --runner pooling`?)")
        out = []
        for (ids, pos), row in zip(chunk, data, strict=True):
            steps = row.get("data") if isinstance(row, dict) else None
            if not isinstance(steps, list) or len(steps) != len(pos):
                raise InputError(f"server {self.pool.live}: /pooling returned {len(steps or [])} step rows for "
                                 f"{len(pos)} separators: serve it with --pooler-config "
                                 f"'{{\"step_tag_id\": {self.layout.sep_id}}}' (the tokenizer's "
                                 f"{self.layout.separator!r})")
            out.append(StepScores(scores=tuple(_positive(r) for r in steps), n_tokens=len(ids)))
        return out

    def score_many(self, items: Sequence[ScoreItem]) -> list[list[StepScores]]:
        encoded = [self.layout.encode(problem, prompt, steps) for problem, prompt, paths in items for steps in paths]
        chunks = [encoded[i:i + self.batch_size] for i in range(0, len(encoded), self.batch_size)]
        flat = [s for part in self.map_requests(self._request, chunks) for s in part]
        return per_item(flat, items)


def _positive(row: Any) -> float:
    """The positive class's probability from one step row: ``[p_negative, p_positive]`` (normalised in case the
    server returns unnormalised values), or a single probability."""
    values = [float(x) for x in (row if isinstance(row, list) else [row])]
    if len(values) == 1:
        return values[0]
    if len(values) != 2 or values[0] + values[1] <= 0:
        raise InputError(f"/pooling step row {row!r}: expected [p_negative, p_positive]")
    return values[1] / (values[0] + values[1])


JUDGE_TEMPLATE = ("Problem:\n{question}\n\nSolution so far:\n{solution}\n\nIs the last step of the solution so far "
                  "correct? Answer Yes or No.\nAnswer:")


def yes_probability(top_logprobs: dict[str, float]) -> float | None:
    """``P(yes) / (P(yes) + P(no))`` from one position's top log-probabilities (tokens compared stripped and
    lower-cased); ``None`` when neither word is among them."""
    yes = sum(math.exp(lp) for tok, lp in top_logprobs.items() if tok.strip().lower() == "yes")
    no = sum(math.exp(lp) for tok, lp in top_logprobs.items() if tok.strip().lower() == "no")
    return None if yes + no == 0 else yes / (yes + no)


class JudgeVerifier(ServerClient, BatchedReward):
    """An LLM asked, step by step, whether the latest step is correct; the score is read from the logprobs of
    "Yes" and "No". Any OpenAI-compatible completions server (vLLM, SGLang, TGI); ``shape`` or ``config_path`` prices
    the tokens it reads."""

    name = "judge_verifier"
    outcome_only = False

    def __init__(self, task: Task | None = None, base_url: str | None = None, endpoints: list[EndpointSpec] | None = None,
                 model: str | None = None, shape: dict[str, Any] | None = None, config_path: str | None = None,
                 template: str = JUDGE_TEMPLATE, top_logprobs: int = 20, concurrency: int = 16,
                 timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 0.5,
                 api_key_env: str | None = None) -> None:
        if "{solution}" not in template or "{question}" not in template:
            raise InputError("reward 'judge_verifier': template must hold {question} and {solution}")
        if not 1 <= top_logprobs <= 20:
            raise InputError(f"reward 'judge_verifier': top_logprobs must be in 1..20, got {top_logprobs}")
        what = f"reward {self.name!r}"
        self.pool = endpoint_pool(what, base_url, endpoints, concurrency, timeout_s=timeout_s,
                                  max_retries=max_retries, backoff_s=backoff_s, api_key_env=api_key_env)
        self.shape = priced_shape(what, shape, config_path)
        self.template, self.top, self.concurrency, self._model = template, top_logprobs, concurrency, model
        self.unread_steps = 0
        self._lock = threading.Lock()

    def _ask(self, job: tuple[str, str]) -> tuple[float, int]:
        question, solution = job
        body = {"model": self.model, "prompt": self.template.format(question=question, solution=solution),
                "max_tokens": 1, "temperature": 0.0, "logprobs": self.top}
        res = self.pool.request("/completions", body)
        try:
            top = res["choices"][0]["logprobs"]["top_logprobs"][0]
        except (KeyError, IndexError, TypeError):
            raise InputError(f"server {self.pool.live}: /completions returned no top_logprobs (a generative "
                             "verifier needs a server that returns them)") from None
        p = yes_probability(top or {})
        if p is None:
            with self._lock:
                self.unread_steps += 1
            p = 0.5
        return p, int(res.get("usage", {}).get("prompt_tokens", 0))

    def score_many(self, items: Sequence[ScoreItem]) -> list[list[StepScores]]:
        jobs, shape = [], []
        for problem, _, paths in items:
            for steps in paths:
                shape.append(len(steps))
                jobs += [(problem.question, "".join(steps[:k + 1]).strip()) for k in range(len(steps))]
        answers = self.map_requests(self._ask, jobs)
        flat, at = [], 0
        for k in shape:
            part = answers[at:at + k]
            at += k
            flat.append(StepScores(scores=tuple(p for p, _ in part), n_tokens=sum(t for _, t in part)))
        return per_item(flat, items)
