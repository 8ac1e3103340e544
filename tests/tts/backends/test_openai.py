"""OpenAI-compatible client against real loopback servers (infscale.tts.backends.serve): the same completions as the
backend, a pool of replicas that survives one dying mid-run, and a run that stops in one line (and resumes) when
every endpoint is dead."""

import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from infscale.errors import InputError
from infscale.tts.backends.endpoints import EndpointsDownError
from infscale.tts.backends.openai import OpenAIServerGenerator
from infscale.tts.backends.serve import make_server
from infscale.tts.core.config import load_config
from infscale.tts.core.generation import SamplingParams, ScriptedArithmeticGenerator
from infscale.tts.core.record_files import read_problem_records
from infscale.workflows.tts_run import run_tts

SHAPE = {"d_model": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 64, "context_length": 512}


def _serve():
    srv = make_server(ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/v1"


@pytest.fixture(scope="module")
def server():
    srv, url = _serve()
    yield url
    srv.shutdown()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_same_completions_as_the_backend(server):
    """A prompt is one request of its n samples with its seed: the server's generator gives what the local one gives
    for those seeds."""
    client = OpenAIServerGenerator(server, shape=SHAPE, concurrency=4)
    local = ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE)
    prompts = ["7 +5 *3 -4\n", "2 *4 +1\nStep 1: 2*4=8 ки\n"]
    params = SamplingParams(temperature=1.0, max_tokens=40, stop=("ки",))
    got = client.generate(prompts, [3, 2], params, seeds=[11, 12])
    want = local.generate(prompts, [3, 2], params, seeds=[11, 12])
    assert [[(c.text, c.completion_tokens, c.finish_reason, c.prompt_tokens) for c in row] for row in got] == \
        [[(c.text, c.completion_tokens, c.finish_reason, c.prompt_tokens) for c in row] for row in want]
    assert got[0][0].finish_reason == "stop" and got[0][0].text.endswith("ки")
    assert client.count_tokens("7 +5\n") == 5
    full = client.generate(["3 +1\n"], 1, SamplingParams(temperature=0.0, max_tokens=100))[0][0]
    assert full.finish_reason == "eos" and full.text.endswith("The answer is 4.")


def test_dead_server_is_a_clear_error():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    t0 = time.perf_counter()
    with pytest.raises(EndpointsDownError, match=rf"every endpoint is down \({url}: .* after 3 attempts\)"):
        OpenAIServerGenerator(url, model="m", shape=SHAPE, max_retries=2, backoff_s=0.05, timeout_s=2).generate(
            ["1\n"], 1, SamplingParams())
    assert time.perf_counter() - t0 >= 0.05 + 0.1  # back-off 0.05 s then 0.1 s
    with pytest.raises(InputError, match="shape"):
        OpenAIServerGenerator(url, model="m")
    with pytest.raises(InputError, match="base_url"):
        OpenAIServerGenerator(shape=SHAPE)


def _cfg(tmp_path, urls, strategies=None, **gen):
    cfg = {"run": "srv", "out_dir": str(tmp_path),
           "task": {"name": "arith", "params": {"n_problems": 6, "difficulty": 3}},
           "generator": {"name": "openai", "params": {"endpoints": urls, "shape": SHAPE, "max_retries": 1,
                                                      "backoff_s": 0.01, "timeout_s": 5, **gen}},
           "reward": {"name": "verifier"},
           "strategies": strategies or [{"name": "sampling", "budgets": [4]}, {"name": "rebase", "budgets": [4]}],
           "search": {"max_step_tokens": 40}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _texts(records):
    return {(r.strategy, r.budget, r.problem_id): [c.text for c in r.candidates] for r in records}


def test_two_replicas_balance_and_survive_one_dying(tmp_path):
    """Two servers share the requests; one is shut down mid-run: its requests go to the other, the run finishes
    with no failure, and the records are those of a run on one healthy server (each sample keyed by its seed)."""
    (a, url_a), (b, url_b) = _serve(), _serve()
    try:
        path = _cfg(tmp_path / "one", [url_b])
        reference = _texts(run_tts(load_config(path), quiet=True).records)

        from infscale.tts.backends import endpoints

        served = {"n": 0}
        original = endpoints.EndpointPool._send

        def send(self, ep, route, body, root):  # shut replica A down after it answered 20 requests
            out = original(self, ep, route, body, root)
            if ep.url == url_a and out is not None:
                served["n"] += 1
                if served["n"] == 20:
                    threading.Thread(target=lambda: (a.shutdown(), a.server_close())).start()
            return out

        endpoints.EndpointPool._send = send
        try:
            result = run_tts(load_config(_cfg(tmp_path / "two", [url_a, url_b])), quiet=True)
        finally:
            endpoints.EndpointPool._send = original
        assert result.failed == 0 and result.written == 12 and served["n"] >= 20
        assert _texts(result.records) == reference
    finally:
        b.shutdown()


def test_every_endpoint_dead_stops_the_run_in_one_line_and_resume_finishes(tmp_path, server):
    path = _cfg(tmp_path, [server])
    first = run_tts(load_config(path), quiet=True)
    assert (first.written, first.failed) == (12, 0)
    # beam added, against two dead endpoints: exit 1 (the run failed after starting), one line, the 12 records untouched, nothing else written
    dead = [f"http://127.0.0.1:{_free_port()}/v1", f"http://127.0.0.1:{_free_port()}/v1"]
    path = _cfg(tmp_path, dead, [{"name": "sampling", "budgets": [4]}, {"name": "rebase", "budgets": [4]},
                                 {"name": "beam", "budgets": [4]}])
    before = (tmp_path / "srv" / "records.jsonl").read_text()
    out = subprocess.run([sys.executable, "-m", "infscale.cli.main", "tts", "run", str(path)], capture_output=True,
                         text=True)
    assert out.returncode == 1, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if not ln.startswith("tts run")]
    assert len(lines) == 1 and lines[0].startswith("error: every endpoint is down")
    assert "run the same command again to finish it" in lines[0]
    assert (tmp_path / "srv" / "records.jsonl").read_text() == before
    # the servers are back: the same command finishes the run
    path = _cfg(tmp_path, [server], [{"name": "sampling", "budgets": [4]}, {"name": "rebase", "budgets": [4]},
                                     {"name": "beam", "budgets": [4]}])
    done = run_tts(load_config(path), quiet=True)
    assert (done.written, done.skipped, done.failed) == (6, 12, 0)
    assert len(list(read_problem_records(tmp_path / "srv" / "records.jsonl"))) == 18


