"""The own PRM scores incrementally (cached parent paths, only the new step through the model) and gets exactly the
full recomputation's step rewards."""

import random

import pytest

from infscale.tts.backends.torch import DEFAULT_PRM
from infscale.tts.core.rewards import TorchORM, TorchPRM
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


@pytest.mark.parametrize("cls", [TorchPRM, TorchORM])
def test_incremental_scores_equal_full_recomputation(cls):
    task = ArithmeticTask(n_problems=3, difficulty=4, seed=11)
    cached, plain = cls(task), cls(task, prefix_cache_mb=0)
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
    import torch

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
