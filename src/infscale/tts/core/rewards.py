"""Reward models (registry by name): score every step of every candidate.

- ``verifier``: the task's exact check (per step for the arithmetic task, outcome vs gold otherwise); costs no FLOPs.
- ``torch_prm``: the project's own PRM (a `LlamaModel` trained on the arithmetic task): reward at each step tag =
  ``softmax([logit('+'), logit('-')])[0]`` read at the tag position (Math-Shepherd's formulation).
- ``hf_prm``: a Math-Shepherd-style PRM from a local HF path (step tag and good/bad tokens configurable); a
  tokenizer that cannot write the step tag as a single token is refused with a clear error.
- ``torch_orm`` / ``hf_orm``: outcome reward models: the same heads read only at the end of the solution.

``score(problem, prompt, candidates)`` takes each candidate as its list of step texts and returns one `StepScores`
per candidate (one score per step, and the number of tokens the reward model read, for the ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.registry import Registry
from infscale.tts.core.tasks import STEP_TAG, Problem, Task


@dataclass(frozen=True, slots=True, kw_only=True)
class StepScores:
    scores: tuple[float, ...]
    """One reward per step; an outcome model gives a single value."""
    n_tokens: int = 0
    """Tokens the reward model read to produce these scores (0 for a verifier)."""


class Reward(Protocol):
    name: str
    shape: TransformerShape | None

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]: ...


REWARDS: Registry[type] = Registry("reward")


@REWARDS.register("verifier")
class ExactVerifier:
    """The task's exact check; no model, no FLOPs."""

    name = "verifier"
    shape = None

    def __init__(self, task: Task) -> None:
        self.task = task

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(scores=self.task.verify_steps(problem, steps)) for steps in candidates]


class _TagReader:
    """Shared scoring loop: batch (prompt + steps) sequences, read P(good) at marked positions."""

    shape: TransformerShape
    batch_size: int = 16
    outcome: bool = False

    def _encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def _forward(self, ids: list[list[int]]) -> list[list[float]]:
        raise NotImplementedError

    def score(self, problem: Problem, prompt: str, candidates: Sequence[Sequence[str]]) -> list[StepScores]:
        encoded = [self._encode(prompt, steps) for steps in candidates]
        out: list[StepScores] = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start:start + self.batch_size]
            probs = self._forward([ids for ids, _ in chunk])
            for (ids, pos), p in zip(chunk, probs, strict=True):
                if self.outcome:
                    out.append(StepScores(scores=(p[len(ids) - 1],), n_tokens=len(ids)))
                else:
                    out.append(StepScores(scores=tuple(p[i] for i in pos), n_tokens=len(ids)))
        return out


