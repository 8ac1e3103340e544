"""Helpers every test folder shares."""

from __future__ import annotations

import re

import pytest


def progress_counts(text: str, label: str) -> list[tuple[int, int]]:
    """``(done, total)`` of every plain progress line of ``label`` in ``text`` (`infscale.progress.Progress`), which
    must also carry its elapsed time and ETA."""
    pattern = re.compile(rf"^{re.escape(label)}: (\d+)/(\d+) .* elapsed, ETA \S+", re.MULTILINE)
    return [(int(a), int(b)) for a, b in pattern.findall(text)]


@pytest.fixture
def progress_lines():
    """`progress_counts` as a fixture."""
    return progress_counts
