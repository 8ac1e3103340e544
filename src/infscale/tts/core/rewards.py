"""Reward models (registry by name): score every step of every candidate.

- ``verifier``: the task's exact check (per step for the arithmetic task; *outcome only* otherwise: the final answer
  vs the gold one, so it cannot steer beam search, MCTS or REBASE, which refuse it); costs no FLOPs.
- ``noisy_verifier``: the exact check through calibrated noise of a set AUC (a reward-quality dial), priced as a PRM.
- ``torch_prm``: the project's own PRM (a `LlamaModel` trained on the arithmetic task): reward at each step tag =
  ``softmax([logit('+'), logit('-')])[0]`` read at the tag position (Math-Shepherd's formulation).
- ``torch_orm``: the own PRM read only at the end of the solution (an outcome reward model).
- public checkpoints, read natively (`infscale.tts.backends.hf_rewards`, no code from the checkpoint runs):
  ``hf_prm`` / ``hf_orm`` (Math-Shepherd), ``rlhflow_prm``, ``qwen_prm`` (Qwen2.5-Math-PRM), ``skywork_prm``
  (Skywork-o1-Open-PRM's value head), ``seqcls_orm`` (any built-in ``*ForSequenceClassification``).
- served: ``served_prm`` (vLLM's pooling API) and ``judge_verifier`` (an LLM asked "is this step correct?" through
  any OpenAI-compatible endpoint), `infscale.tts.backends.served_rewards`.

``score(problem, prompt, candidates)`` takes each candidate as its list of step texts and returns one `StepScores`
per candidate (one score per step, and the number of tokens the reward model read, for the ledger). A reward model
may also have ``score_many(items)``, the same for many problems at once (the scheduler's one reward call per tick:
the model heads batch every problem's paths together); `score_batch` uses it where it exists. ``outcome_only`` says
whether a reward scores only finished solutions (an ORM, or the verifier of a task without a step checker):
`reward_label` names it so, and the strategies that steer by step scores refuse it (`StrategySpec.check`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.registry import Registry
from infscale.tts.core.generation import derive_seed
from infscale.tts.core.tasks import Problem, Task
from infscale.tts.own_models.tokenizer import CharTokenizer


@dataclass(frozen=True, slots=True, kw_only=True)
class StepScores:
    scores: tuple[float, ...]
    """One reward per step; an outcome model gives a single value."""
    n_tokens: int = 0
    """Tokens the reward model read to produce these scores (0 for a verifier)."""


class Reward(Protocol):
    name: str
    shape: TransformerShape | None
    outcome_only: bool

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]: ...


REWARDS: Registry[type] = Registry("reward")

ScoreItem = tuple[Problem, str, Sequence[Sequence[str]]]
"""One problem's reward request: the problem, its prompt, and its paths as step texts."""


class BatchedReward:
    """A reward model that scores many problems' paths in one call (``score_many``); ``score`` is that call for one
    problem, and `per_item` cuts the flat list of every path's scores back into the items'."""

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]:
        return self.score_many([(problem, prompt, candidates)])[0]

    def score_many(self, items: Sequence[ScoreItem]) -> list[list[StepScores]]:
        raise NotImplementedError


def per_item(flat: Sequence[StepScores], items: Sequence[ScoreItem]) -> list[list[StepScores]]:
    """Every path's scores, in the items' order, cut into one list per item."""
    out, at = [], 0
    for _, _, paths in items:
        out.append(list(flat[at:at + len(paths)]))
        at += len(paths)
    return out


def score_batch(reward: Reward, items: Sequence[ScoreItem]) -> list[list[StepScores]]:
    """Every item's scores: one ``score_many`` call where the reward model batches across problems, else one
    ``score`` call per problem."""
    many = getattr(reward, "score_many", None)
    if many is not None:
        return many(items)
    return [reward.score(problem, prompt, paths) for problem, prompt, paths in items]


@REWARDS.register("verifier")
class ExactVerifier:
    """The task's exact check; no model, no FLOPs."""

    name = "verifier"
    shape = None

    def __init__(self, task: Task) -> None:
        self.task = task

    @property
    def outcome_only(self) -> bool:
        return not self.task.step_checkable

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(scores=self.task.verify_steps(problem, steps)) for steps in candidates]


