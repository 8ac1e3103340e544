"""`infscale tts run` configuration: YAML validated into pydantic models (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator

from infscale.configio import SafeName, Strict, load_yaml
from infscale.tts.core.aggregation import SCORE_AGGREGATIONS


class NamedConfig(Strict):
    name: str
    """Registry name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the constructor."""


MAX_BUDGET = 65_536
"""The largest width / number of samples a strategy may be given (a budget beyond it is a typo, not a run)."""


class StrategyConfig(Strict):
    name: str
    """A registered strategy (`infscale.tts.core.spec.STRATEGIES`, plugins included)."""
    budgets: list[Annotated[int, Field(ge=1, le=MAX_BUDGET)]] = Field(default_factory=lambda: [1], min_length=1)
    """Widths / numbers of samples ``n`` to run (greedy ignores it)."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """The strategy's own settings (its spec's settings model: ``rebase``: ``balance_temperature``; ``beam``:
    ``width``; ``mcts``: ``root_width``, ``width``, ``c``, ``rollouts``; ``particle_filter``:
    ``resample_temperature``)."""


class SearchSettings(Strict):
    """Knobs shared by the strategies (defaults from Wu et al.'s released configuration): the ``search:`` block of a
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
    """Per-solution score from step scores: last, min, mean or prod (`infscale.tts.core.aggregation`)."""

    @field_validator("aggregation")
    @classmethod
    def _known_aggregation(cls, value: str) -> str:
        if value not in SCORE_AGGREGATIONS:
            raise ValueError(f"unknown score aggregation {value!r}; known: {', '.join(SCORE_AGGREGATIONS.names())}")
        return value


class BatchLimits(Strict):
    """How much the scheduler puts in flight (`infscale.tts.core.scheduler`); unset: the generator's defaults, which
    fill its device."""

    max_rows: int | None = Field(None, ge=1, le=1_000_000)
    """Sequences decoded in one generator call."""
    max_kv_bytes: float | None = Field(None, gt=0, allow_inf_nan=False)
    """K/V bytes of the units in flight (each at its prompt + ``max_tokens``)."""
    max_units: int | None = Field(None, ge=1, le=1_000_000)
    """Units in flight (1: one problem under one strategy at a time, the loop before the scheduler)."""


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
    batch: BatchLimits = Field(default_factory=BatchLimits)
    executor: str = "local"
    """``local``: this process; ``ray``: shards of units to Ray actors, one generator each (``address`` for a
    cluster, else a local Ray)."""
    address: str | None = None
    """Ray cluster address (``ray://head:10001`` or ``auto``); unset: a local Ray."""
    workers: int = Field(1, ge=1, le=4096)
    """Ray actors (one generator each; one GPU each when the cluster has GPUs)."""
    threads: int | None = Field(None, ge=1, le=4096)
    """Torch threads of each worker (default: the cores divided among the workers)."""
    max_problems: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)
    """Keys every unit's randomness: (seed, model, strategy, budget, problem id) -> that unit's generator seeds."""


def load_config(path: str | Path) -> RunConfig:
    """A tts run config; every problem is one `InputError` line naming the file and field."""
    return load_yaml(path, RunConfig, what="tts run config")
