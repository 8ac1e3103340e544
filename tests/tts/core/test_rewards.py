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
