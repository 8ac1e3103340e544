"""A small OpenAI-compatible completions server in front of any infscale generator (stdlib `http.server`).

Serves ``GET /v1/models``, ``POST /v1/completions`` (``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop``,
``logprobs``, ``seed``, vLLM's ``stop_reason`` and ``include_stop_str_in_output``) and ``POST /tokenize``. It lets the
project's own models sit behind the same `OpenAIServerGenerator` route as vLLM/SGLang, and gives the client a real
loopback server in tests.

Every request gets an HTTP response with a JSON body; an error body is OpenAI's shape, ``{"error": {"message",
"type", "param", "code"}}``, naming the field. `ServerLimits` bounds what one request may cost: body size (413), ``n``
and ``n * max_tokens`` (400), a prompt that leaves no room in the context or ``max_tokens`` beyond it (400; otherwise
``max_tokens`` is clipped to the room left, finish reason ``length``), a socket timeout for slow or short bodies (408),
and a bounded queue in front of the one generator (429 when full, 503 after ``queue_timeout_s`` waiting). Waiting
requests with the same sampling settings are answered in one batched ``generate`` call (`Batcher`), so concurrent
clients keep the generator's batch full.

Who may use it: with an API key (``--api-key``, or the ``INFSCALE_API_KEY`` environment variable, as vLLM takes
``--api-key`` or ``VLLM_API_KEY``) every request must carry ``Authorization: Bearer <key>``; the header is compared
in constant time and any other answer is a 401 in the OpenAI error shape. Without a key the server binds only a
loopback address: `make_server` refuses any other host.
Run: ``python -m infscale.tts.backends.serve --port 8000`` (the bundled arithmetic policy, on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from infscale.configio import first_error
from infscale.errors import InputError
from infscale.jsonsafe import loads_strict
from infscale.tts.core.generation import Completion, Generator, SamplingParams


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """What one request may ask of the server."""

    max_body_bytes: int = 1 << 20
    max_n: int = 64
    max_request_tokens: int = 1 << 16
    """Most tokens one request may generate: ``n * max_tokens``."""
    max_queue: int = 256
    """Requests admitted at once (generating or waiting for the generator); one more is answered 429."""
    max_batch_rows: int = 256
    """Sequences the generator decodes in one call: waiting requests with the same sampling settings are answered
    together, up to this many samples."""
    queue_timeout_s: float = 60.0
    """How long an admitted request waits for the generator before a 503."""
    socket_timeout_s: float = 10.0
    """A client that sends nothing for this long (a short body, a stalled upload) gets a 408."""


API_KEY_ENV = "INFSCALE_API_KEY"
"""The environment variable `main` reads the API key from when ``--api-key`` is not given."""


class RequestError(Exception):
    """An HTTP error answer: status, message, the request field it concerns and OpenAI's error code (the status when
    there is none more specific)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.code = status if code is None else code


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (``localhost``, 127.0.0.0/8, ``::1``); the wildcard
    ``0.0.0.0``/``::``/empty host and any name that resolves elsewhere are not."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def authorized(header: str | None, api_key: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <api_key>``, compared in constant time."""
    scheme, _, token = (header or "").strip().partition(" ")
    expected, given = api_key.encode(), token.strip().encode()
    # compare_digest's time depends only on the expected key's length, not on how much of the token matches
    return hmac.compare_digest(given, expected) & (scheme.lower() == "bearer")


_Finite = Field(allow_inf_nan=False)


