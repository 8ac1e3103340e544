"""A pool of HTTP endpoints serving the same model (replicas of ``vllm serve``, SGLang, TGI, infscale's own server):
balanced, retried, and surviving replicas that die.

Every request goes to the live endpoint with the fewest requests in flight (ties: the next in turn). A connection
error, a timeout, or a 408/429/5xx answer is retried on the same endpoint with exponential back-off, ``max_retries``
times; an endpoint that still fails is marked down (with its last error) and the request moves to another. When no
endpoint is left, `EndpointsDownError` names each with its error; the scheduler stops the run there (nothing in flight
is recorded, so a resumed run redoes it). Any other HTTP answer (a 400: the request itself is wrong) is an
`InputError` naming the URL, the status and the server's message.

Each endpoint may carry its own API key, sent as ``Authorization: Bearer <key>`` (vLLM's ``--api-key``, infscale's
own server); a 401 or 403 is not retried: the key is wrong, and the error says so. Used by the OpenAI-compatible
generator (`infscale.tts.backends.openai`); a reward model served over HTTP uses the same pool.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from infscale.errors import InputError, RunFailed

__all__ = ["Endpoint", "EndpointPool", "EndpointsDownError"]

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class EndpointsDownError(RunFailed):
    """Every endpoint of a pool failed after its retries: the run stops there (exit 1, one line)."""


@dataclass(eq=False)
class Endpoint:
    url: str
    api_key: str | None = None
    """Sent as a bearer token with every request to this endpoint."""
    in_flight: int = 0
    down: str | None = None
    """Why it is out of the pool (``None``: live)."""


class EndpointPool:
    """Endpoints (base URLs, e.g. ``http://node:8000/v1``, or `Endpoint` with its own key) behind one
    ``request(route, body)``; ``api_key`` is the key of every endpoint given without one."""

    def __init__(self, urls: list[str | Endpoint], *, timeout_s: float = 60.0, max_retries: int = 3,
                 backoff_s: float = 0.5, api_key: str | None = None) -> None:
        if not urls:
            raise InputError("no endpoint given: set `base_url` or `endpoints`")
        self.endpoints = [Endpoint(u.rstrip("/"), api_key) if isinstance(u, str)
                          else Endpoint(u.url.rstrip("/"), u.api_key if u.api_key is not None else api_key)
                          for u in urls]
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self._lock = threading.Lock()
        self._turn = 0

    def _pick(self) -> Endpoint | None:
        with self._lock:
            live = [e for e in self.endpoints if e.down is None]
            if not live:
                return None
            k = len(self.endpoints)
            order = sorted(live, key=lambda e: (e.in_flight, (self.endpoints.index(e) - self._turn) % k))
            chosen = order[0]
            self._turn = (self.endpoints.index(chosen) + 1) % k
            chosen.in_flight += 1
            return chosen

    def _down_error(self) -> EndpointsDownError:
        why = "; ".join(f"{e.url}: {e.down}" for e in self.endpoints)
        return EndpointsDownError(f"every endpoint is down ({why})")

    def request(self, route: str, body: dict[str, Any] | None = None, *, root: bool = False) -> dict[str, Any]:
        """POST ``body`` (GET without one) to ``route`` of a live endpoint (``root``: of its server root, the URL
        without a trailing ``/v1``); see the module docstring for retries and failover."""
        while True:
            ep = self._pick()
            if ep is None:
                raise self._down_error()
            try:
                result = self._send(ep, route, body, root)
            finally:
                with self._lock:
                    ep.in_flight -= 1
            if result is not None:
                return result

    def _send(self, ep: Endpoint, route: str, body: dict[str, Any] | None, root: bool) -> dict[str, Any] | None:
        base = ep.url[: -len("/v1")] if root and ep.url.endswith("/v1") else ep.url
        url = f"{base}{route}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if ep.api_key:
            headers["Authorization"] = f"Bearer {ep.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if ep.down is not None:  # another thread gave up on it meanwhile
                return None
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:200]
                if exc.code in (401, 403):
                    raise InputError(f"server {url} refused the API key (HTTP {exc.code}): set the endpoint's "
                                     "`api_key_env` to a variable holding the server's key") from None
                if exc.code not in _RETRY_STATUS:
                    raise InputError(f"server {url} refused the request: HTTP {exc.code} {detail}") from None
                last = f"HTTP {exc.code} {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        with self._lock:
            if ep.down is None:
                ep.down = f"{last} after {self.max_retries + 1} attempts"
        return None

    @property
    def live(self) -> list[str]:
        return [e.url for e in self.endpoints if e.down is None]
