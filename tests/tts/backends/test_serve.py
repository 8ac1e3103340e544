"""The OpenAI-compatible server answers every request, malformed or not, with an HTTP status and a JSON body naming
what is wrong; its caps (body, n, tokens, context, queue, socket timeout) hold; a bounded load test on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from infscale.errors import InputError
from infscale.tts.backends.serve import API_KEY_ENV, ServerLimits, is_loopback, make_server
from infscale.tts.core.generation import ScriptedArithmeticGenerator

SHAPE = {"d_model": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 64, "context_length": 512}
PROMPT = "7 +5 *3 -4\nAnswer:\n"
LIMITS = ServerLimits(max_body_bytes=1 << 16, max_n=32, max_request_tokens=4096, max_queue=64, socket_timeout_s=1.0)


def _serve(generator=None, limits: ServerLimits = LIMITS):
    srv = make_server(generator or ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE), port=0, limits=limits)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def port():
    srv = _serve()
    yield srv.server_address[1]
    srv.shutdown()


def raw(port: int, data: bytes, *, half_close: bool = True, timeout_s: float = 10.0) -> tuple[int, dict]:
    """Send ``data`` as it is; the status and JSON body of the answer (an assertion error when there is none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks)
    assert reply, f"the connection was dropped without an answer to {data[:80]!r}"
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head, head
    return status, json.loads(body)