class CompletionRequest(BaseModel):
    """The fields of ``POST /v1/completions`` the server honours, with strict JSON types (``"2"`` is not 2, ``true``
    is not 1); fields it does not know (``echo``, ``user``, ...) are ignored as OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: StrictStr | None = None
    prompt: StrictStr = Field(min_length=1)
    n: StrictInt = Field(1, ge=1)
    temperature: Annotated[float, _Finite] = Field(1.0, ge=0, le=100)
    top_p: Annotated[float, _Finite] = Field(1.0, gt=0, le=1)
    max_tokens: StrictInt = Field(16, ge=1)
    stop: StrictStr | Annotated[list[Annotated[str, Field(min_length=1, strict=True)]], Field(max_length=16)] | None \
        = None
    logprobs: StrictInt | None = Field(None, ge=0, le=20)
    seed: StrictInt | None = Field(None, ge=0, lt=1 << 63)
    include_stop_str_in_output: StrictBool = False
    stream: StrictBool = False


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    model: StrictStr | None = None
    prompt: StrictStr


def _first_error(exc: ValidationError) -> RequestError:
    loc, msg = first_error(exc)
    return RequestError(400, f"field {loc or 'body'}: {msg}", loc.split(".")[0] or None)


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 naming what is wrong with it."""
    try:
        data = loads_strict(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, "body is not UTF-8") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise RequestError(400, f"body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RequestError(400, f"body must be a JSON object, got {type(data).__name__}")
    return data


def sampling_params(req: CompletionRequest, prompt_tokens: int, context: int | None,
                    limits: ServerLimits) -> SamplingParams:
    """The generator's params for ``req``: every cap checked, ``max_tokens`` clipped to the context left."""
    if req.stream:
        raise RequestError(400, "streaming is not served (set stream: false)", "stream")
    if req.n > limits.max_n:
        raise RequestError(400, f"n is {req.n}, this server allows at most {limits.max_n}", "n")
    if req.n * req.max_tokens > limits.max_request_tokens:
        raise RequestError(400, f"n * max_tokens is {req.n * req.max_tokens}, this server allows at most "
                                f"{limits.max_request_tokens} tokens per request", "max_tokens")
    max_tokens = req.max_tokens
    if context is not None:
        if prompt_tokens >= context:
            raise RequestError(400, f"the prompt has {prompt_tokens} tokens; the model's context is {context}",
                               "prompt")
        if max_tokens > context:
            raise RequestError(400, f"max_tokens is {max_tokens}, beyond the model's context of {context}",
                               "max_tokens")
        max_tokens = min(max_tokens, context - prompt_tokens)
    stop = () if req.stop is None else (req.stop,) if isinstance(req.stop, str) else tuple(req.stop)
    return SamplingParams(temperature=req.temperature, top_p=req.top_p, max_tokens=max_tokens, stop=stop,
                          logprobs=req.logprobs is not None)


def completion_body(comps: list[Completion], params: SamplingParams, keep_stop: bool,
                    model_name: str) -> dict[str, Any]:
    choices = []
    for i, c in enumerate(comps):
        text, stop_reason = c.text, None
        if c.finish_reason == "stop":
            stop_reason = next((s for s in params.stop if text.endswith(s)), None)
            if stop_reason and not keep_stop:
                text = text[: -len(stop_reason)]
        n_tok = c.completion_tokens - (1 if c.finish_reason == "eos" else 0)
        per_tok = (c.logprob or 0.0) / max(c.completion_tokens, 1)
        choices.append({"index": i, "text": text, "stop_reason": stop_reason,
                        "finish_reason": "length" if c.finish_reason == "length" else "stop",
                        "logprobs": {"tokens": [""] * n_tok, "token_logprobs": [per_tok] * n_tok}})
    usage = {"prompt_tokens": comps[0].prompt_tokens if comps else 0,
             "completion_tokens": sum(c.completion_tokens for c in comps)}
    return {"object": "text_completion", "model": model_name, "choices": choices, "usage": usage}


@dataclass(eq=False)
class _Waiting:
    prompt: str
    n: int
    params: SamplingParams
    seed: int | None
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Completion] | None = None
    error: BaseException | None = None


class Batcher:
    """The one generator behind the server, fed in batches: a worker thread takes every waiting request with the
    same sampling settings (seeded and unseeded apart), up to ``max_rows`` samples, into one ``generate`` call, so
    concurrent clients share the batch as they would on vLLM."""

    def __init__(self, generator: Generator, max_rows: int) -> None:
        self.generator, self.max_rows = generator, max_rows
        self._waiting: list[_Waiting] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._loop, daemon=True, name="infscale-serve-batcher").start()

    def submit(self, prompt: str, n: int, params: SamplingParams, seed: int | None,
               timeout_s: float) -> list[Completion]:
        item = _Waiting(prompt, n, params, seed)
        with self._cond:
            self._waiting.append(item)
            self._cond.notify()
        if not item.done.wait(timeout_s):
            with self._cond:
                if item in self._waiting:  # not started: withdrawn
                    self._waiting.remove(item)
                    raise RequestError(503, f"no generator free after {timeout_s:g} s; retry later")
            item.done.wait()
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _take(self) -> list[_Waiting]:
        with self._cond:
            while not self._waiting:
                self._cond.wait()
            first = self._waiting[0]
            batch, rows = [], 0
            for item in list(self._waiting):
                if item.params == first.params and (item.seed is None) == (first.seed is None) and \
                        (not batch or rows + item.n <= self.max_rows):
                    batch.append(item)
                    rows += item.n
                    self._waiting.remove(item)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            seeds = None if batch[0].seed is None else [item.seed for item in batch]
            try:
                out = self.generator.generate([b.prompt for b in batch], [b.n for b in batch], batch[0].params,
                                              seeds)  # type: ignore[arg-type]
                for item, comps in zip(batch, out, strict=True):
                    item.result = comps
            except Exception as exc:  # every request of the batch is answered with the failure
                for item in batch:
                    item.error = exc
            for item in batch:
                item.done.set()


