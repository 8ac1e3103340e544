"""The project's own small policy and PRM (bundled checkpoints) on the synthetic arithmetic task: every strategy
end to end, the ledger priced from the real shapes, and the PRM separating right from wrong steps."""

import random

import pytest

from infscale.tts.backends.torch import DEFAULT_POLICY, DEFAULT_PRM, TorchGenerator
from infscale.tts.core.rewards import TorchPRM
from infscale.tts.core.strategies import STRATEGIES, Engine, SearchSettings
from infscale.tts.core.tasks import ArithmeticTask
from infscale.tts.own_models.train import corrupted_solution

pytestmark = pytest.mark.skipif(not (DEFAULT_POLICY.exists() and DEFAULT_PRM.exists()),
                                reason="bundled checkpoints missing")


@pytest.fixture(scope="module")
def setup():
    task = ArithmeticTask(n_problems=2, difficulty=3, seed=99)
    gen = TorchGenerator(seed=0)
    prm = TorchPRM(task)
    eng = Engine(task, gen, prm, SearchSettings(max_tokens=120, max_step_tokens=24, depth_cap=6))
    return task, gen, prm, eng


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_with_own_models(setup, strategy):
    task, gen, prm, eng = setup
    problem = task.load()[0]
    rec = eng.run(strategy, problem, 4)
    assert rec.candidates and rec.ledger.generated_tokens > 0
    assert rec.ledger.reward_flops > 0
    assert rec.ledger.reward_tokens >= sum(c.prompt_tokens for c in rec.candidates[:1])
    assert rec.ledger.seed_b_flops == 2 * gen.shape.n_params * rec.ledger.generated_tokens
    assert rec.ledger.total_flops > rec.ledger.seed_b_flops * 0.5
    for c in rec.candidates:
        assert c.step_scores and all(0.0 <= s <= 1.0 for s in c.step_scores)
        assert c.score == c.step_scores[-1]  # default aggregation: last


def test_policy_writes_the_solution_format(setup):
    task, gen, _, eng = setup
    for problem in ArithmeticTask(n_problems=5, difficulty=3, seed=5).load():
        rec = eng.run("greedy", problem, 1)
        (c,) = rec.candidates
        assert c.finished and c.answer is not None
        assert len(task.split_steps(c.text)) == 4  # 3 tagged steps + the answer line


def test_prm_prefers_correct_steps(setup):
    """On held-out corrupted solutions the PRM's step reward ranks right steps above wrong ones (AUC)."""
    task, _, prm, _ = setup
    rng = random.Random(123)
    pos, neg = [], []
    for problem in ArithmeticTask(n_problems=40, difficulty=3, seed=4242).load():
        text, labels = corrupted_solution(problem, rng, 0.3)
        (scored,) = prm.score(problem, task.prompt(problem), [task.split_steps(text)])
        for s, ok in zip(scored.scores, labels, strict=True):
            (pos if ok else neg).append(s)
    auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert auc > 0.7, auc


def test_policy_prm_data_is_the_checkers_labels_balanced_per_position():
    """`policy_prm_examples`: the policy's own solutions, each tag labelled by the exact checker, and at every step
    position the good and bad labels carry the same total weight (the index says nothing about the label)."""
    from infscale.tts.own_models.tokenizer import CharTokenizer
    from infscale.tts.own_models.train import IGNORE, SmallTrainConfig, policy_prm_examples

    tok = CharTokenizer()
    cfg = SmallTrainConfig(min_difficulty=3, max_difficulty=6, threads=1, seed=5)
    pool = policy_prm_examples(DEFAULT_POLICY, cfg, 24, 3)
    assert 40 <= len(pool) <= 72  # finished solutions only
    good, bad = tok.stoi["+"], tok.stoi["-"]
    mass: dict[tuple[int, int], float] = {}
    n_bad = 0
    for ids, tgt, wts in pool:
        marked = [i for i, t in enumerate(tgt) if t != IGNORE]
        assert [ids[i] for i in marked[:-1]] == [tok.tag_id] * (len(marked) - 1)  # tags, then the answer's end
        labels = [tgt[i] == good for i in marked]
        assert labels == sorted(labels, reverse=True)  # once wrong, every later step is wrong
        n_bad += labels.count(False)
        for k, i in enumerate(marked):
            assert tgt[i] in (good, bad)
            mass[(k, tgt[i])] = mass.get((k, tgt[i]), 0.0) + wts[i]
    assert n_bad > 0
    for k in {k for k, _ in mass}:
        g, b = mass.get((k, good), 0.0), mass.get((k, bad), 0.0)
        assert g == pytest.approx(b) or g == 0 or b == 0
