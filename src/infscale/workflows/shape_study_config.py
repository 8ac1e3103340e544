"""The shape study's config (`infscale study CONFIG`): size groups of shapes written as ``d_model x n_layers``, the
project's shape rules that give each its heads and FFN width, the trainer fields they share, the held-out group, the
latency workload, and the verification of the plan.

Validated before any work (unknown keys are errors); `study_sweep` turns it into the trainer's sweep grid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from infscale.configio import SafeName, Strict, load_yaml, resolve_recipe, validate_config
from infscale.errors import InputError

__all__ = ["StudyGroup", "StudyLatency", "StudyVerify", "StudyConfig", "parse_study", "load_study", "study_sweep", "study_shape_specs", "shape_entry",
           "shape_label", "record_label", "sweep_of"]

_SHAPE = re.compile(r"^d?(\d+)x[lL]?(\d+)(?:kv(\d+))?(?:f(\d+))?$")


class StudyRules(Strict):
    """The shape rules of the study's scale: heads of ``head_dim``, SwiGLU width ``ffn_multiple * ceil(8 d / 3 /
    ffn_multiple)``, ``d_model`` a multiple of ``d_model_multiple``. The plan's candidates follow the same rules."""

    head_dim: int = Field(default=8, gt=0)
    ffn_multiple: int = Field(default=8, gt=0)
    d_model_multiple: int = Field(default=8, gt=0)


class StudyGroup(Strict):
    """One size: its nominal N (every shape trains on ``tokens_per_param x n_params`` tokens: equal D across shapes)
    and its shapes, ``"<d_model>x<n_layers>"``, optionally with KV heads and an FFN width other than the rules':
    ``"64x2kv2f72"`` (2 KV heads: grouped-query attention; SwiGLU width 72)."""

    name: SafeName
    n_params: int = Field(gt=0)
    shapes: list[str] = Field(min_length=1)
    tokens_per_param: list[float] = Field(default=[20.0], min_length=1)
    seeds: list[int] | None = Field(default=None, min_length=1, description="Repeat every run once per seed.")

    @field_validator("shapes")
    @classmethod
    def _shapes(cls, value: list[str]) -> list[str]:
        for s in value:
            if not _SHAPE.match(s.strip()):
                raise ValueError(f"shape {s!r}: write <d_model>x<n_layers>[kv<KV heads>][f<FFN width>], e.g. 32x4 "
                                 "or 64x2kv2f72")
        return [s.strip() for s in value]


class StudyLatency(Strict):
    """The request every shape is timed on (batch 1 decode, Bian et al.'s setting scaled to these models)."""

    batch: int = Field(default=1, gt=0)
    input_len: int = Field(default=32, gt=0)
    output_len: int = Field(default=64, gt=0)
    warmup: int = Field(default=1, ge=0)
    repeats: int = Field(default=7, gt=0)
    threads: int | None = Field(default=None, gt=0, description="torch threads while timing (None: torch's default).")

    def workload(self) -> Any:
        """The `infscale.latency.model.Workload` of this request (fp32: CPU inference)."""
        from infscale.latency.model import Workload  # lazy: numpy

        return Workload(batch=self.batch, input_len=self.input_len, output_len=self.output_len, dtype="fp32")


class StudyVerify(Strict):
    """Bian et al.'s Morph-1B step in miniature: plan under the own law and the own latency, then train the recommended
    shape and a same-size baseline of the deepest shape family, neither part of any fit, and compare."""

    n_params: int = Field(gt=0, description="The size to plan for (nominal N).")
    rel_tol: float = Field(default=0.1, gt=0, lt=1, description="Candidates within this fraction of n_params.")
    tokens_per_param: float = Field(default=20.0, gt=0, description="D = tokens_per_param x n_params.")
    max_loss_increase: float = Field(default=0.01, ge=0, description="The plan takes the fastest shape whose "
                                     "predicted loss is at most this fraction above the best candidate's.")
    n_layers_max: int = Field(default=64, gt=0, description="Deepest candidate considered.")
    kv_heads: list[int] = Field(default=[], description="KV-head counts the plan searches besides multi-head "
                                "attention (needs a preferred law that prices them).")
    ffn_multipliers: list[float] = Field(default=[], description="FFN widths the plan searches, as multiples of "
                                         "d_model (empty: the rules' SwiGLU width).")

    @field_validator("kv_heads", "ffn_multipliers")
    @classmethod
    def _positive(cls, value: list) -> list:
        if any(not v > 0 for v in value):
            raise ValueError("every entry must be positive")
        return value

    def searched_terms(self) -> tuple[str, ...]:
        """The law terms the plan's search needs priced (``kv_group``, ``ffn_ratio``): the preferred law must have
        them."""
        return tuple(t for t, on in (("kv_group", self.kv_heads), ("ffn_ratio", self.ffn_multipliers)) if on)


