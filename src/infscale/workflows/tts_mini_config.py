"""The recipe of Wu et al. 2025 (REBASE) in miniature (`infscale tts mini`): the policy sizes and their training budget, the PRM, the
arithmetic problems, the strategies and their budgets, the search settings and the comparison, validated into
`MiniStudyConfig` (unknown keys are errors). The study itself is `infscale.workflows.tts_mini`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from infscale.configio import SafeName, Strict, load_yaml, resolve_recipe
from infscale.tts.core.config import SearchSettings, StrategyConfig
from infscale.tts.core.tasks import ArithmeticTask
from infscale.tts.own_models.tokenizer import CharTokenizer

__all__ = ["RECIPES_DIR", "DEFAULT_RECIPE", "ModelSpec", "LikelihoodPRMSpec", "TrainSettings", "TaskSpec", "AnalysisSpec",
           "MiniStudyConfig", "load_mini_config"]

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
DEFAULT_RECIPE = RECIPES_DIR / "wu2025_mini.yaml"
QUICK_PROBLEMS = 20
"""Evaluation problems of `MiniStudyConfig.quick`."""


# ----- the recipe ---------------------------------------------------------------------------------------------------
class ModelSpec(Strict):
    """One model to train: its shape and its training budget in optimizer steps (never seconds, so a busy machine
    trains the same model, only slower)."""

    name: SafeName
    d_model: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    max_steps: int = Field(gt=0)
    lr: float | None = Field(None, gt=0)
    """Peak learning rate for this model (default: ``train.lr``)."""
    init_from: str | None = None
    """PRM only: the name of a policy of the recipe (same shape) to fine-tune from instead of a random start."""


class LikelihoodPRMSpec(Strict):
    """A likelihood PRM (`infscale.tts.core.rewards.LikelihoodHead`): a policy of the recipe read as a verifier, its
    head fitted on every policy's own samples labelled by the exact checker."""

    name: SafeName
    likelihood_of: str
    """The policy (of the recipe) whose token likelihoods score the steps: usually the largest."""
    n_problems: int = Field(300, ge=1)
    """Problems per policy (difficulties ``train.min..max_difficulty``) whose samples fit the head."""
    samples: int = Field(4, ge=1)
    """Solutions sampled per problem."""


class TrainSettings(Strict):
    """Settings every model shares (`infscale.tts.own_models.train.SmallTrainConfig` fields)."""

    context_length: int = Field(512, gt=0)
    min_difficulty: int = Field(2, ge=1)
    max_difficulty: int = Field(5, ge=1)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(30, ge=1)
    error_rate: float = Field(0.25, ge=0, le=1)
    """PRM data: probability that a step's result is corrupted."""
    seed: int = 0


class TaskSpec(Strict):
    """The evaluation problems: synthetic arithmetic (`infscale.tts.core.tasks.ArithmeticTask`)."""

    difficulty: int = Field(5, ge=1)
    n_problems: int = Field(40, ge=1)
    seed: int = 1000
    max_value: int = Field(99, ge=1)


class AnalysisSpec(Strict):
    small_strategy: str = "rebase+weighted_vote"
    """The smaller models' side of the comparison (``strategy+aggregation``)."""
    large_strategy: str = "sampling+majority_vote"
    """The larger models' side."""
    n_bootstrap: int = Field(1000, ge=1)
    plot_strategies: list[str] = Field(default_factory=lambda: [
        "greedy+greedy", "sampling+majority_vote", "sampling+best_of_n", "sampling+weighted_vote", "beam+weighted_vote",
        "mcts+weighted_vote", "rebase+weighted_vote"])
    """The ``strategy+aggregation`` lines drawn in the figures (the frontier is computed over every point)."""
    reward_aucs: list[float] = Field(default_factory=lambda: [0.6, 0.7, 0.8, 0.9, 0.95, 1.0])
    """The PRM-quality crossover: the smaller models' ``small_strategy`` is rerun with a `noisy_verifier` of each of
    these outcome AUCs (priced as the study's PRM) and judged against the larger models again (empty: skipped)."""
    memory_profile: str = "a100-80gb"
    """The hardware profile whose FLOPs per byte price the memory-aware accounting."""

    @model_validator(mode="after")
    def _check_aucs(self) -> AnalysisSpec:
        bad = [a for a in self.reward_aucs if not 0.5 < a <= 1.0]
        if bad:
            raise ValueError(f"analysis.reward_aucs: every AUC must be in (0.5, 1], got {bad}")
        return self


