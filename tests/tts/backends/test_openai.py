"""OpenAI-compatible client against a real loopback server (infscale.tts.backends.serve), and a dead server."""

import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from infscale.errors import InputError
from infscale.tts.backends.openai import OpenAIServerGenerator, ServerUnavailableError
from infscale.tts.backends.serve import make_server
from infscale.tts.core.config import load_config
from infscale.tts.core.generation import SamplingParams, ScriptedArithmeticGenerator
from infscale.tts.core.runner import read_records, run

SHAPE = {"d_model": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 64, "context_length": 512}


@pytest.fixture(scope="module")
def server():
    srv = make_server(ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE), port=0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_same_completions_as_the_backend(server):
    client = OpenAIServerGenerator(server, shape=SHAPE, concurrency=4)
    local = ScriptedArithmeticGenerator(error_rate=0.3, shape=SHAPE)
    prompts = ["7 +5 *3 -4\n", "2 *4 +1\nStep 1: 2*4=8 ки\n"]
    params = SamplingParams(temperature=1.0, max_tokens=40, stop=("ки",))
    got = client.generate(prompts, [3, 2], params)
    want = local.generate(prompts, [3, 2], params)
    assert [[(c.text, c.completion_tokens, c.finish_reason, c.prompt_tokens) for c in row] for row in got] == \
        [[(c.text, c.completion_tokens, c.finish_reason, c.prompt_tokens) for c in row] for row in want]
    assert got[0][0].finish_reason == "stop" and got[0][0].text.endswith("ки")
    assert client.count_tokens("7 +5\n") == 5
    full = client.generate(["3 +1\n"], 1, SamplingParams(temperature=0.0, max_tokens=100))[0][0]
    assert full.finish_reason == "eos" and full.text.endswith("The answer is 4.")


def test_dead_server_is_a_clear_error():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    t0 = time.perf_counter()
    with pytest.raises(ServerUnavailableError, match=r"unavailable after 3 attempts"):
        OpenAIServerGenerator(url, model="m", shape=SHAPE, max_retries=2, backoff_s=0.05, timeout_s=2).generate(
            ["1\n"], 1, SamplingParams())
    assert time.perf_counter() - t0 >= 0.05 + 0.1  # back-off 0.05 s then 0.1 s
    with pytest.raises(InputError, match="shape"):
        OpenAIServerGenerator(url, model="m")


def test_run_against_server_then_dead_server_records_failures(tmp_path, server):
    cfg = {"run": "srv", "out_dir": str(tmp_path),
           "task": {"name": "arith", "params": {"n_problems": 2, "difficulty": 3}},
           "generator": {"name": "openai", "params": {"base_url": server, "shape": SHAPE}},
           "reward": {"name": "verifier"},
           "strategies": [{"name": "sampling", "budgets": [4]}, {"name": "rebase", "budgets": [4]}],
           "search": {"max_step_tokens": 40}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    s = run(load_config(path))
    assert (s.written, s.failed) == (4, 0)
    recs = list(read_records(Path(s.records_path)))
    assert all(len([c for c in r.candidates if c.finished]) == 4 for r in recs)
    # the same config against a dead server: every problem is a recorded failure, the finished ones stay
    cfg["generator"]["params"] = {"base_url": f"http://127.0.0.1:{_free_port()}/v1", "shape": SHAPE,
                                  "max_retries": 1, "backoff_s": 0.01}
    cfg["strategies"].append({"name": "beam", "budgets": [4]})
    path.write_text(yaml.safe_dump(cfg))
    s2 = run(load_config(path))
    assert (s2.written, s2.skipped, s2.failed) == (2, 4, 2)
    recs = list(read_records(Path(s2.records_path)))
    assert len(recs) == 6 and sum(r.error is not None for r in recs) == 2
    assert all("ServerUnavailableError" in r.error for r in recs if r.error)
