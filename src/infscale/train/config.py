"""Typed training and sweep configs (pydantic, unknown keys are errors) and YAML loading with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from infscale import configio
from infscale.configio import SafeName, Strict
from infscale.train.downstream import validate_tasks


class ModelConfig(Strict):
    """The shape to train; the vocabulary size comes from the tokenizer."""

    d_model: int = Field(gt=0, description="Residual stream width.")
    n_layers: int = Field(gt=0, description="Number of transformer blocks.")
    n_heads: int = Field(gt=0, description="Query heads.")
    n_kv_heads: int | None = Field(default=None, description="Key/value heads (GQA); None = n_heads.")
    d_ff: int | None = Field(default=None, description="FFN hidden width; None = the SwiGLU rule of infscale.arch.")
    ffn_kind: Literal["swiglu", "gelu"] = "swiglu"
    tied_embeddings: bool = Field(default=True, description="Share the input embedding with the LM head.")
    context_length: int = Field(default=128, gt=0, description="Training sequence length (tokens).")


class DataConfig(Strict):
    corpus: str | list[str] = Field(default="default", description="'default', a path, or a list of paths.")
    vocab_size: int = Field(default=512, ge=1, le=1 << 20, description="Byte-level BPE vocabulary size (at most "
                            "2^20: the BPE trainer aborts far beyond any corpus it can learn from).")
    val_fraction: float = Field(default=0.01, description="Tail fraction of every document held out for validation.")
    cache_dir: str | None = Field(default=None, description="Token cache root (default $INFSCALE_CACHE or ~/.cache).")
    max_bytes: int | None = Field(default=None, gt=0, description="Use only the first max_bytes of the corpus.")


class OptimConfig(Strict):
    """AdamW with linear warm-up then cosine decay (Bian et al.'s recipe scaled down)."""

    lr: float = Field(default=3e-3, gt=0)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1, description="Final lr = lr * min_lr_ratio (3e-3 -> 3e-5).")
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    weight_decay: float = Field(default=0.033, ge=0)
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1, description="Warm-up steps as a fraction of all steps.")
    grad_clip: float = Field(default=1.0, ge=0, description="Global grad-norm clip; 0 disables.")
    z_loss: float = Field(default=1e-4, ge=0, description="z-loss coefficient; 0 disables.")


class TrainConfig(Strict):
    """One training run. Give ``tokens`` or ``tokens_per_param`` (D = round(M * N))."""

    model: ModelConfig
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    batch_size: int = Field(default=32, gt=0, description="Sequences per micro-batch (per process).")
    grad_accum: int = Field(default=1, gt=0, description="Micro-batches per optimizer step.")
    tokens: int | None = Field(default=None, gt=0, description="Training tokens D.")
    tokens_per_param: float | None = Field(default=None, gt=0, description="D / N.")
    dtype: Literal["auto", "bf16", "fp32"] = Field(
        default="auto", description="bf16 autocast (CPU and CUDA), fp32, or 'auto': bf16 where the device computes it "
                                    "natively (CUDA with bf16; CPUs with AVX512-BF16 or AMX), else fp32.")
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
                        description="'auto' (cuda if available), 'cpu', 'mps' or 'cuda[:i]'.")
    threads: int | None = Field(default=None, gt=0, description="torch CPU threads (None = torch's default).")
    seed: int = 0
    eval_every: int = Field(default=0, ge=0, description="Steps between validation passes (0 = only at the end).")
    eval_tokens: int = Field(default=32768, gt=0, description="Validation tokens per pass (from the held-out split).")
    log_every: int = Field(default=10, gt=0, description="Steps between metrics lines.")
    checkpoint_every: int = Field(default=100, ge=0, description="Steps between checkpoints (0 = never).")
    ema_beta: float = Field(default=0.95, gt=0, lt=1, description="Smoothing of the training loss (bias-corrected EMA).")
    memory_limit_gb: float | None = Field(default=None, gt=0, description="Refuse shapes above this (default: free).")
    max_hours: float = Field(default=168.0, gt=0, description="Refuse a run whose time, estimated from one timed "
                             "micro-batch before training, exceeds this.")
    progress: bool = True
    group: SafeName | None = Field(default=None, description="Size-group label written into the record.")
    run_id: SafeName | None = Field(default=None, description="Run name (default: derived from shape and D).")
    downstream: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Downstream tasks scored at the end (infscale.train.downstream.DOWNSTREAM_TASKS): "
                                          "a list of names or a mapping name -> settings.")

    @field_validator("downstream", mode="before")
    @classmethod
    def _tasks(cls, value: Any) -> dict[str, dict[str, Any]]:
        return validate_tasks(value)

    @model_validator(mode="after")
    def _one_budget(self) -> TrainConfig:
        if (self.tokens is None) == (self.tokens_per_param is None):
            raise ValueError("give exactly one of 'tokens' or 'tokens_per_param'")
        return self


