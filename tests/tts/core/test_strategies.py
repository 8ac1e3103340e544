"""Strategies: REBASE widths and MCTS UCT/backup vs hand computations; every strategy end to end on the scripted
generator with the exact verifier."""

import math

import pytest

from infscale.errors import InputError
from infscale.tts.core.aggregation import aggregate, best_of_n, majority_vote, weighted_vote
from infscale.tts.core.config import SearchSettings
from infscale.tts.core.generation import SamplingParams, ScriptedArithmeticGenerator
from infscale.tts.core.records import Candidate
from infscale.tts.core.rewards import ExactVerifier
from infscale.tts.core.scheduler import Engine
from infscale.tts.core.search import Node
from infscale.tts.core.spec import STRATEGIES, get_strategy
from infscale.tts.core.tasks import ArithmeticTask
from infscale.tts.strategies.mcts import backup, uct, uct_select
from infscale.tts.strategies.rebase import rebase_widths


# ----- REBASE width allocation (hand-computed) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rewards", "budget", "temperature", "expected"),
    [
        # e = exp(r/T) = 90.017, 12.182, 1.649; S = 103.848; ceil(4*90.017/103.848 = 3.47) = 4 -> nothing left
        ([0.9, 0.5, 0.1], 4, 0.2, [4, 0, 0]),
        # equal rewards: ceil(6/4)=2, ceil(4/3)=2, ceil(2/2)=1, ceil(1/1)=1
        ([0.5, 0.5, 0.5, 0.5], 6, 0.2, [2, 2, 1, 1]),
        # T=1: e = 1.350, 1.822; best first: ceil(3*1.822/3.172 = 1.72) = 2; then ceil(1*1.350/1.350) = 1
        ([0.3, 0.6], 3, 1.0, [1, 2]),
        # T=0.1: e = 2981, 1096.6, 7.39; ceil(5*0.7297)=4; w=1: ceil(1096.6/1104.0 = 0.993)=1; w=0
        ([0.8, 0.7, 0.2], 5, 0.1, [4, 1, 0]),
        # budget smaller than the number of nodes: the best nodes get one each
        ([0.1, 0.9, 0.5], 2, 10.0, [0, 1, 1]),
    ],
)
def test_rebase_widths_hand_computed(rewards, budget, temperature, expected):
    widths = rebase_widths(rewards, budget, temperature)
    assert widths == expected
    assert sum(widths) == budget


def test_rebase_widths_sum_to_budget_and_monotone():
    import random

    rng = random.Random(3)
    for _ in range(200):
        r = [rng.random() for _ in range(rng.randint(1, 12))]
        b = rng.randint(1, 64)
        w = rebase_widths(r, b, rng.choice([0.1, 0.2, 1.0]))
        assert sum(w) == b
        order = sorted(range(len(r)), key=lambda j: -r[j])
        assert all(w[order[i]] >= w[order[i + 1]] for i in range(len(r) - 1))


# ----- MCTS UCT and backup on a hand-built tree --------------------------------------------------------------------
def _tree():
    root = Node(steps=[])
    root.visits, root.q = 10, 0.56
    a = Node(steps=["a"], parent=root, depth=1)
    a.visits, a.q = 4, 0.5
    b = Node(steps=["b"], parent=root, depth=1)
    b.visits, b.q = 6, 0.6
    root.children = [a, b]
    a1 = Node(steps=["a", "1"], parent=a, depth=2)
    a1.visits, a1.q = 3, 0.2
    a2 = Node(steps=["a", "2"], parent=a, depth=2)
    a.children = [a1, a2]
    return root, a, b, a1, a2


def test_uct_values_and_selection():
    root, a, b, a1, a2 = _tree()
    assert uct(a, 10) == pytest.approx(0.5 + math.sqrt(math.log(10) / 4))  # 1.258713
    assert uct(a, 10) == pytest.approx(1.258713, abs=1e-6)
    assert uct(b, 10) == pytest.approx(1.219487, abs=1e-6)
    assert uct(a2, 4) == math.inf
    # with C = 0 exploitation only: B has the higher Q
    assert uct_select(root, c=0.0) is b
    # C = 1: A wins at the root, then the unvisited A2
    assert uct_select(root, c=1.0) is a2


