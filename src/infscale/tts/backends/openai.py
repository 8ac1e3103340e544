"""Generator for any OpenAI-compatible completions server (vLLM, SGLang, TGI): how users scale to many GPUs.

``POST {endpoint}/completions`` with ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop`` and ``logprobs``. One
or many endpoints (``base_url``, or ``endpoints``: replicas of ``vllm serve``) form an `EndpointPool`: each request
goes to the least busy live replica, is retried with back-off, and moves to another replica when its own dies
(`infscale.tts.backends.endpoints`). A batched call is a window of at most ``concurrency`` requests in flight across
every problem of the batch (the scheduler's batches span many problems), kept full until the batch is done.

A prompt is one request of its ``n`` samples with the prompt's seed (vLLM seeds sample ``j`` ``seed + j``; infscale's
own server `sample_seed(seed, j)`), so its samples do not depend on what else is in flight. On a CPU, ``vllm serve``
needs ``--no-enable-chunked-prefill`` for seeded requests (`infscale.tts.backends.vllm`). Per-choice token counts
come from the returned log-probabilities (``logprobs=0`` is always requested for that).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.tts.backends.endpoints import Endpoint, EndpointPool, EndpointsDownError
from infscale.tts.backends.hf import shape_from_hf_config
from infscale.tts.core.generation import (
    Completion,
    FinishReason,
    SamplingParams,
    prompt_requests,
)

__all__ = ["EndpointsDownError", "OpenAIServerGenerator"]


EndpointSpec = str | dict[str, str]
"""An endpoint in a config: its /v1 URL, or ``{url: ..., api_key_env: ...}`` for a server with its own key."""


def key_from_env(what: str, name: str | None) -> str | None:
    """The API key held by the environment variable ``name`` (``None``: no key). Configs name the variable, never
    the key, so a run directory's stored config holds no secret."""
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise InputError(f"{what}: api_key_env must name an environment variable, got {name!r}")
    key = os.environ.get(name, "")
    if not key.strip():
        raise InputError(f"{what}: api_key_env names {name}, which is not set (or empty) in this environment")
    return key


def endpoint_pool(what: str, base_url: str | None, endpoints: list[EndpointSpec] | None, concurrency: int, *,
                  timeout_s: float, max_retries: int, backoff_s: float, api_key_env: str | None) -> EndpointPool:
    """The pool of a client's servers (``base_url`` and/or ``endpoints``), each with its key (an endpoint's own
    ``api_key_env``, else the client's); ``what`` names the client in errors."""
    default_key = key_from_env(what, api_key_env)
    specs: list[str | Endpoint] = [base_url] if base_url else []
    for i, spec in enumerate(endpoints or []):
        where = f"{what}: endpoints[{i}]"
        if isinstance(spec, str):
            specs.append(spec)
        elif isinstance(spec, dict) and isinstance(spec.get("url"), str) and set(spec) <= {"url", "api_key_env"}:
            specs.append(Endpoint(spec["url"], key_from_env(where, spec.get("api_key_env"))))  # None: the pool's
        else:
            raise InputError(f"{where} must be a URL or {{url: ..., api_key_env: ...}}, got {spec!r}")
    if not specs:
        raise InputError(f"{what}: set `base_url` or `endpoints` (the servers' /v1 URLs)")
    if concurrency < 1:
        raise InputError(f"{what}: concurrency must be >= 1, got {concurrency}")
    return EndpointPool(specs, timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s,
                        api_key=default_key)


def priced_shape(what: str, shape: dict[str, Any] | None, config_path: str | None) -> TransformerShape:
    """The served model's shape, from ``shape`` or its HF ``config.json`` (``config_path``), so that the tokens it
    reads or writes can be priced in FLOPs."""
    if shape is not None:
        return TransformerShape.from_dict(shape)
    if config_path is None:
        raise InputError(f"{what}: set `shape` or `config_path` so its tokens can be priced in FLOPs")

    cfg_file = config_path if config_path.endswith(".json") else f"{config_path}/config.json"
    try:
        with open(cfg_file, encoding="utf-8") as fh:
            return shape_from_hf_config(SimpleNamespace(**json.load(fh)))
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise InputError(f"{cfg_file}: cannot read the model config ({exc.__class__.__name__})") from None