def post(port: int, body: object, path: str = "/v1/completions", *, raw_body: bytes | None = None,
         headers: str | None = None) -> tuple[int, dict]:
    data = raw_body if raw_body is not None else json.dumps(body).encode()
    head = headers if headers is not None else f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return raw(port, f"POST {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + data)


def ok(**over: object) -> dict:
    return {"model": "infscale", "prompt": PROMPT, "n": 2, "max_tokens": 64, "temperature": 0.7, **over}


# (case, body, status, words the message must hold)
BAD_BODIES = [
    ("list body", [1, 2, 3], 400, "JSON object"),
    ("string body", "hello", 400, "JSON object"),
    ("null body", None, 400, "JSON object"),
    ("missing prompt", {"n": 1}, 400, "prompt"),
    ("int prompt", ok(prompt=5), 400, "prompt"),
    ("list prompt", ok(prompt=["a", "b"]), 400, "prompt"),
    ("empty prompt", ok(prompt=""), 400, "prompt"),
    ("negative n", ok(n=-3), 400, "n"),
    ("zero n", ok(n=0), 400, "n"),
    ("string n", ok(n="2"), 400, "n"),
    ("float n", ok(n=2.5), 400, "n"),
    ("bool n", ok(n=True), 400, "n"),
    ("huge n", ok(n=100000), 400, "at most 32"),
    ("negative temperature", ok(temperature=-1), 400, "temperature"),
    ("string temperature", ok(temperature="hot"), 400, "temperature"),
    ("huge temperature", ok(temperature=1e9), 400, "temperature"),
    ("zero top_p", ok(top_p=0), 400, "top_p"),
    ("top_p above one", ok(top_p=5), 400, "top_p"),
    ("zero max_tokens", ok(max_tokens=0), 400, "max_tokens"),
    ("negative max_tokens", ok(max_tokens=-5), 400, "max_tokens"),
    ("string max_tokens", ok(max_tokens="64"), 400, "max_tokens"),
    ("max_tokens beyond context", ok(n=1, max_tokens=4000), 400, "context"),
    ("n times max_tokens over cap", ok(n=32, max_tokens=500), 400, "per request"),
    ("stop list of ints", ok(stop=[1, 2]), 400, "stop"),
    ("stop int", ok(stop=7), 400, "stop"),
    ("empty stop string in list", ok(stop=[""]), 400, "stop"),
    ("too many stops", ok(stop=[f"s{i}" for i in range(20)]), 400, "stop"),
    ("string seed", ok(seed="abc"), 400, "seed"),
    ("negative seed", ok(seed=-1), 400, "seed"),
    ("seed beyond int64", ok(seed=1 << 70), 400, "seed"),
    ("float seed", ok(seed=1.5), 400, "seed"),
    ("logprobs negative", ok(logprobs=-1), 400, "logprobs"),
    ("logprobs string", ok(logprobs="yes"), 400, "logprobs"),
    ("include_stop_str_in_output string", ok(include_stop_str_in_output="yes"), 400, "include_stop_str_in_output"),
    ("stream", ok(stream=True), 400, "stream"),
    ("model not a string", ok(model=3), 400, "model"),
    ("prompt longer than the context", ok(prompt="1 +1\n" + "x" * 600, n=1), 400, "context"),
]

BAD_RAW = [
    ("NaN temperature", b'{"prompt": "1 +1\\n", "temperature": NaN}', 400, "NaN"),
    ("Infinity top_p", b'{"prompt": "1 +1\\n", "top_p": Infinity}', 400, "Infinity"),
    ("truncated JSON", b'{"prompt": "1 +1', 400, "not JSON"),
    ("not UTF-8", b'{"prompt": "\xff\xfe"}', 400, "UTF-8"),
    ("empty body", b"", 400, "not JSON"),
]


@pytest.mark.parametrize(("case", "body", "status", "words"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_malformed_completion_is_a_json_4xx_naming_the_field(port, case, body, status, words):
    code, reply = post(port, body)
    assert code == status, reply
    err = reply["error"]
    assert words in err["message"] or words == err["param"], err
    assert err["code"] == status and err["type"] == "invalid_request_error"


@pytest.mark.parametrize(("case", "data", "status", "words"), BAD_RAW, ids=[c[0] for c in BAD_RAW])
def test_malformed_json_is_a_json_400(port, case, data, status, words):
    code, reply = post(port, None, raw_body=data)
    assert code == status and words in reply["error"]["message"], reply


def test_transport_errors_are_answered(port):
    body = json.dumps(ok()).encode()
    # a Content-Length that is not a number, negative, missing, larger than the cap, larger than the body sent
    assert post(port, None, raw_body=body, headers="Content-Length: ten\r\n")[0] == 400
    assert post(port, None, raw_body=body, headers="Content-Length: -4\r\n")[0] == 400
    assert post(port, None, raw_body=body, headers="")[0] == 411
    code, reply = post(port, None, raw_body=b"", headers=f"Content-Length: {64 << 20}\r\n")  # a 64 MB body announced
    assert code == 413 and "at most 65536" in reply["error"]["message"]
    code, reply = post(port, None, raw_body=body[:10], headers=f"Content-Length: {len(body)}\r\n")
    assert code == 400 and "ended after 10" in reply["error"]["message"]
    # routes and methods
    assert post(port, ok(), path="/v1/chat/completions")[0] == 404
    assert raw(port, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404
    assert raw(port, b"DELETE /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 405
    # garbage instead of HTTP, an over-long request line
    assert raw(port, b"\x16\x03\x01 hello there\r\n\r\n")[0] == 400
    assert raw(port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")[0] == 414
    # /tokenize checks its prompt too
    assert post(port, {"prompt": 5}, path="/tokenize")[0] == 400
    assert post(port, {"prompt": "12345"}, path="/tokenize") == (200, {"count": 5})


def test_a_silent_or_stalled_client_gets_a_408(port):
    t0 = time.perf_counter()
    code, reply = raw(port, b"", half_close=False)  # connects, sends nothing
    assert code == 408 and time.perf_counter() - t0 < 5
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\""
    code, reply = raw(port, head, half_close=False)  # announces 100 bytes, sends 9, waits
    assert code == 408 and "no body within" in reply["error"]["message"]


def test_valid_requests_and_max_tokens_clipped_to_the_context(port):
    code, reply = post(port, ok(n=3, seed=11, stop=["ки\n"], include_stop_str_in_output=True))
    assert code == 200 and len(reply["choices"]) == 3
    assert all(c["text"].endswith("ки\n") and c["stop_reason"] == "ки\n" for c in reply["choices"])
    assert post(port, ok(n=3, seed=11, stop=["ки\n"], include_stop_str_in_output=True))[1] == reply  # seeded
    # a prompt of 500 characters leaves 12 tokens of the 512 context: max_tokens 100 is clipped, finish "length"
    long_prompt = "1 +1\n" + "Step 1: 1+1=2 ки\n" * 29
    long_prompt += "x" * (500 - len(long_prompt))
    code, reply = post(port, ok(prompt=long_prompt, n=1, max_tokens=100))
    assert code == 200 and reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 12


class _Gate:
    """A generator that blocks until released (to fill the server's queue)."""

    def __init__(self) -> None:
        self.inner = ScriptedArithmeticGenerator(shape=SHAPE)
        self.shape, self.name = self.inner.shape, "gate"
        self.entered, self.release = threading.Event(), threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text)

    def generate(self, prompts, n, params, seeds=None):
        self.entered.set()
        assert self.release.wait(30)
        return self.inner.generate(prompts, n, params, seeds)


def test_a_full_queue_is_a_429_and_a_long_wait_a_503():
    gate = _Gate()
    srv = _serve(gate, ServerLimits(max_queue=2, queue_timeout_s=0.5, socket_timeout_s=5))
    port = srv.server_address[1]
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, port, ok())
            assert gate.entered.wait(10)
            second = pool.submit(post, port, ok())  # admitted, waits for the generator past queue_timeout_s
            time.sleep(0.1)
            code, reply = post(port, ok())  # a third while two are admitted
            assert code == 429 and "busy" in reply["error"]["message"]
            code, reply = second.result(10)
            assert code == 503 and reply["error"]["type"] == "server_error"
            gate.release.set()
            assert first.result(10)[0] == 200
        assert post(port, ok())[0] == 200  # the slots came back
    finally:
        gate.release.set()
        srv.shutdown()


class _Counting(_Gate):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def generate(self, prompts, n, params, seeds=None):
        self.calls.append(len(prompts))
        return super().generate(prompts, n, params, seeds)


def test_concurrent_requests_share_one_generator_call():
    """While the generator is busy, requests with the same sampling settings wait together and go into its next call
    as one batch (a client's window of requests keeps the generator's batch full); each gets its own samples."""
    gen = _Counting()
    srv = _serve(gen, ServerLimits(max_queue=32, socket_timeout_s=5))
    port = srv.server_address[1]
    try:
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(post, port, ok(seed=1))
            assert gen.entered.wait(10)
            rest = [pool.submit(post, port, ok(seed=2 + k)) for k in range(6)]
            time.sleep(0.5)
            gen.release.set()
            replies = [f.result(10) for f in [first, *rest]]
        assert all(code == 200 and len(reply["choices"]) == 2 for code, reply in replies)
        assert gen.calls == [1, 6]
    finally:
        gen.release.set()
        srv.shutdown()


class _Broken(ScriptedArithmeticGenerator):
    def generate(self, prompts, n, params, seeds=None):
        raise RuntimeError("CUDA out of memory")


def test_a_generator_failure_is_a_500_with_the_cause():
    srv = _serve(_Broken(shape=SHAPE))
    try:
        code, reply = post(srv.server_address[1], ok())
        assert code == 500 and "CUDA out of memory" in reply["error"]["message"]
    finally:
        srv.shutdown()


def test_load_every_request_answered():
    """400 requests from 16 threads, a quarter of them malformed: every one answered with the right class. (Its own
    server with the default socket timeout: on a loaded machine a client thread can wait past the 1 s of LIMITS
    for the GIL between connecting and sending, and would rightly get a 408.)"""
    srv = _serve(limits=ServerLimits(max_body_bytes=1 << 16, max_n=32, max_request_tokens=4096, max_queue=64))
    try:
        _load(srv.server_address[1])
    finally:
        srv.shutdown()


def _load(port: int) -> None:
    rng = random.Random(3)
    cases = []
    for i in range(400):
        if i % 4 == 0:
            case = BAD_BODIES[rng.randrange(len(BAD_BODIES))]
            cases.append((case[1], case[2]))
        else:
            cases.append((ok(n=rng.randint(1, 8), seed=i), 200))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda c: post(port, c[0]), cases))
    assert [code for code, _ in answers] == [want for _, want in cases]
    assert all(len(r["choices"]) == c[0]["n"] for (code, r), c in zip(answers, cases, strict=True) if code == 200)
    assert time.perf_counter() - t0 < 60


# -- who may use the server ------------------------------------------------------------------------------------------
KEY = "sk-infscale-test-7f3a"


def _get_models(port: int, auth: str | None) -> tuple[int, dict]:
    head = f"Authorization: {auth}\r\n" if auth is not None else ""
    return raw(port, f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())


@pytest.fixture(scope="module")
def keyed_port():
    srv = make_server(ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE), port=0, limits=LIMITS, api_key=KEY)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", f"Basic {KEY}",
                                  KEY, "Bearer", ""])
