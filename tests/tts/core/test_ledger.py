"""FLOPs ledger vs closed forms from `TransformerShape` (docs/references.md §3)."""

import pytest

from infscale.arch import TransformerShape
from infscale.tts.core.config import SearchSettings
from infscale.tts.core.generation import Completion, ScriptedArithmeticGenerator
from infscale.tts.core.ledger import LedgerBuilder
from infscale.tts.core.rewards import ExactVerifier
from infscale.tts.core.scheduler import Engine
from infscale.tts.core.tasks import ArithmeticTask

SHAPE = TransformerShape(d_model=64, n_layers=2, n_heads=4, vocab_size=100, context_length=512)
PRM = TransformerShape(d_model=32, n_layers=2, n_heads=2, vocab_size=100, context_length=512)


def _c(p, g):
    return Completion(text="x" * g, prompt_tokens=p, completion_tokens=g, finish_reason="eos")


def test_sampling_request_closed_form():
    led = LedgerBuilder(SHAPE, PRM)
    led.add_request([_c(10, 5), _c(10, 7), _c(10, 3), _c(10, 9)], cached_tokens=0)
    led.add_reward([15, 17, 13, 19])
    f = led.freeze()
    Nm, L, da = SHAPE.n_params_matmul, SHAPE.n_layers, SHAPE.d_attn
    prefill = 2 * Nm * 10 + 4 * L * da * (10 * 11 / 2)
    assert f.policy_prefill_flops == pytest.approx(prefill)  # shared prompt processed once
    assert f.policy_prefill_nocache_flops == pytest.approx(4 * prefill)
    decode = sum(2 * Nm * g + 4 * L * da * (g * 10 + g * (g + 1) / 2) for g in (5, 7, 3, 9))
    assert f.policy_decode_flops == pytest.approx(decode)
    assert f.generated_tokens == 24 and f.prompt_tokens == 10
    assert f.wu2025_flops == 2 * SHAPE.n_params * 24
    assert f.reward_flops == pytest.approx(sum(PRM.flops_prefill(q) for q in (15, 17, 13, 19)))
    assert f.reward_tokens == 64
    assert f.total_flops == pytest.approx(prefill + decode + f.reward_flops)
    assert f.total_nocache_flops > f.total_flops


def test_cached_prefix_costs_only_new_tokens():
    led = LedgerBuilder(SHAPE)
    led.add_request([_c(30, 4), _c(30, 4)], cached_tokens=25)
    f = led.freeze()
    assert f.policy_prefill_flops == pytest.approx(SHAPE.flops_prefill(5, cached=25))
    assert f.policy_prefill_nocache_flops == pytest.approx(2 * SHAPE.flops_prefill(30))
    # a fully cached prefix (tree search: the path was generated before) costs no prefill
    led2 = LedgerBuilder(SHAPE)
    led2.add_request([_c(30, 4)], cached_tokens=30)
    assert led2.freeze().policy_prefill_flops == 0.0


def test_verifier_costs_nothing_and_tree_search_shares_prefixes():
    task = ArithmeticTask(n_problems=1, difficulty=4)
    eng = Engine(task, ScriptedArithmeticGenerator(error_rate=0.2, shape=SHAPE.to_dict()), ExactVerifier(task),
                 SearchSettings(max_step_tokens=40))
    problem = task.load()[0]
    rec = eng.run("rebase", problem, 8)
    n_prompt = len(task.prompt(problem))
    # with prefix caching only the question is prefilled, once
    assert rec.ledger.policy_prefill_flops == pytest.approx(SHAPE.flops_prefill(n_prompt))
    assert rec.ledger.prompt_tokens == n_prompt
    assert rec.ledger.policy_prefill_nocache_flops > 8 * SHAPE.flops_prefill(n_prompt)
    assert rec.ledger.reward_flops == 0.0


def test_kv_bytes_read_by_the_decode_closed_form():
    """A completion of g tokens after a p-token prompt reads the K/V of p + k tokens at its k-th token."""
    from infscale.arch import TransformerShape
    from infscale.tts.core.generation import Completion
    from infscale.tts.core.ledger import LedgerBuilder

    shape = TransformerShape(d_model=64, n_layers=2, n_heads=4, vocab_size=100, context_length=256)
    led = LedgerBuilder(shape)
    comps = [Completion(text="x", prompt_tokens=10, completion_tokens=g, finish_reason="stop") for g in (3, 5)]
    led.add_request(comps)
    per_token = 2 * 2 * 64 * 2  # K and V, 2 layers, d_kv 64, 2 bytes
    want = per_token * sum(g * 10 + g * (g + 1) / 2 for g in (3, 5))
    assert led.freeze().policy_kv_read_bytes == want


def test_memory_accounting_prices_kv_bytes_at_the_hardwares_flops_per_byte():
    from infscale.latency.io import get_profile
    from infscale.tts.analysis import OperatingPoint

    a100 = get_profile("a100-80gb")
    assert a100.flops_per_byte() == pytest.approx(312e12 / 2.039e12, rel=0.01)
    p = OperatingPoint(model="m", n_params=1, strategy="rebase+weighted_vote", n=4, flops=5.0, wu2025_flops=2.0,
                       accuracy=0.5, kv_read_bytes=10.0, flops_per_byte=a100.flops_per_byte())
    assert p.flops_for("memory") == pytest.approx(2.0 + 10.0 * a100.flops_per_byte())
    with pytest.raises(ValueError, match="needs a hardware profile"):
        OperatingPoint(model="m", n_params=1, strategy="s", n=1, flops=1.0, wu2025_flops=1.0,
                       accuracy=0.5).flops_for("memory")
