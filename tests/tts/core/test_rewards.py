"""The own PRM's two heads (Math-Shepherd's tag head, the calibrated likelihood head): closed forms, bad checkpoints,
and incremental scoring (cached parent paths, only the new step through the model) equal to the full
recomputation."""

import math
import random

import pytest
import torch

from infscale.errors import InputError
from infscale.tts.backends.torch import DEFAULT_PRM
from infscale.tts.core.rewards import LikelihoodHead, TorchORM, TorchPRM, path_min_logprobs, token_logprobs
from infscale.tts.core.tasks import ArithmeticTask
from infscale.tts.own_models.train import corrupted_solution

pytestmark = pytest.mark.skipif(not DEFAULT_PRM.exists(), reason="bundled PRM checkpoint missing")


def _tree(task, problem, rng, width=4):
    """Depth by depth, like tree search: each candidate is a kept parent path plus one freshly written step."""
    paths = [[]]
    depths = []
    for _ in range(len(problem.get("ops")) + 1):
        new = []
        for parent in paths:
            for _ in range(width // len(paths) or 1):
                steps = task.split_steps(corrupted_solution(problem, rng, 0.3)[0])
                new.append([*parent, steps[len(parent)]])  # a sibling may repeat a step: same text, one row
        depths.append(new)
        paths = rng.sample(new, min(2, len(new)))
    return depths


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_likelihood_head_closed_form():
    head = LikelihoodHead(coef=2.0, intercept=1.0)
    lps = [0.0, -3.0, -0.1, -2.0, -0.3]  # positions 0-1 are the prompt: their -3 does not count
    got = head.probabilities(lps, first=2)
    assert got == pytest.approx([0.5, 0.5, _sigmoid(0.8), _sigmoid(-3.0), _sigmoid(-3.0)])
    assert path_min_logprobs(lps, 2, [2, 4]) == [-0.1, -2.0]
    assert path_min_logprobs(lps, 2, [3]) == [-2.0]
    assert head.probabilities([0.0, -800.0], first=1)[1] == pytest.approx(0.0)  # no overflow far out
    rows = torch.log_softmax(torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), -1)
    assert token_logprobs(rows, [0, 2, 0]) == pytest.approx([0.0, float(rows[0, 2]), float(rows[1, 0])])


def _with_head(tmp_path, head):
    ckpt = torch.load(DEFAULT_PRM, weights_only=True)
    ckpt["extra"] = {} if head is None else {"head": head}
    path = tmp_path / "prm.pt"
    torch.save(ckpt, path)
    return str(path)


def test_bad_heads_are_refused(tmp_path):
    with pytest.raises(InputError, match="unknown PRM head"):
        TorchPRM(checkpoint=_with_head(tmp_path, {"kind": "oracle"}))
    with pytest.raises(InputError, match="needs numeric 'coef'"):
        TorchPRM(checkpoint=_with_head(tmp_path, {"kind": "likelihood", "coef": "x"}))
    with pytest.raises(InputError, match="must be finite"):
        TorchPRM(checkpoint=_with_head(tmp_path, {"kind": "likelihood", "coef": float("nan"), "intercept": 0}))


def test_the_bundled_prm_reads_the_likelihood_head():
    prm = TorchPRM()
    assert prm.head is not None and prm.head.coef > 0


@pytest.fixture(params=["likelihood", "tag"])
def head_checkpoint(request, tmp_path):
    return None if request.param == "likelihood" else _with_head(tmp_path, None)


@pytest.mark.parametrize("cls", [TorchPRM, TorchORM])
def test_incremental_scores_equal_full_recomputation(cls, head_checkpoint):
    task = ArithmeticTask(n_problems=3, difficulty=4, seed=11)
    cached, plain = cls(task, checkpoint=head_checkpoint), cls(task, checkpoint=head_checkpoint, prefix_cache_mb=0)
    assert (cached.head is None) == (head_checkpoint is not None)
    assert plain.prefix_store is None
    rng = random.Random(7)
    n_scored = read = 0
    for problem in task.load():
        prompt = task.prompt(problem)
        for candidates in _tree(task, problem, rng):
            got = cached.score(problem, prompt, candidates)
            ref = plain.score(problem, prompt, candidates)
            for g, r in zip(got, ref, strict=True):
                assert g.n_tokens == r.n_tokens
                assert g.scores == pytest.approx(r.scores, abs=2e-5)
                n_scored += 1
                read += g.n_tokens
    assert n_scored > 40
    assert cached.prefix_store.hit_tokens > 0.5 * read  # most tokens read came from the store, not the model


def test_prm_store_follows_weight_changes():
    task = ArithmeticTask(n_problems=1, difficulty=3, seed=2)
    problem = task.load()[0]
    prompt = task.prompt(problem)
    steps = task.split_steps(task.solution(problem))
    prm = TorchPRM(task)
    prm.score(problem, prompt, [steps[:2]])
    with torch.no_grad():
        for block in prm.model.blocks:
            block.attn.wk.weight.mul_(-1.0)
    after = prm.score(problem, prompt, [steps[:3]])[0].scores
    fresh = TorchPRM(task, prefix_cache_mb=0)
    fresh.model.load_state_dict(prm.model.state_dict())
    assert after == pytest.approx(fresh.score(problem, prompt, [steps[:3]])[0].scores, abs=2e-5)
    assert prm.prefix_store.hit_tokens == 0


@pytest.mark.parametrize("target", [0.6, 0.8, 0.95])
def test_noisy_verifier_has_the_auc_it_is_set_to(target):
    from infscale.tts.analysis.reward_quality import auc
    from infscale.tts.core.rewards import NoisyVerifier

    task = ArithmeticTask(n_problems=400, difficulty=4, seed=8)
    reward = NoisyVerifier(task, auc=target, seed=3)
    rng = random.Random(5)
    scores, labels = [], []
    for problem in task.load():
        text, lab = corrupted_solution(problem, rng, 0.25)
        (scored,) = reward.score(problem, task.prompt(problem), [task.split_steps(text)])
        scores += scored.scores
        labels += lab
    assert len(scores) == 2000 and 0.2 < 1 - sum(labels) / len(labels) < 0.8
    assert auc(scores, labels) == pytest.approx(target, abs=0.03)


def test_noisy_verifier_is_a_pure_function_of_the_path_and_exact_at_auc_1(tmp_path):
    from infscale.tts.core.rewards import ExactVerifier, NoisyVerifier

    task = ArithmeticTask(n_problems=2, difficulty=4, seed=1)
    problem = task.load()[0]
    prompt = task.prompt(problem)
    steps = task.split_steps(task.solution(problem))
    noisy = NoisyVerifier(task, auc=0.7, seed=1)
    whole = noisy.score(problem, prompt, [steps])[0]
    again = NoisyVerifier(task, auc=0.7, seed=1).score(problem, prompt, [steps[:2], steps])
    assert again[1].scores == whole.scores and again[0].scores == whole.scores[:2]  # a prefix keeps its scores
    assert NoisyVerifier(task, auc=0.7, seed=2).score(problem, prompt, [steps])[0].scores != whole.scores
    assert whole.n_tokens > 0 and noisy.shape == TorchPRM(task).shape  # priced as the bundled PRM
    exact = NoisyVerifier(task, auc=1.0, cost_as="none")
    assert exact.shape is None
    assert exact.score(problem, prompt, [steps])[0].scores == ExactVerifier(task).score(problem, prompt, [steps])[0].scores
    for bad in (0.5, 1.2, "x"):
        with pytest.raises(InputError, match="auc must be in"):
            NoisyVerifier(task, auc=bad)