class _Handler(BaseHTTPRequestHandler):
    """One HTTP request: the routes of `make_server` (set on a subclass with the limits and the model's name), every
    failure answered in the OpenAI error shape, a silent client 408, an oversized line 414."""

    routes: dict[str, Any] = {}
    lim: ServerLimits = ServerLimits()
    model_name: str = "infscale"
    api_key: str | None = None
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # so even an answer to a garbled request line has a status line

    def handle_one_request(self) -> None:
        # http.server's own loop, except that a client silent past the timeout gets a 408 instead of nothing
        self.requestline, self.command, self.request_version = "", "", self.default_request_version
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except TimeoutError:
            self.send_error(408, f"no request line within {self.lim.socket_timeout_s:g} s")
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414, "request line over 64 KiB")
            return
        try:
            if not self.parse_request():
                return
        except TimeoutError:
            self.send_error(408, f"headers not complete within {self.lim.socket_timeout_s:g} s")
            return
        handler = getattr(self, f"do_{self.command}", None)
        if handler is None:
            self.send_error(405, f"{self.command} is not served")
            return
        if self.api_key is not None and not authorized(self.headers.get("Authorization"), self.api_key):
            self.close_connection = True
            self._error(RequestError(401, "Incorrect API key provided: send the server's key as 'Authorization: "
                                          "Bearer <key>'", code="invalid_api_key"))
            return
        handler()
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if code in (429, 503):
            self.send_header("Retry-After", "1")
        if code == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, err: RequestError) -> None:
        kind = "invalid_request_error" if err.status < 500 else "server_error"
        self._send(err.status, {"error": {"message": err.message, "type": kind, "param": err.param,
                                          "code": err.code}})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (a garbled request line, a header too long) in the same JSON shape
        self.close_connection = True
        try:
            self._error(RequestError(code, message or self.responses.get(code, ("error",))[0]))
        except OSError:
            pass

    def _body(self) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise RequestError(411, "a POST needs a Content-Length header")
        try:
            size = int(raw)
        except ValueError:
            raise RequestError(400, f"Content-Length {raw[:40]!r} is not a number") from None
        if size < 0:
            raise RequestError(400, f"Content-Length {size} is negative")
        if size > self.lim.max_body_bytes:
            raise RequestError(413, f"body of {size} bytes; this server takes at most {self.lim.max_body_bytes}")
        try:
            body = self.rfile.read(size)
        except TimeoutError:
            raise RequestError(408, f"no body within {self.lim.socket_timeout_s:g} s") from None
        if len(body) < size:
            raise RequestError(400, f"body ended after {len(body)} of {size} bytes")
        return body

    def _answer(self, fn: Any) -> None:
        self.close_connection = True
        try:
            self._send(200, fn())
        except RequestError as err:
            self._error(err)
        except Exception as exc:  # a generator failure is the server's, and still an answer
            self._error(RequestError(500, f"generation failed: {type(exc).__name__}: {exc}"))

    def do_GET(self) -> None:  # noqa: N802
        def models() -> dict[str, Any]:
            if self.path.rstrip("/") != "/v1/models":
                raise RequestError(404, f"no route GET {self.path}")
            return {"object": "list", "data": [{"id": self.model_name, "object": "model"}]}

        self._answer(models)

    def do_POST(self) -> None:  # noqa: N802
        def post() -> dict[str, Any]:
            route = self.routes.get(self.path.rstrip("/"))
            if route is None:
                raise RequestError(404, f"no route POST {self.path}")
            return route(parse_json(self._body()))

        self._answer(post)


