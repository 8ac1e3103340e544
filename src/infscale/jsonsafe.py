"""Strict-JSON values: the one place that turns numpy values and non-finite floats into what ``json`` accepts."""

from __future__ import annotations

import math
from typing import Any


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
