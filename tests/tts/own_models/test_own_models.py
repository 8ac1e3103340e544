"""The project's own small policy and PRM (bundled checkpoints) on the synthetic arithmetic task: every strategy
end to end, the ledger priced from the real shapes, and the PRM separating right from wrong steps."""

import random

import pytest

from infscale.tts.backends.torch import DEFAULT_POLICY, DEFAULT_PRM, TorchGenerator
from infscale.tts.core.config import SearchSettings
from infscale.tts.core.rewards import TorchPRM
from infscale.tts.core.scheduler import Engine
from infscale.tts.core.spec import STRATEGIES
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
    assert rec.ledger.wu2025_flops == 2 * gen.shape.n_params * rec.ledger.generated_tokens
    if strategy == "greedy":  # one temperature-0 answer: nothing to choose, nothing scored
        assert rec.ledger.reward_flops == 0 and not rec.candidates[0].step_scores
        return
    assert rec.ledger.reward_flops > 0
    assert rec.ledger.reward_tokens >= sum(c.prompt_tokens for c in rec.candidates[:1])
    assert rec.ledger.total_flops > rec.ledger.wu2025_flops * 0.5
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


def test_fit_likelihood_head_recovers_a_known_slope():
    """Labels drawn from sigmoid(a * feature + b) on a random model's own path-minimum feature: the fit finds a (one
    scored position per solution, so the per-position weights only move the intercept)."""
    import math

    import torch

    from infscale.arch import TransformerShape
    from infscale.train.model import LlamaModel
    from infscale.tts.core.rewards import path_min_logprobs, token_logprobs
    from infscale.tts.own_models.train import fit_likelihood_head

    torch.manual_seed(0)
    model = LlamaModel(TransformerShape(d_model=32, n_layers=1, n_heads=2, vocab_size=20, context_length=32)).eval()
    with torch.no_grad():  # a confident model, so that its path minimum spreads over a few nats
        model.lm_head.weight.mul_(30.0)
    rng = random.Random(1)
    a, b = 1.0, 12.0
    seqs = [[rng.randrange(20) for _ in range(rng.randint(4, 30))] for _ in range(6000)]
    batch = torch.zeros((len(seqs), 30), dtype=torch.long)
    for r, ids in enumerate(seqs):
        batch[r, : len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        rows = torch.log_softmax(model(batch).float(), -1)
    samples, first = [], 3
    for r, ids in enumerate(seqs):
        pos = [len(ids) - 1]
        (f,) = path_min_logprobs(token_logprobs(rows[r, : len(ids)], ids), first, pos)
        label = rng.random() < 1.0 / (1.0 + math.exp(-(a * f + b)))
        samples.append(((ids, pos, [label]), first))
    head = fit_likelihood_head(model, samples)
    assert head.coef == pytest.approx(a, rel=0.1)
    with pytest.raises(Exception, match="both good and bad"):
        fit_likelihood_head(model, [((ids, pos, [True]), first) for (ids, pos, _), first in samples[:50]])


def test_train_likelihood_prm_writes_a_prm_that_scores_with_its_head(tmp_path):
    from infscale.tts.own_models.train import SmallTrainConfig, train_likelihood_prm

    cfg = SmallTrainConfig(min_difficulty=3, max_difficulty=6, threads=1, seed=2)
    out = tmp_path / "prm.pt"
    metrics = train_likelihood_prm(DEFAULT_POLICY, [DEFAULT_POLICY], cfg, 32, 2, out, log_every=0)
    assert metrics["bad_steps"] > 0 and metrics["coef"] > 0
    task = ArithmeticTask(n_problems=1, difficulty=3, seed=1)
    prm = TorchPRM(task, checkpoint=str(out))
    assert prm.head is not None and prm.head.coef == pytest.approx(metrics["coef"])
    (p,) = task.load()
    steps = task.split_steps(task.solution(p))
    wrong = [s.replace(p.gold, str(int(p.gold) + 1)) for s in steps]
    good, bad = prm.score(p, task.prompt(p), [steps, wrong])
    assert good.scores[-1] > bad.scores[-1]