@REWARDS.register("noisy_verifier")
class NoisyVerifier:
    """The task's exact step check seen through calibrated noise, so that the reward's quality is a dial: every step
    gets ``sigmoid(z)`` with ``z ~ N(+mu, 1)`` for a good step and ``N(-mu, 1)`` for a bad one (good: the exact
    checker's label), ``mu = Phi^-1(auc) / sqrt(2)``, so that a good step outscores a bad one with probability
    ``auc`` (step AUC, and outcome AUC at the final step); ``auc = 1`` is the exact checker.

    The noise of a step is a pure function of (``seed``, problem, the solution up to that step), so a path scored
    twice (tree search re-scoring a parent, a resumed run) gets the same scores. ``cost_as``: the PRM checkpoint
    whose forward passes it stands in for in the FLOPs ledger (``bundled``: the bundled PRM's shape; ``none``: free,
    as the exact verifier), so a study can ask what a reward of this quality is worth once a PRM's FLOPs are paid."""

    name = "noisy_verifier"

    def __init__(self, task: Task, auc: float = 0.9, seed: int = 0, cost_as: str = "bundled") -> None:
        if not (isinstance(auc, int | float) and 0.5 < auc <= 1.0):
            raise InputError(f"reward noisy_verifier: auc must be in (0.5, 1], got {auc!r}")
        self.task, self.auc, self.seed = task, float(auc), int(seed)
        self.mu = math.inf if self.auc >= 1.0 else _normal_quantile(self.auc) / math.sqrt(2.0)
        self.shape: TransformerShape | None = None
        if cost_as != "none":
            from infscale.tts.backends.torch import DEFAULT_PRM, load_checkpoint  # lazy: torch

            self.shape = load_checkpoint(DEFAULT_PRM if cost_as == "bundled" else cost_as, expect_kind="prm")[0].shape
        self._tokenizer = CharTokenizer()

    @property
    def outcome_only(self) -> bool:
        return not self.task.step_checkable

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]:
        out = []
        for steps in candidates:
            labels = self.task.verify_steps(problem, steps)
            scores = []
            for k, good in enumerate(labels):
                if math.isinf(self.mu):
                    scores.append(float(good))
                    continue
                key = derive_seed(self.seed, problem.problem_id, prompt, *steps[:k + 1])
                z = (self.mu if good else -self.mu) + float(np.random.default_rng(key).standard_normal())
                scores.append(sigmoid(z))
            n_tokens = len(self._tokenizer.encode(prompt + "".join(steps), bos=True)) if self.shape else 0
            out.append(StepScores(scores=tuple(scores), n_tokens=n_tokens))
        return out


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large ``|z|``."""
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _normal_quantile(p: float) -> float:
    from scipy.stats import norm  # lazy: scipy

    return float(norm.ppf(p))


class _TagReader(BatchedReward):
    """Shared scoring loop: batch (prompt + steps) sequences, read P(good) at marked positions."""

    shape: TransformerShape
    batch_size: int = 16
    outcome: bool = False

    @property
    def outcome_only(self) -> bool:
        return self.outcome

    def _encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int], int]:
        """Token ids of prompt + steps, the position of each step's reward, and where the solution starts."""
        raise NotImplementedError

    def _forward(self, ids: list[list[int]], firsts: list[int]) -> list[list[float]]:
        """P(good) at every position of every sequence."""
        raise NotImplementedError

    def score_many(self, items: Sequence[ScoreItem]) -> list[list[StepScores]]:
        """Every problem's paths through the model together, ``batch_size`` sequences per forward pass."""
        encoded = [self._encode(prompt, steps) for _, prompt, paths in items for steps in paths]
        out: list[StepScores] = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start:start + self.batch_size]
            probs = self._forward([ids for ids, _, _ in chunk], [first for _, _, first in chunk])
            for (ids, pos, _), p in zip(chunk, probs, strict=True):
                if self.outcome:
                    out.append(StepScores(scores=(p[len(ids) - 1],), n_tokens=len(ids)))
                else:
                    out.append(StepScores(scores=tuple(p[i] for i in pos), n_tokens=len(ids)))
        return per_item(out, items)