class ShapeEntry(Strict):
    d_model: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int | None = None
    d_ff: int | None = None
    tag: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]+$",
                            description="Named in the run id after the heads (e.g. kv2f72: what differs from the rules).")


class NearSpec(Strict):
    """All shapes whose exact N is within ``rel_tol`` of ``n_params`` (widths x depths, heads of ``head_dim``)."""

    n_params: int = Field(gt=0)
    rel_tol: float = Field(default=0.1, gt=0, lt=1)
    d_model: list[int]
    n_layers: list[int]
    head_dim: int = Field(default=16, gt=0)
    d_ff_ratio: float | None = Field(default=None, gt=0, description="d_ff = round(ratio * d); None = SwiGLU rule.")
    max_shapes: int = Field(default=3, gt=0, description="Keep the shapes closest to n_params, at most this many.")


class SweepGroup(Strict):
    name: SafeName
    shapes: list[ShapeEntry] = []
    near: NearSpec | None = None
    tokens_per_param: list[float] = Field(min_length=1)
    n_params: int | None = Field(default=None, gt=0, description="Nominal size of the group: every shape trains on "
                                 "D = tokens_per_param x n_params, so its shapes compare at equal D (Bian et al.'s per-size "
                                 "comparison); None = each shape's own exact N.")
    seeds: list[int] | None = Field(default=None, min_length=1, description="Train every run once per seed (the "
                                    "noise floor); a seed other than 0 adds -s<seed> to the run id. None = base's seed.")

    @model_validator(mode="after")
    def _has_shapes(self) -> SweepGroup:
        if not self.shapes and self.near is None:
            raise ValueError(f"group {self.name!r}: give 'shapes' or 'near'")
        return self


class SweepConfig(Strict):
    """A grid: for each group, its shapes x its tokens-per-param multipliers, on top of ``base``."""

    base: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields shared by every run.")
    groups: list[SweepGroup] = Field(min_length=1)
    executor: str = Field(default="local", description="Executor name (see infscale.train.sweep.EXECUTORS).")
    workers: int = Field(default=1, gt=0, description="Concurrent runs (local pool size / Ray trials).")
    address: str | None = Field(default=None, description="Ray cluster address (None = local ray.init()).")


def load_yaml(path: str | Path) -> dict[str, Any]:
    return configio.load_yaml(path, what="YAML config")


def parse_train(data: dict[str, Any], source: str = "<config>") -> TrainConfig:
    return configio.validate_config(data, TrainConfig, source)


def parse_sweep(data: dict[str, Any], source: str = "<config>") -> SweepConfig:
    return configio.validate_config(data, SweepConfig, source)


def load_train_config(path: str | Path) -> TrainConfig:
    return parse_train(load_yaml(path), str(path))


def load_sweep_config(path: str | Path) -> SweepConfig:
    return parse_sweep(load_yaml(path), str(path))
