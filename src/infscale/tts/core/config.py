"""`infscale tts run` configuration: YAML validated into pydantic models (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from infscale.configio import SafeName, Strict, load_yaml


class NamedConfig(Strict):
    name: str
    """Registry name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the constructor."""


class StrategyConfig(Strict):
    name: str
    budgets: list[int] = Field(default_factory=lambda: [1])
    """Widths / numbers of samples ``n`` to run (greedy ignores it)."""


class SearchSettings(Strict):
    """Knobs shared by the strategies (defaults from seed B's released configuration): the ``search:`` block of a
    run config and the settings the search engine runs with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = 1.0
    """Sampling temperature (greedy always uses 0)."""
    top_p: float = 1.0
    max_tokens: int = 512
    """Most tokens of a whole solution (sampling strategies)."""
    max_step_tokens: int = 256
    """Most tokens of one step (tree search)."""
    depth_cap: int = 25
    """Tree search stops expanding at this depth; unfinished nodes there are reported unfinished."""
    aggregation: str = "last"
    """Per-solution score from step scores: last, min, mean or prod."""
    beam_width: int = 4
    """Beam search: each kept beam gets this many children; ``budget // beam_width`` beams are kept."""
    rebase_temperature: float = 0.2
    """REBASE's balance temperature T_b (paper 0.1, released config 0.2)."""
    mcts_root_width: int = 4
    mcts_width: int = 2
    mcts_c: float = 1.0


class RunConfig(Strict):
    run: SafeName
    """Run name (records' ``run`` field)."""
    out_dir: str = "runs/tts"
    """Records go to ``<out_dir>/<run>/records.jsonl``, the resolved config beside them."""
    model_name: str | None = None
    task: NamedConfig
    generator: NamedConfig
    reward: NamedConfig | None = None
    strategies: list[StrategyConfig]
    search: SearchSettings = Field(default_factory=SearchSettings)
    max_problems: int | None = None


def load_config(path: str | Path) -> RunConfig:
    """A tts run config; every problem is one `InputError` line naming the file and field."""
    return load_yaml(path, RunConfig, what="tts run config")
