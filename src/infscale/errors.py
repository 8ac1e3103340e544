"""Exceptions shared across infscale, and the one exit-code rule of the command line: an `InputError` (or an
`InfeasibleError`) is one line on stderr and exit code 2, before anything is written; a `RunFailed` is one line and
exit code 1, after the run kept what it finished."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file, row or field that cannot be used. The message names where."""


class RunFailed(RuntimeError):
    """A run that failed after it started (every endpoint went down, problems failed): what finished is kept and the
    same command resumes it. The message says what failed and where the kept work is."""


STOPS_A_RUN = (InputError, RunFailed)
"""What a run does not record as one unit's failure but stops on (a unit's own failure is recorded and the run goes
on)."""


class InfeasibleError(ValueError):
    """A constrained problem with no feasible point; the message names the binding constraint."""
