"""Progress of every long job (training, sweeps, selection, tts runs, the tts mini study, latency sweeps, the demo).

One `Progress` per loop over units of work. On a terminal it draws a rich bar (label, bar, done/total, elapsed, ETA);
anywhere else (a log file, CI, a pipe, a worker process) it writes plain lines, each with the elapsed time and an ETA:
one each time another 5% of the units is done, or when `LINE_EVERY_S` seconds passed since the last line (a job
that runs for half an hour is never silent, and a pipe is never flooded: at most ~20 lines plus one per interval),
and always the last:

    sweep: 3/12 runs (25%), 1:04 elapsed, ETA 3:12 | micro-d64xL4h4-m20 val loss 4.1012

Units finished by an earlier process (a resumed run) are counted with ``resumed=True``: they move the counter but not
the rate, so the ETA of a resumed job is not fooled by the instant skips. Output goes to standard error (looked up when
the progress starts, so a test's capture sees it), never to standard output, so ``--json`` output stays clean.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from typing import TextIO

__all__ = ["LINE_EVERY_S", "Progress", "format_duration"]

LINE_EVERY_S = 10.0
"""Off a terminal, a line at least this often while units finish (besides one per 5% of the total)."""


def format_duration(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a number of seconds; ``?`` when unknown."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A counter of units of work with an ETA; use as a context manager, call `advance` after each unit.

    ``label`` names the job (``"tts run arith-own"``), ``unit`` what is counted (plural: ``"runs"``, ``"steps"``),
    ``about`` what one unit is when the word does not say it (printed once, at the start); ``every``: off a terminal,
    a line at most once per that many units (then by 5% and time as the module says; always the last). The bar is drawn when the stream (default: standard error) is a
    terminal and this is the main process (pool workers write lines, which interleave cleanly).
    """

    def __init__(self, label: str, total: int | None, unit: str, *, every: int = 1, stream: TextIO | None = None,
                 enabled: bool = True, about: str = "") -> None:
        self.label, self.total, self.unit, self.about = label, total, unit, about
        self.every = max(1, int(every))
        self.stream, self.enabled = stream, enabled
        self.done = 0
        self._fresh = 0
        self._printed = 0
        self._t0 = 0.0
        self._last_line_t = 0.0
        self._bar = None
        self._task = None
        self._out: TextIO | None = None

    # ----- lifecycle --------------------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self._t0 = self._last_line_t = time.perf_counter()
        if not self.enabled:
            return self
        self._out = self.stream if self.stream is not None else sys.stderr
        if getattr(self._out, "isatty", lambda: False)() and multiprocessing.parent_process() is None:
            from rich.console import Console  # lazy: rich
            from rich.progress import (  # lazy: rich
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar  # lazy: rich

            self._bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn(self.unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            TextColumn("{task.fields[note]}"), console=Console(file=self._out), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, note="")
        if self.about:  # what one unit is, said once
            print(f"{self.label}: {'?' if self.total is None else self.total} {self.unit} ({self.about})",
                  file=self._out, flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def start(self) -> Progress:
        """`__enter__` for a loop too long to indent under ``with`` (the trainer's); pair it with `close`."""
        return self.__enter__()

    def close(self) -> None:
        self.__exit__()

    # ----- counting ---------------------------------------------------------------------------------------------
    def eta_s(self) -> float:
        """Seconds left at the rate of the units done in this process; ``nan`` before the first such unit."""
        if self.total is None or self._fresh == 0:
            return float("nan")
        rate = (time.perf_counter() - self._t0) / self._fresh
        return max(0, self.total - self.done) * rate

    def advance(self, n: int = 1, note: str = "", *, resumed: bool = False) -> None:
        """``n`` more units done (``resumed``: done by an earlier process, so they do not count towards the rate)."""
        self.done += n
        if not resumed:
            self._fresh += n
        self._show(note, force=False)

    def note(self, note: str) -> None:
        """A message about the current unit (a line, or the bar's note), without advancing."""
        self._show(note, force=True)

    def line(self) -> str:
        """The plain-text progress line for the current count."""
        total = "?" if self.total is None else str(self.total)
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        elapsed = format_duration(time.perf_counter() - self._t0)
        return f"{self.label}: {self.done}/{total} {self.unit}{pct}, {elapsed} elapsed, ETA {format_duration(self.eta_s())}"

    def _show(self, note: str, force: bool) -> None:
        if not self.enabled or self._out is None:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total, note=note)
            return
        if force or self._due():
            self._printed = self.done
            self._last_line_t = time.perf_counter()
            print(self.line() + (f" | {note}" if note else ""), file=self._out, flush=True)

    def _due(self) -> bool:
        """Whether a plain line is due: the last unit; else a new multiple of ``every`` reached and either another 5%
        of the total or `LINE_EVERY_S` seconds since the last line."""
        if self.done <= self._printed:
            return False
        if self.total is not None and self.done >= self.total:
            return True
        if self.done // self.every <= self._printed // self.every:  # no new multiple of ``every`` reached
            return False
        step = 0.05 * self.total if self.total else float("inf")
        return (self.done // step > self._printed // step if self.total else False) or \
            time.perf_counter() - self._last_line_t >= LINE_EVERY_S