class MiniStudyConfig(Strict):
    name: SafeName
    threads: int = Field(2, ge=1)
    """torch threads for training and generation."""
    train: TrainSettings = Field(default_factory=TrainSettings)
    policies: list[ModelSpec]
    """At least two sizes; the comparison pairs every smaller one with every larger one."""
    prm: ModelSpec | LikelihoodPRMSpec | Literal["bundled"] = "bundled"
    """A tag-head PRM to train, a likelihood PRM over one of the policies, or ``bundled`` (the package's PRM)."""
    task: TaskSpec = Field(default_factory=TaskSpec)
    strategies: list[StrategyConfig]
    search: SearchSettings = Field(default_factory=SearchSettings)
    generation_seed: int = 0
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)

    @model_validator(mode="after")
    def _check(self) -> MiniStudyConfig:
        from infscale.tts.core.spec import get_strategy  # lazy: numpy

        names = [p.name for p in self.policies]
        if len(names) < 2:
            raise ValueError("policies: the study needs at least two model sizes")
        if len(set(names)) != len(names):
            raise ValueError(f"policies: names must be distinct, got {names}")
        if any(p.init_from for p in self.policies):
            raise ValueError("policies: init_from is for the PRM (policies train from scratch)")
        if isinstance(self.prm, ModelSpec) and self.prm.init_from is not None:
            base = next((p for p in self.policies if p.name == self.prm.init_from), None)
            if base is None:
                raise ValueError(f"prm.init_from: {self.prm.init_from!r} is not a policy of the recipe ({names})")
            if (base.d_model, base.n_layers, base.n_heads) != (self.prm.d_model, self.prm.n_layers, self.prm.n_heads):
                raise ValueError(f"prm.init_from: policy {base.name!r} has another shape than the PRM")
        if isinstance(self.prm, LikelihoodPRMSpec) and self.prm.likelihood_of not in names:
            raise ValueError(f"prm.likelihood_of: {self.prm.likelihood_of!r} is not a policy of the recipe ({names})")
        if self.train.min_difficulty > self.train.max_difficulty:
            raise ValueError("train: min_difficulty is above max_difficulty")
        for s in self.strategies:
            get_strategy(s.name)
            if any(b < 1 for b in s.budgets):
                raise ValueError(f"strategies: {s.name!r} budgets must be >= 1, got {s.budgets}")
        run = {s.name for s in self.strategies}
        for key in ("small_strategy", "large_strategy"):
            strategy, plus, agg = getattr(self.analysis, key).partition("+")
            if not plus or strategy not in run or agg not in ("majority_vote", "weighted_vote", "best_of_n", "greedy"):
                raise ValueError(f"analysis.{key}: {getattr(self.analysis, key)!r} must be 'strategy+aggregation' "
                                 f"with a strategy of the recipe ({', '.join(sorted(run))}) and an aggregation "
                                 "(majority_vote, weighted_vote, best_of_n, greedy)")
        need = self.max_prompt_tokens() + self.max_path_tokens()
        if need > self.train.context_length:
            raise ValueError(
                f"train.context_length {self.train.context_length} is too short: the longest prompt "
                f"({self.max_prompt_tokens()} tokens) plus the longest path a strategy can write "
                f"({self.max_path_tokens()} tokens: max(search.max_tokens, search.depth_cap x search.max_step_tokens))"
                f" needs {need}")
        return self

    def max_prompt_tokens(self) -> int:
        """Tokens of the longest evaluation prompt, BOS included (the policies' character tokenizer)."""

        task, tok = self.make_task(), CharTokenizer()
        return max(len(tok.encode(task.prompt(p), bos=True)) for p in task.load())

    def max_path_tokens(self) -> int:
        s = self.search
        return max(s.max_tokens, s.depth_cap * s.max_step_tokens)

    def make_task(self):  # -> ArithmeticTask
        t = self.task
        return ArithmeticTask(n_problems=t.n_problems, difficulty=t.difficulty, seed=t.seed, max_value=t.max_value)

    def quick(self) -> MiniStudyConfig:
        """The study in minutes, showing the same kind of result: the same policies trained for the same number of
        steps (budgets are steps, never seconds, so a busy machine trains the same models, only slower), but on
        problems no harder than the evaluation's (``train.max_difficulty`` lowered to ``task.difficulty``: shorter
        sequences, so each step is cheaper), 20 problems, the two smallest budgets of each strategy, 64 problems for
        the likelihood PRM's head, the two highest reward AUCs of the crossover, 200 bootstrap replicates."""
        data = self.model_dump()
        data["train"]["max_difficulty"] = max(self.train.min_difficulty,
                                              min(self.train.max_difficulty, self.task.difficulty))
        data["task"]["n_problems"] = min(QUICK_PROBLEMS, self.task.n_problems)
        data["strategies"] = [{**s.model_dump(), "budgets": sorted(s.budgets)[:2]} for s in self.strategies]
        data["analysis"]["n_bootstrap"] = min(200, self.analysis.n_bootstrap)
        data["analysis"]["reward_aucs"] = sorted(self.analysis.reward_aucs)[-2:]
        if isinstance(self.prm, LikelihoodPRMSpec):
            data["prm"]["n_problems"] = min(64, self.prm.n_problems)
        data["name"] = f"{self.name}-quick"
        return MiniStudyConfig.model_validate(data)


def load_mini_config(recipe: str | Path | None = None) -> MiniStudyConfig:
    """Read and validate a study recipe (a YAML path or a bundled recipe name; ``None``: the bundled Wu et al.
    recipe); every problem is one `InputError` line naming the file and field."""
    path = DEFAULT_RECIPE if recipe is None else resolve_recipe(recipe)
    return load_yaml(path, MiniStudyConfig, what="recipe")