def test_running_mean_backup():
    root, a, b, a1, a2 = _tree()
    backup(a2, 0.9)
    assert (a2.visits, a2.q) == (1, pytest.approx(0.9))
    assert (a.visits, a.q) == (5, pytest.approx(0.58))
    assert (root.visits, root.q) == (11, pytest.approx(0.56 + (0.9 - 0.56) / 11))
    assert (b.visits, b.q) == (6, 0.6)  # off-path node untouched


# ----- aggregations -------------------------------------------------------------------------------------------
def _cand(answer, score, finished=True):
    return Candidate(text="", answer=answer, finished=finished, step_scores=(score,), score=score)


def test_score_aggregations():
    s = (0.9, 0.5, 0.8)
    assert aggregate(s, "last") == 0.8
    assert aggregate(s, "min") == 0.5
    assert aggregate(s, "mean") == pytest.approx(2.2 / 3)
    assert aggregate(s, "prod") == pytest.approx(0.36)
    assert aggregate((), "last") is None
    with pytest.raises(InputError, match="unknown score aggregation"):
        aggregate(s, "median")


def test_votes():
    cands = [_cand("1", 0.2), _cand("1", 0.2), _cand("2", 0.9), _cand("3", 0.5), _cand("3", 0.5),
             _cand("9", 1.0, finished=False)]
    assert majority_vote(cands) == "1"  # tie 1 vs 3 (2 votes each): first seen wins
    assert best_of_n(cands) == "2"  # the unfinished 0.99 never wins
    assert weighted_vote(cands) == "3"  # 1.0 vs 0.9 vs 0.4
    assert majority_vote([_cand(None, 0.1)]) is None


# ----- end to end on the scripted generator ------------------------------------------------------------------------
@pytest.fixture
def engine():
    task = ArithmeticTask(n_problems=4, difficulty=4, seed=1)
    gen = ScriptedArithmeticGenerator(error_rate=0.3, seed=0)
    return task, Engine(task, gen, ExactVerifier(task), SearchSettings(max_step_tokens=40))


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_end_to_end(engine, strategy):
    task, eng = engine
    for problem in task.load():
        rec = eng.run(strategy, problem, 8)
        assert rec.candidates
        kept = sum(c.completion_tokens for c in rec.candidates)
        if not get_strategy(strategy).iid:  # paths share prefixes and pruned nodes cost tokens too
            assert rec.ledger.generated_tokens >= max(c.completion_tokens for c in rec.candidates)
        else:
            assert rec.ledger.generated_tokens == kept
        assert rec.ledger.policy_decode_flops > 0 and rec.ledger.reward_flops == 0.0
        assert rec.ledger.wu2025_flops == 2 * eng.generator.shape.n_params * rec.ledger.generated_tokens
        for c in rec.candidates:
            if c.finished:
                assert c.answer is not None
                assert c.correct == (c.answer == problem.gold)


def test_greedy_is_exact_on_scripted(engine):
    task, eng = engine
    for problem in task.load():
        rec = eng.run("greedy", problem, 1)
        assert rec.answers["greedy"] == problem.gold and rec.correct["greedy"]


def test_rebase_returns_budget_completed_leaves(engine):
    task, eng = engine
    for problem in task.load():
        rec = eng.run("rebase", problem, 8)
        finished = [c for c in rec.candidates if c.finished]
        assert len(finished) == 8  # budget decremented by completed leaves until 0
        # the exact verifier steers REBASE: with rewards 0/1 and T_b=0.2 the wrong nodes get width 0
        assert rec.correct["weighted_vote"]


def test_depth_cap_reports_unfinished(engine):
    task, _ = engine
    eng = Engine(task, ScriptedArithmeticGenerator(error_rate=0.3), ExactVerifier(task),
                 SearchSettings(max_step_tokens=40, depth_cap=2))
    for strategy in ("rebase", "beam", "mcts", "particle_filter"):
        rec = eng.run(strategy, task.load()[0], 4)
        assert rec.candidates and all(not c.finished for c in rec.candidates)
        assert rec.answers["majority_vote"] is None
        # a path stopped by the cap says so; MCTS may also return open (unexpanded) leaves
        assert {c.finish_reason for c in rec.candidates} <= {"depth", None}
        assert any(c.finish_reason == "depth" for c in rec.candidates)


