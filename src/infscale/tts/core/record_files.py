"""The records files of a tts run directory: ``records.jsonl``, or one ``records.shard-I-of-K.jsonl`` per shard of a
Slurm-style array run (``infscale tts run --shard I/K``), read back as one set of records.

Within a file the latest record of a unit wins (a failed then retried problem counts once; `infscale.records`);
across the files of one run a unit may appear in one file only: shards are disjoint, so a unit in two files is two
runs mixed up, refused in one line naming both files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from infscale import records as store
from infscale.errors import InputError
from infscale.records import latest
from infscale.tts.core.records import ProblemRecord

__all__ = ["RECORDS", "read_problem_records", "read_run", "record_files", "shard_file"]

RECORDS = "records.jsonl"
_SHARD = re.compile(r"^records\.shard-(\d+)-of-(\d+)\.jsonl$")


def shard_file(index: int, count: int) -> str:
    """The records file of shard ``index`` (1-based) of ``count``."""
    return RECORDS if count == 1 else f"records.shard-{index}-of-{count}.jsonl"


def record_files(run_dir: Path) -> list[Path]:
    """The records files of a run directory: ``records.jsonl`` and the shard files, in a fixed order."""
    files = [run_dir / RECORDS] if (run_dir / RECORDS).exists() else []
    shards = sorted((p for p in run_dir.glob("records.shard-*.jsonl") if _SHARD.match(p.name)),
                    key=lambda p: tuple(int(g) for g in _SHARD.match(p.name).groups()[::-1]))  # type: ignore[union-attr]
    return files + shards


def _key(r: ProblemRecord) -> tuple[str, str, int, str]:
    return (r.model, r.strategy, r.budget, r.problem_id)


def read_problem_records(path: Path) -> Iterator[ProblemRecord]:
    """The records of one JSONL file, one per (model, strategy, budget, problem): the latest written wins. A torn
    last line (an interrupted write) is skipped."""
    parsed = []
    done: dict[tuple[str, str, int, str], int] = {}
    for line, data in store.read_numbered(path, missing_ok=True):
        if "run_id" in data and "problem_id" not in data:
            raise InputError(f"{path}:{line}: not a tts record: a training run's record (field 'run_id'); "
                             "`infscale runs` lists those")
        try:
            rec = ProblemRecord.from_json(data)
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"{path}:{line}: not a tts record ({exc.__class__.__name__}: {exc})") from None
        k = _key(rec)
        if k in done:  # only a failed unit is run again (and its retry supersedes it)
            raise InputError(f"{path}:{line}: unit (model {k[0]}, strategy {k[1]}, n={k[2]}, problem {k[3]}) was "
                             f"already recorded, without an error, on line {done[k]}: a duplicated unit")
        if rec.error is None:
            done[k] = line
        parsed.append(rec)
    yield from latest(parsed, key=_key)


def read_run(path: Path) -> list[ProblemRecord]:
    """The records of a run directory (every records file in it) or of one JSONL file; a unit found in two files
    is an `InputError` naming both."""
    files = record_files(path) if path.is_dir() else [path]
    seen: dict[tuple[str, str, int, str], Path] = {}
    out: list[ProblemRecord] = []
    for f in files:
        for rec in read_problem_records(f):
            k = _key(rec)
            if k in seen:
                raise InputError(f"{f}: unit (model {k[0]}, strategy {k[1]}, n={k[2]}, problem {k[3]}) is also in "
                                 f"{seen[k]}: two runs' records in one directory (shards must not overlap)")
            seen[k] = f
            out.append(rec)
    return out