def test_a_keyed_server_answers_401_without_the_right_key(keyed_port, auth):
    for code, reply in (_get_models(keyed_port, auth),
                        post(keyed_port, ok(), headers=(f"Authorization: {auth}\r\n" if auth is not None else "")
                             + f"Content-Length: {len(json.dumps(ok()))}\r\n")):
        assert code == 401, reply
        err = reply["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["type"] == "invalid_request_error" and err["code"] == "invalid_api_key"
        assert "API key" in err["message"] and KEY not in err["message"]


def test_a_keyed_server_answers_the_right_key(keyed_port):
    code, reply = _get_models(keyed_port, f"Bearer {KEY}")
    assert code == 200 and reply["data"][0]["id"] == "infscale"
    body = json.dumps(ok()).encode()
    code, reply = post(keyed_port, None, raw_body=body,
                       headers=f"Authorization: bearer  {KEY}\r\nContent-Length: {len(body)}\r\n")
    assert code == 200 and len(reply["choices"]) == 2


def test_the_unkeyed_server_keeps_to_loopback():
    gen = ScriptedArithmeticGenerator(shape=SHAPE)
    for host in ("0.0.0.0", "", "::", "8.8.8.8"):
        with pytest.raises(InputError, match="refusing to serve .* without an API key"):
            make_server(gen, host=host, port=0)
    with pytest.raises(InputError, match="API key is empty"):
        make_server(gen, host="127.0.0.1", port=0, api_key="  ")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    srv = make_server(gen, host="0.0.0.0", port=0, api_key=KEY)  # a key: any address may be served
    srv.server_close()


def test_the_command_refuses_a_public_address_without_a_key_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    out = subprocess.run([sys.executable, "-m", "infscale.tts.backends.serve", "--host", "0.0.0.0", "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to serve on '0.0.0.0' without an API key"), lines
    assert API_KEY_ENV in lines[0]


def test_the_command_serves_with_a_key_from_the_environment(tmp_path):
    """`python -m infscale.tts.backends.serve` on a free port, the key in INFSCALE_API_KEY: no key 401, the key
    200 (the bundled arithmetic policy, on CPU)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    env = {**os.environ, API_KEY_ENV: KEY}
    proc = subprocess.Popen([sys.executable, "-m", "infscale.tts.backends.serve", "--port", str(free)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving on http://127.0.0.1:{free}/v1"), (line, proc.stderr.read())
        assert _get_models(free, None)[0] == 401
        assert _get_models(free, f"Bearer {KEY}")[0] == 200
    finally:
        proc.kill()
        proc.wait()