def test_finished_candidates_record_their_finish_reason(engine):
    task, eng = engine
    for strategy in ("sampling", "rebase"):
        rec = eng.run(strategy, task.load()[1], 4)
        assert all(c.finish_reason in ("stop", "eos") for c in rec.candidates if c.finished)
        assert all(c.finish_reason is not None for c in rec.candidates if c.finished)


@pytest.mark.parametrize("strategy", ["rebase", "beam", "mcts", "particle_filter"])
def test_path_filling_the_context_ends_as_length(strategy):
    """An untrained 32-token model writes no answers, so every path grows until it fills the context: the search must
    stop those paths as unfinished ``length`` candidates instead of asking the generator for a prompt it cannot hold
    (the torch generator raises on a prompt of >= context tokens)."""
    import torch

    from infscale.arch import TransformerShape
    from infscale.train.model import LlamaModel
    from infscale.tts.backends.torch import TorchGenerator
    from infscale.tts.core.records import ProblemRecord
    from infscale.tts.own_models.tokenizer import CharTokenizer

    ctx = 32
    torch.manual_seed(0)
    model = LlamaModel(TransformerShape(d_model=32, n_layers=1, n_heads=2, vocab_size=CharTokenizer().vocab_size,
                                        context_length=ctx))
    gen = TorchGenerator(model=model, seed=0)
    task = ArithmeticTask(n_problems=1, difficulty=4, seed=1)
    problem = task.load()[0]
    with pytest.raises(ValueError, match="does not fit"):  # what the search used to run into
        gen.generate([task.prompt(problem) + "x" * ctx], 1, SamplingParams(max_tokens=4))
    eng = Engine(task, gen, ExactVerifier(task), SearchSettings(max_step_tokens=8, depth_cap=25))
    rec = eng.run(strategy, problem, 8)
    assert rec.candidates
    n_prompt = gen.count_tokens(task.prompt(problem)) + 1  # + BOS
    lengths = [c for c in rec.candidates if c.finish_reason == "length"]
    assert lengths, [c.finish_reason for c in rec.candidates]
    for c in lengths:
        assert not c.finished
        assert n_prompt + c.completion_tokens >= ctx  # the path used up the context
    # no path outgrew it (re-encoded text: a sampled special token adds a token but no text)
    prompt = task.prompt(problem)
    assert max(gen.count_tokens(prompt + c.text) + 1 for c in rec.candidates) == ctx
    # the reason survives the JSON round trip of the records file
    back = ProblemRecord.from_json(rec.to_json())
    assert [c.finish_reason for c in back.candidates] == [c.finish_reason for c in rec.candidates]


def test_tree_search_needs_reward():
    task = ArithmeticTask(n_problems=1)
    eng = Engine(task, ScriptedArithmeticGenerator(), None)
    with pytest.raises(InputError, match="needs a reward model"):
        eng.run("rebase", task.load()[0], 4)


def test_mcts_respects_expansion_budget(engine):
    task, eng = engine
    rec = eng.run("mcts", task.load()[0], 5)
    # root: 4 children, then at most 4 more expansions of 2 children each; each new node one rollout
    assert len(rec.candidates) <= 2 * (4 + 4 * 2)
    rollouts = [c for c in rec.candidates if c.finished]
    assert 4 <= len(rollouts) <= 4 + 4 * 2


def test_mcts_rollouts_reach_answers_below_the_solutions_depth(engine):
    """Two expansions cannot reach the end of a 4-step solution; the rollouts do (and are paid for)."""
    task, _ = engine
    problem = task.load()[0]
    runs = {}
    for rollouts in (True, False):
        eng = Engine(task, ScriptedArithmeticGenerator(error_rate=0.0), ExactVerifier(task),
                     SearchSettings(max_step_tokens=40), options={"mcts": {"rollouts": rollouts}})
        runs[rollouts] = eng.run("mcts", problem, 2)
    assert runs[True].correct["majority_vote"] and runs[True].answers["majority_vote"] == problem.gold
    assert runs[False].answers["majority_vote"] is None
    assert runs[True].ledger.generated_tokens > runs[False].ledger.generated_tokens
