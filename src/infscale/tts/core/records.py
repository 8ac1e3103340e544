"""Records written by `infscale tts run` and read by `infscale tts analyze` (the contract between the two).

One JSON line per (model, strategy, budget, problem): a `ProblemRecord` holding every candidate the strategy produced
(finished or not), the chosen answers under each aggregation, and the FLOPs ledger. Pure: no torch, no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# How names read where nothing else says: records written before they described their strategy (the `iid`,
# `reward_steers` and `strategy_label` fields) and points that carry no label (a paper table's). The strategy specs
# (`infscale.tts.core.spec`) say it for everything run now.
SAMPLING_NAMES = frozenset({"sampling", "majority_vote", "best_of_n", "weighted_vote"})
"""The built-in names of independent sampling (its pool read by the aggregation each is named after)."""
METHOD_LABELS = {"greedy": "greedy", "beam": "beam search", "mcts": "MCTS", "rebase": "REBASE",
                 "particle_filter": "particle filtering"}
"""The built-in searches' names as users know them."""
_LEGACY_STEERED = frozenset({"beam", "mcts", "rebase"})

SCORED_AGGREGATIONS: frozenset[str] = frozenset({"best_of_n", "weighted_vote"})
"""Answer aggregations that choose by the reward: their answers pay for the reward model's FLOPs (a majority vote's
or greedy answer does not, unless the reward steered the search that produced the candidates)."""

TIE_RULE = "first-seen"
"""Vote ties go to the answer seen first. The strategies apply it to the candidates in generation order; the analysis
scores its expectation over a random order of each subset (``1 / (1 + ties)``): for i.i.d. candidates the two agree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One complete or unfinished solution."""

    text: str
    """The generated solution (without the prompt)."""
    answer: str | None
    """Parsed final answer; ``None`` when none could be parsed."""
    finished: bool
    """True when the solution reached an answer / stop condition within the limits."""
    step_scores: tuple[float, ...] = ()
    """Reward per step (PRM) or a single outcome score; empty when no reward model was used."""
    score: float | None = None
    """Aggregated score (last/min/mean/prod of ``step_scores``) used by best-of-n and weighted voting."""
    prompt_tokens: int = 0
    """Prompt tokens this candidate was conditioned on (tree search: the question)."""
    completion_tokens: int = 0
    """Tokens generated for this candidate (tree search: along its own path)."""
    correct: bool | None = None
    """Whether ``answer`` matches the gold answer (``None`` when not checkable)."""
    finish_reason: str | None = None
    """Why the text ended: ``stop`` / ``eos`` (the model finished), ``length`` (the token limit or the model's context
    was reached), ``depth`` (tree search's depth cap); ``None``: a tree-search path still open when the search stopped
    (or a record written before this field existed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FlopsLedger:
    """Inference FLOPs spent on one problem, by component (forward FLOPs, 2 per multiply-add)."""

    policy_prefill_flops: float = 0.0
    """Prompt/prefix processing with prefix caching (each shared prefix processed once)."""
    policy_prefill_nocache_flops: float = 0.0
    """Prompt/prefix processing if every candidate re-processed its whole prefix."""
    policy_decode_flops: float = 0.0
    """Generated tokens, attention over the growing KV context included."""
    reward_flops: float = 0.0
    """Reward-model forward passes (PRM/ORM); zero for exact verifiers."""
    wu2025_flops: float = 0.0
    """Wu et al.'s accounting: ``2 * N_policy * generated_tokens`` (reward model not counted)."""
    generated_tokens: int = 0
    prompt_tokens: int = 0
    reward_tokens: int = 0
    policy_kv_read_bytes: float = 0.0
    """KV-cache bytes the policy's decode reads (each new token reads the K/V of its whole sequence so far, 2 bytes
    per element); 0 in records written before it was kept."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ValueError(f"field 'ledger.{name}': {value!r} is not a non-negative finite number")

    @property
    def total_flops(self) -> float:
        """Our accounting with prefix caching: policy prefill + decode + reward model."""
        return self.policy_prefill_flops + self.policy_decode_flops + self.reward_flops

    @property
    def total_nocache_flops(self) -> float:
        return self.policy_prefill_nocache_flops + self.policy_decode_flops + self.reward_flops


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemRecord:
    """Everything one strategy produced on one problem."""

    run: str
    """Run name (from the config)."""
    model: str
    """Policy model name."""
    n_params: int
    """Policy parameter count."""
    strategy: str
    """Strategy registry name (``greedy``, ``sampling``, ``beam``, ``mcts``, ``rebase``, ``particle_filter`` ...)."""
    budget: int
    """The strategy's width / number of samples ``n``."""
    problem_id: str
    gold: str | None
    candidates: tuple[Candidate, ...]
    """Every candidate, unfinished ones included (they never win a vote)."""
    answers: dict[str, str | None] = field(default_factory=dict)
    """Chosen answer per aggregation, named as the strategies: ``majority_vote``, ``best_of_n``, ``weighted_vote`` (and
    ``greedy``)."""
    correct: dict[str, bool] = field(default_factory=dict)
    """Correctness of each chosen answer."""
    ledger: FlopsLedger = field(default_factory=FlopsLedger)
    wall_s: float = 0.0
    generation_s: float = 0.0
    """Time inside the generator."""
    scoring_s: float = 0.0
    """Time inside the reward model."""
    reward: str | None = None
    """Reward registry name, if any."""
    error: str | None = None
    """Set when the problem failed (e.g. the server died); the run continues."""
    iid: bool | None = None
    """The candidates are i.i.d. full solutions (a sampling strategy): the analysis subsamples the largest pool to any
    n. Written from the strategy's spec, so records of a plugin strategy are read right without the plugin; ``None``
    (a record written before the field existed) reads as the built-in strategies of that time did."""
    reward_steers: bool | None = None
    """The reward chose which candidates were produced (tree search, particle filtering): every aggregation of the
    record pays for the reward's FLOPs, not only best-of-n and weighted vote (``None``: as ``iid``)."""
    strategy_label: str = ""
    """The strategy's name as users know it (``REBASE``, ``beam search``, ``sampling``)."""
    groups: dict[str, str] = field(default_factory=dict)
    """The problem's labels accuracy is broken down by (MATH's ``level``, ``subject``)."""

    def __post_init__(self) -> None:
        if self.iid is None:
            object.__setattr__(self, "iid", self.strategy in SAMPLING_NAMES)
        if self.reward_steers is None:
            object.__setattr__(self, "reward_steers", self.strategy in _LEGACY_STEERED)
        if not self.strategy_label:
            label = "sampling" if self.iid else METHOD_LABELS.get(self.strategy, self.strategy)
            object.__setattr__(self, "strategy_label", label)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProblemRecord:
        d = dict(data)
        d["candidates"] = tuple(
            Candidate(**{**c, "step_scores": tuple(c.get("step_scores", ()))}) for c in d.get("candidates", ())
        )
        ledger = dict(d.get("ledger", {}))
        if "seed_b_flops" in ledger:  # written before 0.1's rename (infscale.renames); read until 0.2
            ledger["wu2025_flops"] = ledger.pop("seed_b_flops")
        d["ledger"] = FlopsLedger(**ledger)
        return cls(**d)