def _completions(generator: Generator, lim: ServerLimits, model_name: str) -> Any:
    """The `/v1/completions` route: validated, admitted (429 past ``max_queue``), batched, answered."""
    admitted = threading.BoundedSemaphore(lim.max_queue)
    context = getattr(generator.shape, "context_length", None) or None
    batcher = Batcher(generator, lim.max_batch_rows)

    def complete(data: dict[str, Any]) -> dict[str, Any]:
        try:
            req = CompletionRequest.model_validate(data)
        except ValidationError as exc:
            raise _first_error(exc) from None
        params = sampling_params(req, generator.count_tokens(req.prompt), context, lim)
        if not admitted.acquire(blocking=False):
            raise RequestError(429, f"the server is busy ({lim.max_queue} requests in flight); retry later")
        try:
            comps = batcher.submit(req.prompt, req.n, params, req.seed, lim.queue_timeout_s)
        finally:
            admitted.release()
        return completion_body(comps, params, req.include_stop_str_in_output, model_name)

    return complete


def _tokenize(generator: Generator) -> Any:
    def tokenize(data: dict[str, Any]) -> dict[str, Any]:
        try:
            req = TokenizeRequest.model_validate(data)
        except ValidationError as exc:
            raise _first_error(exc) from None
        return {"count": generator.count_tokens(req.prompt)}

    return tokenize


def check_access(host: str, api_key: str | None) -> None:
    """An `InputError` for an empty key, or for a host that is not loopback served without a key."""
    if api_key is not None and not api_key.strip():
        raise InputError("the API key is empty: give a non-empty key or none")
    if api_key is None and not is_loopback(host):
        raise InputError(f"refusing to serve on {host or 'every address'!r} without an API key: anyone who reaches "
                         f"it could use the model; set --api-key or {API_KEY_ENV}, or bind 127.0.0.1")


def make_server(generator: Generator, host: str = "127.0.0.1", port: int = 0, model_name: str = "infscale",
                limits: ServerLimits | None = None, api_key: str | None = None) -> ThreadingHTTPServer:
    """An OpenAI-compatible completions server over ``generator`` (`/v1/completions`, `/tokenize`, `/v1/models`):
    requests are batched across clients (`Batcher`), at most ``max_queue`` in flight (429 beyond). With ``api_key``
    every request must carry it as a bearer token (401 otherwise); without one, a host that is not loopback is an
    `InputError` before anything binds."""
    check_access(host, api_key)
    lim = limits or ServerLimits()
    routes = {"/v1/completions": _completions(generator, lim, model_name), "/tokenize": _tokenize(generator)}
    handler = type("Handler", (_Handler,), {"routes": routes, "lim": lim, "model_name": model_name,
                                            "timeout": lim.socket_timeout_s, "api_key": api_key})

    class Server(ThreadingHTTPServer):
        # the listen backlog: connections beyond it are reset by the kernel before any handler could answer them
        # (the stdlib default is 5); requests beyond max_queue are then answered 429 by a handler, not dropped
        request_queue_size = max(128, 4 * lim.max_queue)
        daemon_threads = True

    return Server((host, port), handler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--checkpoint", default=None)
    defaults = ServerLimits()  # a slotted dataclass: its class attributes are descriptors, not the defaults
    ap.add_argument("--max-n", type=int, default=defaults.max_n)
    ap.add_argument("--max-queue", type=int, default=defaults.max_queue)
    ap.add_argument("--api-key", default=None,
                    help=f"clients must send it as 'Authorization: Bearer <key>' (default: ${API_KEY_ENV}); "
                         "required for a host that is not loopback")
    args = ap.parse_args()
    if args.max_n < 1 or args.max_queue < 1:
        ap.error("--max-n and --max-queue must be >= 1")
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    try:
        check_access(args.host, api_key)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # torch is imported once the command line is checked, so a refused one answers without loading it
    from infscale.tts.backends.torch import TorchGenerator  # lazy: torch

    limits = ServerLimits(max_n=args.max_n, max_queue=args.max_queue)
    server = make_server(TorchGenerator(checkpoint=args.checkpoint), args.host, args.port, limits=limits,
                         api_key=api_key)
    print(f"serving on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