class StudyConfig(Strict):
    rules: StudyRules = StudyRules()
    base: dict[str, Any] = Field(description="TrainConfig fields shared by every run (model, data, optim, ...).")
    groups: list[StudyGroup] = Field(min_length=2)
    held_out: SafeName = Field(description="The group no law is fitted on (validation: the largest size).")
    noise_group: SafeName | None = Field(default=None, description="The group trained with several seeds.")
    latency: StudyLatency = StudyLatency()
    verify: StudyVerify | None = None
    laws: list[str] = Field(default=["chinchilla", "inference_aware", "aspect_optimum"], min_length=1,
                            description="Law forms fitted (infscale.laws.LAWS); the shape-aware one with the lowest "
                                        "held-out MSE is planned with.")
    workers: int = Field(default=2, gt=0, description="Concurrent training runs (local pool).")
    bootstrap: int = Field(default=200, ge=0, description="Bootstrap resamples of the fits (0: none).")
    fit_with: str | None = Field(default=None, description="A runs table of another study on the same corpus, "
                                 "tokenizer and trainer settings (a bundled name such as shape_study_runs.csv, or a "
                                 "path) whose runs join every fit; the held-out group stays this study's.")

    @model_validator(mode="after")
    def _names(self) -> StudyConfig:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"groups: duplicate names {names}")
        for field in ("held_out", "noise_group"):
            value = getattr(self, field)
            if value is not None and value not in names:
                raise ValueError(f"{field}: {value!r} is not a group ({', '.join(names)})")
        if self.noise_group is not None and len(self.group(self.noise_group).seeds or []) < 2:
            raise ValueError(f"noise_group {self.noise_group!r}: give it at least two seeds")
        from infscale.laws.forms import LAWS  # lazy: numpy

        unknown = [law for law in self.laws if law not in LAWS]
        if unknown:
            raise ValueError(f"laws: unknown {unknown[0]!r}; known: {', '.join(LAWS)}")
        for key in ("tokens", "tokens_per_param", "run_id", "group", "seed"):
            if key in self.base:
                raise ValueError(f"base.{key} is set by the study, remove it")
        return self

    def group(self, name: str) -> StudyGroup:
        return next(g for g in self.groups if g.name == name)


def parse_study(data: dict[str, Any], source: str = "<config>") -> StudyConfig:
    return validate_config(data, StudyConfig, source)


def load_study(path: str | Path, *, quick: bool = False) -> StudyConfig:
    """A study YAML; with ``quick`` its ``quick`` block laid over it (the block is checked either way, so a broken
    quick block fails at once)."""

    data = load_yaml(path, what="study config")
    block = data.pop("quick", None) if isinstance(data, dict) else None
    cfg = parse_study(data, str(path))
    if block is None:
        if quick:
            raise InputError(f"{path}: --quick needs a 'quick' block in the config (the keys it replaces)")
        return cfg
    if not isinstance(block, dict):
        raise InputError(f"{path}: field quick: give a mapping of the keys the quick study replaces")
    quick_cfg = parse_study({**data, **block}, f"{path} (quick)")
    return quick_cfg if quick else cfg


