"""The console every command prints through: tables are never truncated and lines never wrapped mid-number.

rich fits output to the terminal (80 columns when there is none: a pipe, a log, CI) by shrinking table columns with
an ellipsis and wrapping text, which cut the numbers and the profile names users need to read or type. Here a table
is printed at its natural width when the terminal is narrower (the terminal wraps the long lines; nothing is lost), and
a line of text is printed whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infscale.extrapolation import law_quantities
from infscale.jsonsafe import finite
from infscale.notices import Notice, notice_kind

__all__ = ["console", "brief_warnings", "emit_json", "emit_json_line", "print_warnings"]


def _plain(obj: Any) -> Any:
    """What `finite` leaves for ``json`` to refuse: paths as text, anything else numeric as a float."""
    return str(obj) if isinstance(obj, Path) else float(obj)


def _collect_notices(obj: Any, found: dict[str, Notice]) -> None:
    if isinstance(obj, Notice):
        found.setdefault(str(obj), obj)
    elif isinstance(obj, dict):
        for value in obj.values():
            _collect_notices(value, found)
    elif isinstance(obj, list | tuple):
        for value in obj:
            _collect_notices(value, found)


def emit_json(data: Any) -> None:
    """The one ``--json`` output of every command: strict JSON (NaN and infinities as null, numpy values as Python
    ones), indented by 2, on standard output. Warnings stay lines of text where the result holds them; every typed
    notice among them is also listed once, with its fields, under a top-level ``"notices"`` (kind, text, quantity,
    value, range, source), so a program reads fields instead of parsing lines."""
    payload = finite(data)
    found: dict[str, Notice] = {}
    _collect_notices(data, found)
    if found and isinstance(payload, dict):
        payload["notices"] = [notice.to_dict() for notice in found.values()]
    print(json.dumps(payload, indent=2, allow_nan=False, default=_plain), flush=True)


def emit_json_line(record: Any) -> None:
    """One record of a stream (a run's record, a problem's result) as one strict JSON line on standard output."""
    print(json.dumps(finite(record), allow_nan=False, default=_plain), flush=True)


def print_warnings(lines: Iterable[str], *, context: str = "") -> None:
    """Every warning of every command, one line each on standard error (results stay alone on standard output, so
    ``> file`` keeps them all and ``--json`` stays parseable): ``warning: LINE`` or ``warning (CONTEXT): LINE``."""
    head = f"warning ({context})" if context else "warning"
    for line in lines:
        print(f"{head}: {line}", file=sys.stderr, flush=True)


class _WholeConsole(Console):
    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 - rich's name
        tables = [o for o in objects if isinstance(o, Table)]
        if not tables:
            kwargs.setdefault("soft_wrap", True)
            super().print(*objects, **kwargs)
            return
        wide = self.options.update(max_width=100_000)  # measured unclamped: the width the table wants
        need = max(self.measure(t, options=wide).maximum for t in tables)
        width = self.width
        if need > width:  # rich caps a print's width at the console's, so the console widens for this print
            self.width = need
        try:
            super().print(*objects, **kwargs)
        finally:
            self.width = width


def console(stderr: bool = False) -> Console:
    """A rich console on standard output (or error) that never truncates a table or wraps a line."""
    return _WholeConsole(stderr=stderr)


def brief_warnings(lines: list[str]) -> str:
    """Extrapolation and provenance notices (`infscale.notices`) in a few words, for a table cell or a line under a
    baseline: which quantities leave the law's fitted range, and why a latency is only an estimate."""

    symbols = law_quantities(lines)
    kinds = {notice_kind(line) for line in lines}
    profile_out = any(notice_kind(line) == "extrapolation" and line.source == "profile" for line in lines)
    parts = ([f"extrapolates the law ({', '.join(symbols)} outside its fitted range)"] if symbols else []) + \
        (["the law has no fitted range"] if "unchecked" in kinds else []) + \
        (["latency from an uncalibrated profile"] if "uncalibrated" in kinds else []) + \
        (["latency outside the sizes its profile was calibrated on"] if profile_out else [])
    return "; ".join(parts) or (lines[0] if lines else "")