@dataclass(frozen=True, slots=True, kw_only=True)
class LikelihoodHead:
    """A PRM head that reads the language model's own surprise: at position i of the solution,
    ``P(good) = sigmoid(coef * min_{first <= j <= i} log p(token_j | tokens before j) + intercept)``.

    A step is good while every step up to it is right, and a wrong step shows as a token the model found unlikely
    (a sampled digit the model did not believe), so the running minimum of the solution's token log-likelihoods is the
    feature; ``coef`` and ``intercept`` are fitted on the policy's own solutions labelled by the exact checker
    (`infscale.tts.own_models.train.fit_likelihood_head`). Stored in a PRM checkpoint as ``extra["head"]``."""

    coef: float
    intercept: float

    def to_dict(self) -> dict[str, float | str]:
        return {"kind": "likelihood", "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict[str, object], where: str) -> LikelihoodHead:
        try:
            coef, intercept = float(d["coef"]), float(d["intercept"])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: likelihood head needs numeric 'coef' and 'intercept', got {d}") from None
        if not (math.isfinite(coef) and math.isfinite(intercept)):
            raise InputError(f"{where}: likelihood head coef/intercept must be finite, got {coef}, {intercept}")
        return cls(coef=coef, intercept=intercept)

    def probabilities(self, token_logprobs: Sequence[float], first: int) -> list[float]:
        """P(good) at every position, from ``token_logprobs[i]`` = log p(token i | tokens before it); positions
        before ``first`` (the prompt) read 0.5 and do not enter the minimum."""
        out = []
        for i, m in enumerate(running_min_logprobs(token_logprobs, first)):
            if i < first:
                out.append(0.5)
                continue
            z = self.coef * m + self.intercept
            out.append(sigmoid(z))
        return out


def running_min_logprobs(token_logprobs: Sequence[float], first: int) -> list[float]:
    """The likelihood head's feature at every position: the least token log-likelihood from ``first`` (the first
    solution token) up to that position (0 before ``first``)."""
    out, running = [], 0.0
    for i, lp in enumerate(token_logprobs):
        if i >= first:
            running = min(running, lp)
        out.append(running)
    return out


def path_min_logprobs(token_logprobs: Sequence[float], first: int, positions: Sequence[int]) -> list[float]:
    """`running_min_logprobs` read at ``positions`` (the steps' reward positions)."""
    mins = running_min_logprobs(token_logprobs, first)
    return [mins[i] for i in positions]


@REWARDS.register("torch_prm")
class TorchPRM(_TagReader):
    """The project's own PRM checkpoint (default: the bundled arithmetic PRM).

    Two heads, named by the checkpoint (``extra["head"]``): Math-Shepherd's tag head,
    ``softmax([logit('+'), logit('-')])[0]`` read at each step tag, or a `LikelihoodHead` (the model's own token
    log-likelihoods of the solution, calibrated on the policy's labelled samples).

    Scores incrementally: every scored sequence's K/V and per-position values (P(good), or the log-softmax rows for
    the likelihood head) stay in a bounded `PrefixStore` (``prefix_cache_mb``, 0 turns it off; cleared when the
    weights change), so a tree-search child (a scored parent path + one step) runs only its new step through the
    model. Both depend only on the tokens up to a position (causal attention), so the cached values are the full
    recomputation's.
    """

    name = "torch_prm"

    def __init__(self, task: Task | None = None, checkpoint: str | None = None, device: str = "cpu",
                 batch_size: int = 32, prefix_cache_mb: float = 64.0) -> None:
        from infscale.tts.backends.prefix_cache import PrefixStore, store_tokens  # lazy: torch
        from infscale.tts.backends.torch import DEFAULT_PRM, load_checkpoint  # lazy: torch

        path = checkpoint or DEFAULT_PRM
        self.model, self.tokenizer, ckpt = load_checkpoint(path, device, expect_kind="prm")
        head = (ckpt.get("extra") or {}).get("head") or {"kind": "tag"}
        if not isinstance(head, dict) or head.get("kind") not in ("tag", "likelihood"):
            raise InputError(f"{path}: unknown PRM head {head!r} (expected kind 'tag' or 'likelihood')")
        self.head = LikelihoodHead.from_dict(head, str(path)) if head["kind"] == "likelihood" else None
        self.shape = self.model.shape
        self.batch_size = batch_size
        self.good_id, self.bad_id = self.tokenizer.stoi["+"], self.tokenizer.stoi["-"]
        if prefix_cache_mb < 0:
            raise InputError(f"reward torch_prm: prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        tokens = store_tokens(self.model, prefix_cache_mb)
        if self.head is not None:  # a log-softmax row per cached position beside its K/V
            per_token_kv = 2 * self.shape.n_layers * self.shape.kv_heads * self.shape.hd
            tokens = int(tokens * per_token_kv / (per_token_kv + self.shape.vocab_size))
        self.prefix_store = PrefixStore(tokens) if tokens > 0 else None

    def _encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int], int]:
        ids = self.tokenizer.encode(prompt + "".join(steps), bos=True)
        first = len(self.tokenizer.encode(prompt, bos=True))
        ctx = self.shape.context_length
        ids = ids[:ctx]
        return ids, self.tokenizer.step_positions(ids, len(steps)), min(first, len(ids))

    def _forward(self, ids: list[list[int]], firsts: list[int]) -> list[list[float]]:
        import torch  # lazy: torch

        from infscale.tts.backends.prefix_cache import prefill  # lazy: torch

        store = self.prefix_store
        distinct: dict[tuple[int, ...], int] = {}
        for x in ids:
            distinct.setdefault(tuple(x), len(distinct))
        seqs = list(distinct)
        with torch.inference_mode():
            if store is not None:
                store.sync(self.model)
            pre = prefill(self.model, seqs, store, 0, self.tokenizer.pad_id)
            logits = pre.logits.float()  # (U, S, V): the computed window; earlier positions come from the store
            if self.head is None:
                two = torch.stack((logits[..., self.good_id], logits[..., self.bad_id]), -1)
                window = torch.softmax(two, -1)[..., 0]
            else:
                window = torch.log_softmax(logits, -1)
        rows = []
        P, S = pre.width, pre.window
        for r, seq in enumerate(seqs):
            keep = len(seq) - S
            row = window[r, max(0, -keep):]
            if keep > 0:
                cached = pre.hits[r][0]
                assert cached is not None and cached.extra is not None
                row = torch.cat((cached.extra[:keep], row))
            rows.append(row)
            if store is not None:
                off = P - len(seq)
                store.insert(seq, pre.cache.k[:, r, :, off:P], pre.cache.v[:, r, :, off:P], row)
        if self.head is None:
            tag = [row.tolist() for row in rows]
            return [tag[distinct[tuple(x)]] for x in ids]
        head = self.head
        return [head.probabilities(token_logprobs(rows[distinct[tuple(x)]], x), first)
                for x, first in zip(ids, firsts, strict=True)]