def shape_entry(spec: str, rules: StudyRules) -> dict[str, Any]:
    """``"32x4"`` -> the trainer's shape fields under the study's rules (heads of ``head_dim``, SwiGLU width);
    ``"64x2kv2f72"`` also sets the KV heads and the FFN width, and names them in the run id (``tag``)."""
    from infscale.arch import ffn_width  # lazy: numpy

    m = _SHAPE.match(spec)
    assert m is not None  # checked by StudyGroup
    d, n_layers = int(m.group(1)), int(m.group(2))
    if d % rules.head_dim or d % rules.d_model_multiple:
        raise ValueError(f"shape {spec!r}: d_model {d} is not a multiple of head_dim {rules.head_dim} and "
                         f"d_model_multiple {rules.d_model_multiple}")
    n_heads = d // rules.head_dim
    entry: dict[str, Any] = {"d_model": d, "n_layers": n_layers, "n_heads": n_heads,
                             "d_ff": int(ffn_width(d, "swiglu", rules.ffn_multiple))}
    tag = ""
    if m.group(3) is not None:
        kv = int(m.group(3))
        if kv <= 0 or n_heads % kv:
            raise ValueError(f"shape {spec!r}: {kv} KV heads do not divide the {n_heads} query heads")
        if kv != n_heads:
            entry["n_kv_heads"] = kv
            tag += f"kv{kv}"
    if m.group(4) is not None:
        d_ff = int(m.group(4))
        if d_ff <= 0:
            raise ValueError(f"shape {spec!r}: FFN width must be positive")
        if d_ff != entry["d_ff"]:
            entry["d_ff"] = d_ff
            tag += f"f{d_ff}"
    if tag:
        entry["tag"] = tag
    return entry


def shape_label(d_model: int, n_layers: int, n_heads: int | None = None, n_kv_heads: int | None = None,
                d_ff: int | None = None, rules: StudyRules | None = None) -> str:
    """A study shape's name in its tables and records: ``d32xL4``; a grouped-query shape adds its KV heads and a shape
    whose FFN width is not the rules' adds it (``d64xL2kv2f72``)."""
    label = f"d{d_model}xL{n_layers}"
    if n_kv_heads is not None and n_heads is not None and int(n_kv_heads) != int(n_heads):
        label += f"kv{int(n_kv_heads)}"
    if d_ff is not None and rules is not None:
        from infscale.arch import ffn_width  # lazy: numpy

        if int(d_ff) != int(ffn_width(int(d_model), "swiglu", rules.ffn_multiple)):
            label += f"f{int(d_ff)}"
    return label


def record_label(r: dict[str, Any], rules: StudyRules) -> str:
    """`shape_label` of a training record (or a latency record's ``shape``)."""
    return shape_label(r["d_model"], r["n_layers"], r.get("n_heads"), r.get("n_kv_heads"), r.get("d_ff"), rules)


def sweep_of(cfg: StudyConfig, groups: list[dict[str, Any]], source: str) -> Any:
    """A trainer sweep of ``groups`` on the study's ``base``, run by the local pool of ``workers``."""
    from infscale.train.config import parse_sweep  # lazy: numpy

    return parse_sweep({"base": cfg.base, "groups": groups, "executor": "local", "workers": cfg.workers}, source)


def study_sweep(cfg: StudyConfig, source: str = "<study>") -> Any:
    """The trainer's sweep grid of the study (one run per group x shape x tokens-per-param x seed)."""
    groups = []
    for g in cfg.groups:
        try:
            shapes = [shape_entry(s, cfg.rules) for s in g.shapes]
        except ValueError as exc:
            raise InputError(f"{source}: group {g.name}: {exc}") from None
        groups.append({"name": g.name, "shapes": shapes, "tokens_per_param": g.tokens_per_param,
                       "n_params": g.n_params} | ({"seeds": g.seeds} if g.seeds else {}))
    return sweep_of(cfg, groups, source)


def study_shape_specs(recipe: str | Path = "shape_study") -> list[str]:
    """Every distinct shape of a study, as `infscale.arch.parse_shape_spec` specs (``d32x4h4f88``), in order."""

    cfg = load_study(resolve_recipe(recipe))
    specs = []
    for g in cfg.groups:
        for s in g.shapes:
            e = shape_entry(s, cfg.rules)
            kv = f"kv{e['n_kv_heads']}" if "n_kv_heads" in e else ""
            specs.append(f"d{e['d_model']}x{e['n_layers']}h{e['n_heads']}{kv}f{e['d_ff']}")
    return list(dict.fromkeys(specs))