def test_each_endpoint_sends_its_own_key_read_from_the_environment(tmp_path, monkeypatch):
    """Two keyed replicas with different keys, each key named per endpoint by its environment variable: the run
    finishes on both, and the run directory's stored config names the variables, never the keys."""
    servers = [make_server(ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE), port=0, api_key=key)
               for key in ("key-a-1234", "key-b-5678")]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    url_a, url_b = (f"http://127.0.0.1:{srv.server_address[1]}/v1" for srv in servers)
    monkeypatch.setenv("TEST_KEY_A", "key-a-1234")
    monkeypatch.setenv("TEST_KEY_B", "key-b-5678")
    try:
        path = _cfg(tmp_path, [url_a, {"url": url_b, "api_key_env": "TEST_KEY_B"}], api_key_env="TEST_KEY_A")
        result = run_tts(load_config(path), quiet=True)
        assert (result.written, result.failed) == (12, 0)
        stored = "\n".join(p.read_text() for p in (tmp_path / "srv").rglob("*") if p.is_file())
        assert "TEST_KEY_B" in stored and "key-a-1234" not in stored and "key-b-5678" not in stored

        # the same endpoint with the other replica's key: refused, one line naming the server, not retried
        monkeypatch.setenv("TEST_KEY_B", "key-a-1234")
        client = OpenAIServerGenerator(endpoints=[{"url": url_b, "api_key_env": "TEST_KEY_B"}], model="m",
                                       shape=SHAPE, max_retries=3, backoff_s=5.0)
        t0 = time.perf_counter()
        with pytest.raises(InputError, match=rf"server {url_b}/completions refused the API key \(HTTP 401\)"):
            client.generate(["1\n"], 1, SamplingParams())
        assert time.perf_counter() - t0 < 4.0
        with pytest.raises(InputError, match="refused the API key"):  # no key at all
            OpenAIServerGenerator(url_a, model="m", shape=SHAPE).generate(["1\n"], 1, SamplingParams())
    finally:
        for srv in servers:
            srv.shutdown()


@pytest.mark.parametrize(("endpoints", "extra", "words"), [
    (["http://127.0.0.1:1/v1"], {"api_key_env": "INFSCALE_TEST_UNSET_KEY"}, "api_key_env names "
                                                                              "INFSCALE_TEST_UNSET_KEY, which is not set"),
    ([{"url": "http://127.0.0.1:1/v1", "api_key_env": "INFSCALE_TEST_UNSET_KEY"}], {},
     r"endpoints\[0\]: api_key_env names INFSCALE_TEST_UNSET_KEY"),
    ([{"url": "http://127.0.0.1:1/v1", "api_key": "sk-literal"}], {}, r"endpoints\[0\] must be a URL or"),
    ([{"api_key_env": "X"}], {}, r"endpoints\[0\] must be a URL"),
    ([7], {}, r"endpoints\[0\] must be a URL"),
])
def test_bad_endpoint_keys_are_one_line(monkeypatch, endpoints, extra, words):
    monkeypatch.delenv("INFSCALE_TEST_UNSET_KEY", raising=False)
    with pytest.raises(InputError, match=words):
        OpenAIServerGenerator(endpoints=endpoints, model="m", shape=SHAPE, **extra)
