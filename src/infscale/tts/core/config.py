"""`infscale tts run` configuration: YAML validated into pydantic models (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infscale.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NamedConfig(_Strict):
    name: str
    """Registry name."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the constructor."""


class StrategyConfig(_Strict):
    name: str
    budgets: list[int] = Field(default_factory=lambda: [1])
    """Widths / numbers of samples ``n`` to run (greedy ignores it)."""


class SearchConfig(_Strict):
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


class RunConfig(_Strict):
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
    import yaml

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: field {where!r}: {err['msg']}") from None
