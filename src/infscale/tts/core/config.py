"""`infscale tts run` configuration: YAML validated into pydantic models (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from infscale.configio import Strict, load_yaml


class NamedConfig(Strict):
    name: str
    """Registry name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the constructor."""


class StrategyConfig(Strict):
    name: str
    budgets: list[int] = Field(default_factory=lambda: [1])
    """Widths / numbers of samples ``n`` to run (greedy ignores it)."""


class SearchConfig(Strict):
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    max_step_tokens: int = 256
    depth_cap: int = 25
    aggregation: str = "last"
    beam_width: int = 4
    rebase_temperature: float = 0.2
    mcts_root_width: int = 4
    mcts_width: int = 2
    mcts_c: float = 1.0


class RunConfig(Strict):
    run: str
    """Run name (records' ``run`` field)."""
    out_dir: str = "runs/tts"
    """Records go to ``<out_dir>/<run>/records.jsonl``, the resolved config beside them."""
    model_name: str | None = None
    task: NamedConfig
    generator: NamedConfig
    reward: NamedConfig | None = None
    strategies: list[StrategyConfig]
    search: SearchConfig = Field(default_factory=SearchConfig)
    max_problems: int | None = None


def load_config(path: str | Path) -> RunConfig:
    """A tts run config; every problem is one `InputError` line naming the file and field."""
    return load_yaml(path, RunConfig, what="tts run config")
