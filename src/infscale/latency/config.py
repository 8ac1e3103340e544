"""The measurement sweep config (YAML -> pydantic, unknown keys are errors). Example: latency/data/cpu-sweep.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from infscale.arch import TransformerShape, parse_shape_spec
from infscale.configio import Strict
from infscale.latency.model import Workload


class WorkloadConfig(Strict):
    batch: int = Field(1, ge=1, description="sequences per generate call")
    input_len: int = Field(128, ge=1, description="prompt tokens")
    output_len: int = Field(256, ge=1, description="generated tokens (the first comes from the prefill)")
    dtype: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="weights and activations")

    def build(self) -> Workload:
        return Workload(batch=self.batch, input_len=self.input_len, output_len=self.output_len, dtype=self.dtype)


class LatencySweepConfig(Strict):
    """Shapes to time and how to time them."""

    backend: str = Field("own", description="measurement backend: own | hf | vllm")
    device: str = Field("auto", description="cpu | cuda | cuda:N | auto")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (CPU)")
    warmup: int = Field(1, ge=0, description="untimed runs")
    repeats: int = Field(5, ge=1, description="timed runs")
    vocab_size: int = Field(50432, ge=1, description="vocabulary of every shape without a v suffix")
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    shapes: list[str] = Field(min_length=1, description="shape specs, e.g. d256x4h4f688")

    @field_validator("shapes")
    @classmethod
    def _specs_parse(cls, specs: list[str]) -> list[str]:
        for spec in specs:
            parse_shape_spec(spec)
        return specs

    def build_shapes(self) -> list[TransformerShape]:
        return [parse_shape_spec(s, vocab_size=self.vocab_size) for s in self.shapes]
