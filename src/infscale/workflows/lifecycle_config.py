"""The deployment file of `infscale lifecycle` (DEPLOY.yaml), validated before any work starts.

```yaml
name: math-service
law: {path: law.json}            # a saved fit (`infscale fit --save`), or {fit: {...}}, or {law: NAME, params: {...}}
accuracy: {form: exp, data: gadre, loss_column: loss, error_columns: "err_"}   # the loss -> accuracy link
testtime: {points: mini}         # test-time curves: bundled `mini` / `wu2025-math500` / `wu2025-gsm8k`, or a points.csv
hardware: {profile: a100-80gb, usd_per_hour: 2.0, train_mfu: 0.4}
candidates: {family: llama, min_params: 1e8, max_params: 1e10, tokens_per_param: [5, 2000]}
strategies: {greedy: [1], majority_vote: [4, 16, 64], best_of_n: [4, 16], weighted_vote: [4, 16], rebase: [4, 16]}
prm: {d_model: 2048, n_layers: 16, n_heads: 16}
deployment: {queries: 1e9, prompt_tokens: 128, output_tokens: 256, batch: 8, max_latency_s: 10,
             accuracy_target: 0.55}
```
Relative paths are read from the deployment file's folder. Unknown keys are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infscale.arch import TransformerShape
from infscale.configio import SafeName, Strict
from infscale.tts.core.spec import planner_strategies

__all__ = ["AccuracySpec", "CandidatesSpec", "CrossoverSpec", "DeployConfig", "DeploymentSpec", "FitSpec",
           "HardwareSpec", "LawSource", "PrmSpec", "TestTimeSpec"]


class FitSpec(Strict):
    data: str = "bian2025"
    law: str = "inference_aware"
    fitter: str = "least_squares"
    fit_on: str | None = None


class LawSource(Strict):
    path: str | None = None
    """A saved fit (JSON written by `infscale fit --save`)."""
    fit: FitSpec | None = None
    """Fit one now on a registered dataset or a runs file."""
    law: str | None = None
    params: dict[str, float] | None = None
    """A law given by its parameters (e.g. Hoffmann et al.'s published approach-3 fit)."""

    @model_validator(mode="after")
    def _one(self) -> LawSource:
        given = [k for k, v in (("path", self.path), ("fit", self.fit), ("law", self.law)) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of path, fit, or law + params")
        if (self.law is None) != (self.params is None):
            raise ValueError("law and params go together")
        return self


class AccuracySpec(Strict):
    form: Literal["exp", "logistic"] = "exp"
    """Gadre et al.'s ``Err(L) = eps - k exp(-gamma L)`` or the logistic alternative."""
    data: str | None = "gadre"
    """A registered dataset or a runs file carrying a downstream metric (omit with ``params``)."""
    loss_column: str = "loss"
    """The loss column (the canonical `loss` of a registered dataset: C4 validation loss for `gadre`)."""
    error_columns: str = "err_"
    """Columns whose mean is the error (every column starting with this prefix, or one exact column name)."""
    accuracy_column: str | None = None
    """Use one accuracy column instead (error = 1 - accuracy)."""
    params: dict[str, float] | None = None
    loss_range: tuple[float, float] | None = None
    heldout_fraction: float = Field(0.25, gt=0.0, lt=1.0)


class TestTimeSpec(Strict):
    __test__ = False
    points: str | None = None
    """Bundled ``mini`` (the project's own mini study; the default), ``wu2025-math500`` / ``wu2025-gsm8k`` (Wu et al.'s
    tables), or a ``points.csv`` written by `tts analyze` / `tts mini`."""
    pilots: str | None = None
    """Instead of points: sampling records of several models (a `tts mini` directory, `tts run` records), each
    model's curves forecast from a pilot of ``pilot`` samples per problem (`infscale tts forecast`)."""
    pilot: int = Field(8, ge=1)
    ridge: float = Field(1e-3, ge=0.0)

    @model_validator(mode="after")
    def _one_source(self) -> TestTimeSpec:
        if self.points is not None and self.pilots is not None:
            raise ValueError("testtime: give points or pilots, not both")
        return self


class HardwareSpec(Strict):
    profile: str = "a100-80gb"
    usd_per_hour: float | None = Field(None, gt=0.0)
    """Price of a device hour; omit to count FLOPs."""
    train_mfu: float = Field(0.4, gt=0.0, le=1.0)
    dtype: str = "bf16"
    memory_bytes: float | None = Field(None, gt=0.0)
    """Device memory; default: the profile's."""


class CandidatesSpec(Strict):
    family: str | None = "llama"
    """A shape family (`infscale.plan.FAMILIES`), or null for shape-free sizes (FLOPs only, as Sardana)."""
    min_params: float = Field(1e8, gt=0.0)
    max_params: float = Field(1e10, gt=0.0)
    size_points: int = Field(4001, ge=3, le=200001)
    """Shape-free: log-spaced sizes."""
    tokens: float | None = Field(None, gt=0.0)
    """Train every candidate on exactly this many tokens (Bian et al.: 29e9)."""
    tokens_per_param: tuple[float, float] = (1.0, 10000.0)
    """Otherwise the bounds of D / N."""
    vocab_size: int | None = Field(None, gt=0)
    kv_heads: list[int] | None = None
    """KV-head counts searched (overrides the family's; [] = multi-head attention only). A law without a KV-head term
    (no `kv_group`) cannot price them: asking for several is refused, a family that searches them is warned about."""
    ffn_multipliers: list[float] | None = None
    """FFN widths searched as multiples of d_model (overrides the family's rule); needs a law with an FFN term."""
    measured: str | None = None
    """Models with measured points instead of shapes: ``wu2025-math500``, ``mini`` or a points.csv. Their training
    is a sunk cost unless ``train_tokens`` is given."""
    train_tokens: float | dict[str, float] | None = None
    """Measured models: the tokens each was (or will be) trained on, so that its ``6 N D`` is paid (one number for
    all, or model -> tokens)."""
    prm_train_flops: float = Field(0.0, ge=0.0)
    """Measured models: the reward model's training FLOPs, paid by every configuration that scores with it (0: the
    reward model already exists)."""

    @model_validator(mode="after")
    def _ranges(self) -> CandidatesSpec:
        if self.min_params > self.max_params:
            raise ValueError("min_params is above max_params")
        if not 0 < self.tokens_per_param[0] <= self.tokens_per_param[1]:
            raise ValueError("tokens_per_param must be [low, high] with 0 < low <= high")
        return self


class PrmSpec(Strict):
    d_model: int = Field(..., gt=0)
    n_layers: int = Field(..., gt=0)
    n_heads: int = Field(..., gt=0)
    n_kv_heads: int | None = Field(None, gt=0)
    vocab_size: int = Field(32000, gt=0)

    def shape(self) -> TransformerShape:
        """The reward model's shape (SwiGLU, untied embeddings)."""
        return TransformerShape(d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads,
                                n_kv_heads=self.n_kv_heads, vocab_size=self.vocab_size)


class DeploymentSpec(Strict):
    queries: float = Field(..., ge=0.0)
    prompt_tokens: int = Field(128, ge=0)
    output_tokens: int = Field(256, gt=0)
    batch: int = Field(1, gt=0)
    max_latency_s: float | None = Field(None, gt=0.0)
    accuracy_target: float | None = Field(None, gt=0.0, lt=1.0)
    loss_target: float | None = Field(None, gt=0.0)
    cost_ceiling: float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _target(self) -> DeploymentSpec:
        if self.accuracy_target is not None and self.loss_target is not None:
            raise ValueError("give accuracy_target or loss_target, not both")
        return self


class CrossoverSpec(Strict):
    queries: tuple[float, float] = (1e3, 1e13)
    points: int = Field(31, ge=2, le=401)


class DeployConfig(Strict):
    name: SafeName = "deployment"
    law: LawSource
    accuracy: AccuracySpec | None = None
    testtime: TestTimeSpec | None = None
    hardware: HardwareSpec = Field(default_factory=HardwareSpec)
    candidates: CandidatesSpec = Field(default_factory=CandidatesSpec)
    strategies: dict[str, list[int]] = Field(default_factory=lambda: {"greedy": [1]})
    """Strategy -> budgets n: the registered strategies (`infscale.tts.core.spec.planner_strategies`: greedy,
    majority_vote, best_of_n, weighted_vote, beam, mcts, rebase, particle_filter, and plugins')."""
    prm: PrmSpec | None = None
    deployment: DeploymentSpec
    crossover: CrossoverSpec = Field(default_factory=CrossoverSpec)

    @model_validator(mode="after")
    def _consistent(self) -> DeployConfig:
        known = planner_strategies()
        for s in self.strategies:
            if s not in known:
                raise ValueError(f"strategies: unknown strategy {s!r}; known: {', '.join(sorted(known))}")
        searched = [s for s in self.strategies if s != "greedy"]
        if searched and self.testtime is None and self.candidates.measured is None:
            raise ValueError(f"strategies {', '.join(searched)} need test-time curves (testtime)")
        if self.deployment.accuracy_target is not None and self.accuracy is None and self.candidates.measured is None:
            raise ValueError("deployment.accuracy_target needs an accuracy link (accuracy)")
        if self.deployment.loss_target is not None and searched:
            raise ValueError("a loss target plans greedy decoding only (test-time strategies act on accuracy)")
        scored = [s for s in self.strategies if known[s].needs_reward]
        if scored and self.prm is None and self.candidates.measured is None:
            raise ValueError(f"{', '.join(scored)} score with a reward model: give prm")
        shaped = self.candidates.family is not None and self.candidates.measured is None
        if not shaped and self.hardware.usd_per_hour is not None:
            raise ValueError("shape-free or measured candidates are priced in FLOPs only: drop usd_per_hour")
        if not shaped and self.deployment.max_latency_s is not None:
            raise ValueError("a latency limit needs shapes (candidates.family, without candidates.measured)")
        return self