@REWARDS.register("torch_prm")
class TorchPRM(_TagReader):
    """The project's own PRM checkpoint (default: the bundled arithmetic PRM).

    Scores incrementally: every scored sequence's K/V and per-token P(good) stay in a bounded `PrefixStore`
    (``prefix_cache_mb``, 0 turns it off; cleared when the weights change), so a tree-search child (a scored parent
    path + one step) runs only its new step through the model. P(good) at a position depends only on the tokens up to
    it (causal attention), so the cached values are the full recomputation's.
    """

    name = "torch_prm"

    def __init__(self, task: Task | None = None, checkpoint: str | None = None, device: str = "cpu",
                 batch_size: int = 32, prefix_cache_mb: float = 64.0) -> None:
        from infscale.tts.backends.prefix_cache import PrefixStore, store_tokens
        from infscale.tts.backends.torch import DEFAULT_PRM, load_checkpoint

        self.model, self.tokenizer, _ = load_checkpoint(checkpoint or DEFAULT_PRM, device, expect_kind="prm")
        self.shape = self.model.shape
        self.batch_size = batch_size
        self.good_id, self.bad_id = self.tokenizer.stoi["+"], self.tokenizer.stoi["-"]
        if prefix_cache_mb < 0:
            raise InputError(f"reward torch_prm: prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        tokens = store_tokens(self.model, prefix_cache_mb)
        self.prefix_store = PrefixStore(tokens) if tokens > 0 else None

    def _encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        ids = self.tokenizer.encode(prompt + "".join(steps), bos=True)
        ctx = self.shape.context_length
        ids = ids[:ctx]
        return ids, self.tokenizer.step_positions(ids, len(steps))

    def _forward(self, ids: list[list[int]]) -> list[list[float]]:
        import torch

        from infscale.tts.backends.prefix_cache import prefill

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
            two = torch.stack((logits[..., self.good_id], logits[..., self.bad_id]), -1)
            window = torch.softmax(two, -1)[..., 0].tolist()
        probs = []
        P, S = pre.width, pre.window
        for r, seq in enumerate(seqs):
            keep = len(seq) - S
            head: list[float] = []
            if keep > 0:
                cached = pre.hits[r][0]
                assert cached is not None and cached.extra is not None
                head = cached.extra[:keep]
            row = head + window[r][max(0, -keep):]
            probs.append(row)
            if store is not None:
                off = P - len(seq)
                store.insert(seq, pre.cache.k[:, r, :, off:P], pre.cache.v[:, r, :, off:P], row)
        return [probs[distinct[tuple(x)]] for x in ids]


@REWARDS.register("torch_orm")
class TorchORM(TorchPRM):
    """Outcome reward from the own PRM: read only at the end of the solution."""

    name = "torch_orm"
    outcome = True


@REWARDS.register("hf_prm")
class HFPRM(_TagReader):
    """A Math-Shepherd-style PRM from a local HF directory: P(good) at every step tag.

    ``good_token``/``bad_token`` are the label tokens (Math-Shepherd: ``+``/``-``); ``step_tag`` must be a single token
    of the tokenizer's vocabulary, else `InputError`.
    """

    name = "hf_prm"

    def __init__(self, task: Task | None = None, path: str = "", step_tag: str = STEP_TAG, good_token: str = "+",
                 bad_token: str = "-", device: str = "cpu", gguf_file: str | None = None,
                 batch_size: int = 8) -> None:
        from infscale.tts.backends.hf import load_hf

        self.model, self.tokenizer = load_hf(path, gguf_file=gguf_file, device=device)
        self.step_tag, self.batch_size = step_tag, batch_size
        self.tag_id = self._single_token(path, step_tag, "step tag")
        self.good_id = self._single_token(path, good_token, "good token")
        self.bad_id = self._single_token(path, bad_token, "bad token")
        from infscale.tts.backends.hf import shape_from_hf_config

        self.shape = shape_from_hf_config(self.model.config)

    def _single_token(self, path: str, text: str, what: str) -> int:
        ids = self.tokenizer.encode(f" {text}", add_special_tokens=False)
        ids_plain = self.tokenizer.encode(text, add_special_tokens=False)
        for cand in (ids_plain, ids[-1:] if ids else []):
            if len(cand) == 1 and self.tokenizer.decode(cand).strip() == text:
                return cand[0]
        raise InputError(f"{path}: reward model {what} {text!r} is not a single token of its vocabulary "
                         f"(it encodes as {len(ids_plain)} tokens)")

    def _encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        ids = self.tokenizer.encode(prompt + "".join(steps), add_special_tokens=True)
        pos = [i for i, t in enumerate(ids) if t == self.tag_id]
        if len(pos) < len(steps):
            pos.append(len(ids) - 1)
        return ids, pos[: len(steps)]

    def _forward(self, ids: list[list[int]]) -> list[list[float]]:
        import torch

        T = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = torch.full((len(ids), T), pad, dtype=torch.long)
        attn = torch.zeros((len(ids), T), dtype=torch.long)
        for r, x in enumerate(ids):
            batch[r, : len(x)] = torch.tensor(x)
            attn[r, : len(x)] = 1
        with torch.inference_mode():
            dev = next(self.model.parameters()).device
            logits = self.model(input_ids=batch.to(dev), attention_mask=attn.to(dev)).logits.float()
            two = torch.stack((logits[..., self.good_id], logits[..., self.bad_id]), -1)
            return torch.softmax(two, -1)[..., 0].tolist()


@REWARDS.register("hf_orm")
class HFORM(HFPRM):
    name = "hf_orm"
    outcome = True


def make_reward(name: str, task: Task, **params: object) -> Reward:
    try:
        return REWARDS.get(name)(task=task, **params)
    except TypeError as exc:
        raise InputError(f"reward {name!r}: bad parameters ({exc})") from None
