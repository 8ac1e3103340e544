"""Strict JSON: the one place that turns numpy values and non-finite floats into what ``json`` accepts, and the one
parse that refuses non-finite numbers."""

from __future__ import annotations

import json
import math
import numbers
from typing import Any


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity`` (``ValueError: non-finite number NaN``): the parse of what
    users and other processes hand the project (config files, records, server requests). A syntax error is a
    ``json.JSONDecodeError`` as usual (a ``ValueError`` too)."""
    return json.loads(text, parse_constant=_no_constant)


def is_finite_number(value: object) -> bool:
    """A real, finite number; not a bool (JSON ``true`` is not 1), not a string, not NaN or infinite."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def finite(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Dict keys become strings, tuples lists, numpy scalars and arrays Python values (via ``tolist``), and NaN or
    infinite floats (e.g. the Spearman correlation of a one-run group) ``None``.
    """
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist"):
        return finite(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