class ServerClient:
    """What every client of OpenAI-compatible servers shares: the endpoint pool, the model name (asked lazily, so
    a dead server fails per problem, not at start-up) and a window of at most ``concurrency`` requests in flight."""

    name = ""
    pool: EndpointPool
    concurrency: int
    _model: str | None = None
    _executor: ThreadPoolExecutor | None = None

    @property
    def model(self) -> str:
        """The configured model name, else the server's first model."""
        if self._model is None:
            models = self.pool.request("/models").get("data", [])
            if not models:
                raise InputError(f"servers {', '.join(self.pool.live)} serve no model")
            self._model = models[0]["id"]
        return self._model

    def map_requests(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        """``fn`` on every job, ``concurrency`` at a time over the pool, results in the jobs' order (the rest are
        cancelled when one fails)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"infscale-{self.name}")
        futures = [self._executor.submit(fn, job) for job in jobs]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()


class OpenAIServerGenerator(ServerClient):
    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, shape: dict[str, Any] | None = None,
                 config_path: str | None = None, concurrency: int = 64, timeout_s: float = 60.0,
                 max_retries: int = 3, backoff_s: float = 0.5, api_key_env: str | None = None,
                 extra_body: dict[str, Any] | None = None, endpoints: list[EndpointSpec] | None = None) -> None:
        what = "generator 'openai'"
        self.pool = endpoint_pool(what, base_url, endpoints, concurrency, timeout_s=timeout_s,
                                  max_retries=max_retries, backoff_s=backoff_s, api_key_env=api_key_env)
        self.concurrency = concurrency
        """Requests in flight at once across a batched call (every endpoint together)."""
        self.max_batch_rows = 16 * concurrency
        self.extra_body = dict(extra_body or {})
        self.shape = priced_shape(what, shape, config_path)
        self._model = model

    # -- protocol --------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        try:
            return int(self.pool.request("/tokenize", {"model": self.model, "prompt": text}, root=True)["count"])
        except EndpointsDownError:
            raise
        except InputError:  # a server without vLLM's /tokenize route: prompt tokens come from `usage` instead
            return 0

    def _one(self, prompt: str, n: int, params: SamplingParams, seed: int | None) -> list[Completion]:
        body: dict[str, Any] = {"model": self.model, "prompt": prompt, "n": n, "temperature": params.temperature,
                                "top_p": params.top_p, "max_tokens": params.max_tokens, "logprobs": 0,
                                **self.extra_body}
        if params.stop:
            body["stop"] = list(params.stop)
            body["include_stop_str_in_output"] = True
        if seed is not None:
            body["seed"] = seed
        res = self.pool.request("/completions", body)
        prompt_tokens = int(res.get("usage", {}).get("prompt_tokens", 0))
        out = []
        for ch in sorted(res["choices"], key=lambda c: c.get("index", 0)):
            text = ch.get("text", "")
            stop_reason = ch.get("stop_reason")
            reason: FinishReason
            if ch.get("finish_reason") == "length":
                reason = "length"
            elif isinstance(stop_reason, str):
                reason = "stop"
                if not text.endswith(stop_reason):
                    text += stop_reason  # servers that strip the stop string
            else:
                reason = "eos"
            lp = ch.get("logprobs") or {}
            tokens = lp.get("tokens") or []
            token_lps = [x for x in (lp.get("token_logprobs") or []) if x is not None]
            out.append(Completion(text=text, prompt_tokens=prompt_tokens,
                                  completion_tokens=len(tokens) + (1 if reason == "eos" else 0),
                                  finish_reason=reason, logprob=float(sum(token_lps)) if params.logprobs else None))
        return out

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        requests = prompt_requests(prompts, n, seeds)
        done = self.map_requests(lambda r: self._one(prompts[r[0]], r[1], params, r[2]), requests)
        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _, _), comps in zip(requests, done, strict=True):
            out[i] += comps
        return out