def token_logprobs(logsoftmax: object, ids: Sequence[int]) -> list[float]:
    """``out[i]`` = log p(ids[i] | ids before i) from the log-softmax rows (row i predicts token i + 1); 0 at i = 0."""
    import torch  # lazy: torch

    rows = logsoftmax  # (L, V) tensor
    assert isinstance(rows, torch.Tensor)
    if len(ids) < 2:
        return [0.0] * len(ids)
    nxt = torch.tensor(ids[1:], dtype=torch.long, device=rows.device)
    return [0.0, *rows[:-1].gather(1, nxt[:, None])[:, 0].tolist()]


@REWARDS.register("torch_orm")
class TorchORM(TorchPRM):
    """Outcome reward from the own PRM: read only at the end of the solution."""

    name = "torch_orm"
    outcome = True


for _name, _attr in (("hf_prm", "HFPRM"), ("hf_orm", "HFORM"), ("rlhflow_prm", "RLHFlowPRM"), ("qwen_prm", "QwenPRM"),
                     ("skywork_prm", "SkyworkPRM"), ("seqcls_orm", "SeqClsORM")):
    REWARDS.register(_name, f"infscale.tts.backends.hf_rewards:{_attr}")
REWARDS.register("served_prm", "infscale.tts.backends.served_rewards:ServedPRM")
REWARDS.register("judge_verifier", "infscale.tts.backends.served_rewards:JudgeVerifier")


def reward_label(reward: Reward | None) -> str:
    """The reward's name as users should read it: ``verifier (outcome only)`` where it scores finished solutions
    only."""
    if reward is None:
        return "none"
    return f"{reward.name} (outcome only)" if reward.outcome_only else reward.name


def make_reward(name: str, task: Task, **params: object) -> Reward:
    try:
        return REWARDS.get(name)(task=task, **params)
    except TypeError as exc:
        raise InputError(f"reward {name!r}: bad parameters ({exc})") from None
