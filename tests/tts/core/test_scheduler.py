"""The scheduler: many problems per generator call, tree searches step-synchronous across problems, records that do
not depend on the batch (text for text on the torch backend), failures kept to their units."""

from __future__ import annotations

import pytest

from infscale.tts.backends.torch import DEFAULT_POLICY, DEFAULT_PRM, TorchGenerator
from infscale.tts.core.config import BatchLimits, SearchSettings
from infscale.tts.core.generation import ScriptedArithmeticGenerator, derive_seed
from infscale.tts.core.rewards import ExactVerifier, TorchPRM
from infscale.tts.core.scheduler import Scheduler, UnitJob
from infscale.tts.core.tasks import ArithmeticTask

SETTINGS = SearchSettings(temperature=1.0, max_tokens=120, max_step_tokens=24, depth_cap=8)


class CountingGenerator(ScriptedArithmeticGenerator):
    """The scripted generator, counting its calls and the prompts of each."""

    def __init__(self) -> None:
        super().__init__(error_rate=0.3)
        self.calls: list[int] = []

    def generate(self, prompts, n, params, seeds=None):
        self.calls.append(len(prompts))
        return super().generate(prompts, n, params, seeds)


def _jobs(problems, strategies, keyed=True):
    return [UnitJob(strategy=s, budget=b, problem=p, seed=derive_seed(0, s, b, p.problem_id) if keyed else None)
            for s, b in strategies for p in problems]


def _run(task, gen, reward, jobs, **limits):
    out = {}
    Scheduler(task, gen, reward, SETTINGS, limits=BatchLimits(**limits)).run(
        jobs, lambda r: out.__setitem__((r.strategy, r.budget, r.problem_id), r))
    return out


def test_sampling_sends_many_problems_in_one_call():
    task = ArithmeticTask(n_problems=12, difficulty=3, seed=3)
    gen = CountingGenerator()
    recs = _run(task, gen, ExactVerifier(task), _jobs(task.load(), [("sampling", 4)]))
    assert len(recs) == 12 and gen.calls == [12]  # 12 problems x 4 samples in one call
    gen = CountingGenerator()
    _run(task, gen, ExactVerifier(task), _jobs(task.load(), [("sampling", 4)]), max_rows=16)
    assert gen.calls == [4, 4, 4]  # cut at 16 rows: 4 problems per call
    gen = CountingGenerator()
    _run(task, gen, ExactVerifier(task), _jobs(task.load(), [("sampling", 4)]), max_units=1)
    assert gen.calls == [1] * 12  # one problem at a time


def test_tree_search_is_step_synchronous_across_problems():
    """REBASE on 6 problems of 3 steps: one generator call per depth holding every problem's frontier (3 steps + the
    answer line = 4 depths), not 6 x 4 calls."""
    task = ArithmeticTask(n_problems=6, difficulty=3, seed=3)
    gen = CountingGenerator()
    recs = _run(task, gen, ExactVerifier(task), _jobs(task.load(), [("rebase", 4)]))
    assert len(recs) == 6 and all(r.error is None for r in recs.values())
    assert len(gen.calls) == 4 and gen.calls[0] == 6


@pytest.mark.skipif(not (DEFAULT_POLICY.exists() and DEFAULT_PRM.exists()), reason="bundled checkpoints missing")
@pytest.mark.parametrize("keyed", [True, False])
def test_records_do_not_depend_on_the_batch(keyed):
    """Bundled policy + PRM, 16 problems, sampling, REBASE and particle filtering: the records at batch sizes 1, 8 and
    64 units are the same text for text (answers and ledgers too; scores within 1e-6). Without per-unit keys (the
    generator's own stream, drawn per call) they are not: this test would catch a seed keyed by the call."""
    task = ArithmeticTask(n_problems=16, difficulty=3, seed=21)
    jobs = _jobs(task.load(), [("sampling", 4), ("rebase", 4), ("particle_filter", 4)], keyed=keyed)
    runs = {}
    for units in (1, 8, 64):
        gen, prm = TorchGenerator(seed=0), TorchPRM(task)
        runs[units] = _run(task, gen, prm, jobs, max_units=units)
    base = runs[1]

    def texts(recs):
        return {k: [c.text for c in r.candidates] for k, r in recs.items()}

    if not keyed:
        assert texts(runs[8]) != texts(base)
        return
    for units in (8, 64):
        got = runs[units]
        assert texts(got) == texts(base)
        for k, r in got.items():
            b = base[k]
            assert r.answers == b.answers and r.ledger == b.ledger
            for c, d in zip(r.candidates, b.candidates, strict=True):
                assert c.step_scores == pytest.approx(d.step_scores, abs=1e-6)


def test_a_failing_strategy_is_recorded_and_the_others_go_on():
    from infscale.tts.core.spec import STRATEGIES, StrategySpec

    def broken(ctx):
        if ctx.problem.problem_id.endswith("-1"):
            raise RuntimeError("this problem breaks the strategy")
        return (yield from ctx.sample_solutions(ctx.budget))

    STRATEGIES.register("broken_for_test", StrategySpec(name="broken_for_test", label="broken", search=broken,
                                                        iid=True))
    try:
        task = ArithmeticTask(n_problems=4, difficulty=3, seed=3)
        recs = _run(task, CountingGenerator(), None, _jobs(task.load(), [("broken_for_test", 2)]))
    finally:
        STRATEGIES.unregister("broken_for_test")
    bad = [r for r in recs.values() if r.error]
    assert len(recs) == 4 and len(bad) == 1 and "RuntimeError: this problem breaks" in bad[0].error
    assert all(len(r.candidates) == 2 for r in recs.values() if not r.error)


def test_records_are_handed_over_as_units_finish():
    """Greedy units finish in the first tick, long REBASE units later: greedy records come first whatever the order
    of the jobs."""
    task = ArithmeticTask(n_problems=3, difficulty=3, seed=3)
    order = []
    jobs = _jobs(task.load(), [("rebase", 4), ("greedy", 1)])
    Scheduler(task, CountingGenerator(), ExactVerifier(task), SETTINGS).run(jobs, lambda r: order.append(r.strategy))
    assert order == ["greedy"] * 3 + ["rebase"] * 3
