"""Generator for any OpenAI-compatible completions server (vLLM, SGLang, TGI): how users scale to many GPUs.

``POST {base_url}/completions`` with ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop`` and ``logprobs``;
prompts are sent concurrently (``concurrency`` threads), each request with a timeout and retries with exponential
back-off on connection errors, timeouts, 429 and 5xx. When the server stays unreachable a `ServerUnavailableError`
names the URL and the cause; the runner records it as that problem's failure and goes on.
Per-choice token counts come from the returned log-probabilities (``logprobs=0`` is always requested for that).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.tts.core.generation import Completion, FinishReason, SamplingParams, as_counts, prompt_seed


class ServerUnavailableError(ConnectionError):
    """The server could not be reached or kept failing after every retry."""


_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class OpenAIServerGenerator:
    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, shape: dict[str, Any] | None = None,
                 config_path: str | None = None, concurrency: int = 8, timeout_s: float = 60.0,
                 max_retries: int = 3, backoff_s: float = 0.5, api_key: str | None = None,
                 extra_body: dict[str, Any] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.api_key, self.extra_body = api_key, dict(extra_body or {})
        if shape is not None:
            self.shape = TransformerShape.from_dict(shape)
        elif config_path is not None:
            from infscale.tts.backends.hf import shape_from_hf_config

            cfg_file = config_path if config_path.endswith(".json") else f"{config_path}/config.json"
            try:
                from types import SimpleNamespace

                with open(cfg_file, encoding="utf-8") as fh:
                    self.shape = shape_from_hf_config(SimpleNamespace(**json.load(fh)))
            except (OSError, json.JSONDecodeError, AttributeError) as exc:
                raise InputError(f"{cfg_file}: cannot read the model config ({exc.__class__.__name__})") from None
        else:
            raise InputError("generator 'openai': set `shape` or `config_path` so its tokens can be priced in FLOPs")
        self._model = model

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _request(self, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{route}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:200]
                if exc.code not in _RETRY_STATUS:
                    raise InputError(f"server {url} refused the request: HTTP {exc.code} {detail}") from None
                last = f"HTTP {exc.code} {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        raise ServerUnavailableError(f"OpenAI-compatible server {url} unavailable after {self.max_retries + 1} "
                                     f"attempts ({last})")

    @property
    def model(self) -> str:
        """The configured model name, else the server's first model (asked lazily, so a dead server fails per
        problem, not at start-up)."""
        if self._model is None:
            models = self._request("/models").get("data", [])
            if not models:
                raise InputError(f"server {self.base_url} serves no model")
            self._model = models[0]["id"]
        return self._model

    # -- protocol --------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        url, self.base_url = self.base_url, root
        try:
            return int(self._request("/tokenize", {"model": self.model, "prompt": text})["count"])
        except InputError:  # a server without vLLM's /tokenize route: prompt tokens come from `usage` instead
            return 0
        finally:
            self.base_url = url

    def _one(self, prompt: str, n: int, params: SamplingParams, seed: int | None) -> list[Completion]:
        body: dict[str, Any] = {"model": self.model, "prompt": prompt, "n": n, "temperature": params.temperature,
                                "top_p": params.top_p, "max_tokens": params.max_tokens, "logprobs": 0,
                                **self.extra_body}
        if params.stop:
            body["stop"] = list(params.stop)
            body["include_stop_str_in_output"] = True
        if seed is not None:
            body["seed"] = seed
        res = self._request("/completions", body)
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

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int,
                 params: SamplingParams) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            futures = [pool.submit(self._one, p, c, params, prompt_seed(params, i)) if c else None
                       for i, (p, c) in enumerate(zip(prompts, counts, strict=True))]
            return [[] if f is None else f.result() for f in futures]
