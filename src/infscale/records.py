"""The one append-only JSONL store, used by every long job (latency measure, training sweeps and metrics, tts runs,
the demo, model selection, the tts mini study).

Rules (the same for every file):

- **One writer.** `RecordWriter` takes an exclusive lock on ``FILE.lock`` (holding the writer's pid); a second writer
  on the same file is refused with one line naming the file and the holder's pid.
- **Durable lines.** One JSON object per line, flushed and fsynced before `append` returns.
- **One torn-tail rule.** A process killed mid-write can leave a last line that does not parse (with or without its
  newline). Readers skip it with a `RecordWarning`; a writer cuts it on open (with the warning) so the unit it held is
  redone. A bad line anywhere else is an `InputError` naming ``file:line``.
- **Latest key wins.** A unit of work written twice (a failed then retried problem, a re-measured shape) is counted
  once: `latest` keeps the last record of each key, in first-seen order.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from infscale.errors import InputError
from infscale.jsonsafe import loads_strict

__all__ = ["RecordWarning", "RecordWriter", "read_records", "read_numbered", "latest", "append_one", "held"]

Key = Callable[[dict[str, Any]], Any]


class RecordWarning(UserWarning):
    """A torn last line was skipped or cut."""


def _torn(raw: bytes, i: int, last: int) -> bool:
    """Whether line ``i`` can be the tail a killed writer left: the last non-empty line and the start of a JSON
    object. Anything else that does not parse is damage, and is reported, never cut."""
    return i == last and raw.lstrip().startswith(b"{")


def _parse_lines(path: Path, data: bytes) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """(line number, record) of ``data`` and, when the last line is a torn tail (`_torn`), the byte offset where it
    starts."""
    if b"\x00" in data:
        raise InputError(f"{path}: binary content, not a JSONL records file")
    records: list[tuple[int, dict[str, Any]]] = []
    lines = data.split(b"\n")
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            rec = loads_strict(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            if _torn(raw, i, last):
                return records, offsets[i]
            why = ("not UTF-8" if isinstance(exc, UnicodeDecodeError) else
                   exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc))
            raise InputError(f"{path}:{i + 1}: not a JSON record ({why})") from None
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{i + 1}: a record must be a JSON object, got {type(rec).__name__}")
        records.append((i + 1, rec))
    return records, None


def read_records(path: str | Path, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """Every record of ``path`` in file order (a torn last line skipped with a `RecordWarning`)."""
    return [rec for _, rec in read_numbered(path, missing_ok=missing_ok)]


def read_numbered(path: str | Path, *, missing_ok: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of every record of ``path``, for readers that name the line of a bad record."""
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return []
        raise InputError(f"{p}: no such records file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a records file")
    records, torn = _parse_lines(p, p.read_bytes())
    if torn is not None:
        warnings.warn(f"{p}: skipped a torn last line (a writer was interrupted)", RecordWarning, stacklevel=2)
    return records


def latest(records: Iterable[dict[str, Any]], key: Key) -> list[dict[str, Any]]:
    """One record per key, the last one written, in the order the keys were first seen."""
    out: dict[Any, dict[str, Any]] = {}
    for r in records:
        out[key(r)] = r
    return list(out.values())


def held(path: str | Path) -> bool:
    """Whether a `RecordWriter` (in any process) holds ``path`` now, i.e. a job is writing it."""
    lock = Path(path).with_name(Path(path).name + ".lock")
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


class RecordWriter:
    """Exclusive appender of one JSONL file: ``with RecordWriter(path) as w: w.append(record)``.

    The constructor only stores the path; the lock is taken, and a torn tail cut, on enter.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fh: Any = None
        self._fh: Any = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def __enter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory, not a records file")
        fh = open(self.lock_path, "a+")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise InputError(f"{self.path}: another writer holds it (pid {holder}); wait for it to finish or stop "
                             "it first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh
        try:
            self._cut_torn_tail()
            self._fh = open(self.path, "ab")  # noqa: SIM115
        except BaseException:
            self._release()
            raise
        return self

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        _, torn = _parse_lines(self.path, data)
        if torn is None:
            if data and not data.endswith(b"\n"):  # a complete last record whose newline was not written
                with open(self.path, "ab") as fh:
                    fh.write(b"\n")
            return
        warnings.warn(f"{self.path}: cut a torn last line (a writer was interrupted); its unit of work is redone",
                      RecordWarning, stacklevel=3)
        with open(self.path, "r+b") as fh:
            fh.truncate(torn)
            fh.flush()
            os.fsync(fh.fileno())

    def records(self) -> list[dict[str, Any]]:
        """What the file holds now (call inside the ``with``)."""
        return read_records(self.path, missing_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("RecordWriter.append outside its `with` block")
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self._fh.write(line.encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __exit__(self, *exc: object) -> None:
        self._release()


def append_one(path: str | Path, record: dict[str, Any]) -> None:
    """Open, append one record, close (for jobs that write a record now and then)."""
    with RecordWriter(path) as w:
        w.append(record)
