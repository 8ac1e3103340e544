"""Names that changed, accepted for one release with a deprecation line.

Until 0.1 the two papers infscale implements were called "seed A" and "seed B" in commands, datasets and files; the
field knows them as Bian et al. 2025 (Morph-1B, inference-aware scaling laws) and Wu et al. 2025 (REBASE, inference
scaling laws), and so does infscale now. Every old name still works until the next release: `current_name` maps it
to the new one and says so, once per name, on stderr. This table is the only place old names live; the registry,
the command line and the few lookups outside the registry (FLOPs accountings, bundled operating points, recipes)
all go through it.

Pure: the standard library only; the shared bottom every layer may import.
"""

from __future__ import annotations

import sys

__all__ = ["RENAMED", "current_name", "current_argv"]

RENAMED: dict[str, str] = {
    # Bian et al. 2025 (Morph-1B)
    "seed-a": "bian2025",  # the bundled runs (`fit --data`) and the shape family (`plan --family`)
    "a100-40gb-seed-a": "a100-40gb-bian2025",  # the A100 profile calibrated on the paper's latencies
    "--seed-a": "--bian2025",  # `latency calibrate`
    # Wu et al. 2025 (REBASE)
    "seed_b": "wu2025",  # the FLOPs accounting 2 N T (`tts analyze --accounting`)
    "seed-b-math500": "wu2025-math500",  # the published tables as operating points (lifecycle `testtime.points`)
    "seed-b-gsm8k": "wu2025-gsm8k",
    "seed_b_mini": "wu2025_mini",  # the `tts mini` recipe
    "--seed-b": "--wu2025",  # `tts analyze`
}
"""Old name -> new name."""

REMOVED_IN = "0.2"
_said: set[str] = set()


def current_name(name: str) -> str:
    """``name``, or its new name when it is an old one (saying so on stderr, once per name)."""
    new = RENAMED.get(name) if isinstance(name, str) else None
    if new is None:
        return name
    if name not in _said:
        _said.add(name)
        print(f"deprecated: {name!r} is now {new!r}; the old name goes in infscale {REMOVED_IN}", file=sys.stderr)
    return new


def current_argv(argv: list[str]) -> list[str]:
    """A command line with its renamed flags (``--seed-b``) under their new names; values are left alone (their
    lookups map them)."""
    return [current_name(arg) if arg.startswith("--") else arg for arg in argv]
