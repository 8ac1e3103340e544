"""`infscale tts run` configuration: YAML validated into pydantic models (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from infscale.configio import SafeName, Strict, load_yaml


class NamedConfig(Strict):
    name: str
    """Registry name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the constructor."""


MAX_BUDGET = 65_536
"""The largest width / number of samples a strategy may be given (a budget beyond it is a typo, not a run)."""


class StrategyConfig(Strict):
    name: str
    budgets: list[Annotated[int, Field(ge=1, le=MAX_BUDGET)]] = Field(default_factory=lambda: [1], min_length=1)
    """Widths / numbers of samples ``n`` to run (greedy ignores it)."""


class SearchSettings(Strict):
    """Knobs shared by the strategies (defaults from seed B's released configuration): the ``search:`` block of a
    run config and the settings the search engine runs with."""

    temperature: float = Field(1.0, ge=0, allow_inf_nan=False)
    """Sampling temperature (greedy always uses 0)."""
    top_p: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    max_tokens: int = Field(512, ge=1, le=1_000_000)
    """Most tokens of a whole solution (sampling strategies)."""
    max_step_tokens: int = Field(256, ge=1, le=1_000_000)
    """Most tokens of one step (tree search)."""
    depth_cap: int = Field(25, ge=1, le=10_000)
    """Tree search stops expanding at this depth; unfinished nodes there are reported unfinished."""
    aggregation: str = "last"
    """Per-solution score from step scores: last, min, mean or prod."""
    beam_width: int = Field(4, ge=1, le=MAX_BUDGET)
    """Beam search: each kept beam gets this many children; ``budget // beam_width`` beams are kept."""
    rebase_temperature: float = Field(0.2, gt=0, allow_inf_nan=False)
    """REBASE's balance temperature T_b (paper 0.1, released config 0.2)."""
    mcts_root_width: int = Field(4, ge=1, le=MAX_BUDGET)
    mcts_width: int = Field(2, ge=1, le=MAX_BUDGET)
    mcts_c: float = Field(1.0, ge=0, allow_inf_nan=False)
    mcts_rollouts: bool = True
    """Classic MCTS simulation: every new node is completed by one sampled rollout to a final answer whose reward is
    the node's value (the rollout is a candidate; its FLOPs are counted). Off: a node's value is its own step reward,
    and a budget below the solution's depth never reaches an answer."""


class RunConfig(Strict):
    run: SafeName
    """Run name (records' ``run`` field)."""
    out_dir: str = "infscale-out/tts-run"
    """Records go to ``<out_dir>/<run>/records.jsonl``, the resolved config beside them."""
    model_name: str | None = None
    task: NamedConfig
    generator: NamedConfig
    reward: NamedConfig | None = None
    strategies: list[StrategyConfig] = Field(min_length=1)
    search: SearchSettings = Field(default_factory=SearchSettings)
    max_problems: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)
    """Keys every unit's randomness: (seed, model, strategy, budget, problem id) -> that unit's generator seeds."""


def load_config(path: str | Path) -> RunConfig:
    """A tts run config; every problem is one `InputError` line naming the file and field."""
    return load_yaml(path, RunConfig, what="tts run config")
