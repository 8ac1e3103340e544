"""Exceptions shared across infscale. The CLI turns `InputError` into one line on stderr and exit code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file, row or field that cannot be used. The message names where."""


class InfeasibleError(ValueError):
    """A constrained problem with no feasible point; the message names the binding constraint."""
