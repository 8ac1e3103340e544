"""The generator protocol, its value objects, the generator registry and a deterministic scripted generator.

A generator samples continuations of text prompts in batches: ``generate(prompts, n, params, seeds)`` returns, for
each prompt, ``n[i]`` `Completion`s carrying the text (stop string included), token counts, finish reason and optional
log-probability. Every backend (the project's torch model, HF transformers, vLLM offline, an OpenAI-compatible
server) implements this one method plus ``count_tokens``; its ``shape`` (a `TransformerShape`) prices the tokens.

Randomness is keyed per sample, never per call: ``seeds[i]`` keys prompt ``i``, and its ``j``-th sample draws from a
stream of its own (``sample_seed(seeds[i], j)``; vLLM: ``seeds[i] + j``), so a sample is the same whatever else shares
the batch (the scheduler packs many problems' requests into one call). Without ``seeds`` a backend draws from its
own generator.

`ScriptedArithmeticGenerator` is a deterministic generator for unit tests: it *solves* the synthetic arithmetic task
and makes a mistake in a step with probability ``error_rate`` (seeded by the prompt and a call counter), so strategies
run on real, reproducible text without a neural network.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from infscale.arch import TransformerShape
from infscale.registry import Registry
from infscale.tts.core.tasks import ARITH_OPS, STEP_RE

FinishReason = Literal["stop", "eos", "length"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingParams:
    """How to sample (OpenAI / vLLM field names)."""

    temperature: float = 1.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_tokens: int = 256
    """Most tokens generated per completion."""
    stop: tuple[str, ...] = ()
    """Generation of a completion ends after the first of these strings (the string is kept in the text)."""
    logprobs: bool = False
    """Return the summed log-probability of the sampled tokens."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """One sampled continuation."""

    text: str
    """Generated text, stop string included, end-of-sequence token excluded."""
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    """``stop`` (a stop string), ``eos`` (the model ended) or ``length`` (``max_tokens`` reached)."""
    logprob: float | None = None
    """Sum of the sampled tokens' log-probabilities (when requested)."""


@runtime_checkable
class Generator(Protocol):
    name: str
    shape: TransformerShape
    """Policy shape used by the FLOPs ledger."""

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]: ...

    def count_tokens(self, text: str) -> int: ...


GENERATORS: Registry[type] = Registry("generator")
GENERATORS.register("scripted", "infscale.tts.core.generation:ScriptedArithmeticGenerator")
GENERATORS.register("torch", "infscale.tts.backends.torch:TorchGenerator")
GENERATORS.register("hf", "infscale.tts.backends.hf:HFGenerator")
GENERATORS.register("openai", "infscale.tts.backends.openai:OpenAIServerGenerator")
GENERATORS.register("vllm", "infscale.tts.backends.vllm:VLLMGenerator")


def as_counts(prompts: Sequence[str], n: Sequence[int] | int) -> list[int]:
    counts = [n] * len(prompts) if isinstance(n, int) else list(n)
    if len(counts) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(counts)} sample counts")
    if any(c < 0 for c in counts):
        raise ValueError("sample counts must be >= 0")
    return counts


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that is a pure function of ``parts`` (sha256 of their text): how a run keys its randomness per
    unit of work (run seed, model, strategy, budget, problem, call), so skipping finished units on resume changes
    no later draw. 31 bits because every backend (torch, vLLM, OpenAI-compatible servers) accepts that range."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF


def as_seeds(prompts: Sequence[str], seeds: Sequence[int] | None) -> list[int] | None:
    """``seeds`` as a list checked against ``prompts`` (``None`` stays ``None``: an unseeded call)."""
    if seeds is None:
        return None
    out = [int(s) for s in seeds]
    if len(out) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(out)} seeds")
    return out


def prompt_requests(prompts: Sequence[str], n: Sequence[int] | int,
                    seeds: Sequence[int] | None) -> list[tuple[int, int, int | None]]:
    """(prompt index, samples, seed) of every prompt with samples to draw: one request each for the backends that send
    a prompt's ``n`` samples as one seeded request (vLLM, OpenAI-compatible servers)."""
    counts, keys = as_counts(prompts, n), as_seeds(prompts, seeds)
    return [(i, c, None if keys is None else keys[i]) for i, c in enumerate(counts) if c]


def sample_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th sample of a prompt keyed by ``seed``: the in-process backends (torch, HF,
    scripted) draw sample ``index`` from this stream alone; vLLM seeds it ``seed + index`` itself."""
    return derive_seed(seed, index)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Truncate ``text`` after the earliest stop string; returns (text, whether a stop string was found)."""
    best = -1
    for s in stop:
        i = text.find(s)
        if i >= 0 and (best < 0 or i + len(s) < best):
            best = i + len(s)
    return (text, False) if best < 0 else (text[:best], True)


class ScriptedArithmeticGenerator:
    """Deterministic arithmetic solver with a controllable error rate (one token per character).

    Reads the question line (``"7 +5 *3 -4"``) and the steps already written, then writes the remaining steps, each
    wrong (result off by 1..3) with probability ``error_rate``; an error propagates. A seeded sample draws from
    ``sample_seed(seeds[i], j)`` and the prompt's text; an unseeded one from ``seed``, the text and how many samples
    of that prompt were drawn before. Either way runs are reproducible.
    """

    name = "scripted"

    def __init__(self, error_rate: float = 0.3, seed: int = 0, shape: dict | None = None) -> None:
        self.error_rate, self.seed = error_rate, seed
        self.shape = TransformerShape.from_dict(shape) if shape else TransformerShape(
            d_model=128, n_layers=4, n_heads=4, vocab_size=64, context_length=512)
        self._seen: dict[str, int] = {}

    def count_tokens(self, text: str) -> int:
        return len(text)

    def _rng(self, prompt: str, seed: int | None, index: int) -> random.Random:
        if seed is not None:
            return random.Random(derive_seed(sample_seed(seed, index), prompt))
        k = self._seen.get(prompt, 0)
        self._seen[prompt] = k + 1
        return random.Random(derive_seed(self.seed, k, prompt))

    def _continue(self, prompt: str, rng: random.Random, greedy: bool) -> str:
        head, _, body = prompt.partition("\n")
        tokens = head.split()
        value = int(tokens[0])
        ops = [(t[0], int(t[1:])) for t in tokens[1:]]
        done = 0
        for m in STEP_RE.finditer(body):
            done, value = int(m.group(1)), int(m.group(5))
        out = []
        for k in range(done, len(ops)):
            op, b = ops[k]
            new = ARITH_OPS[op](value, b)
            if not greedy and rng.random() < self.error_rate:
                new += rng.choice((-3, -2, -1, 1, 2, 3))
            out.append(f"Step {k + 1}: {value}{op}{b}={new} ки\n")
            value = new
        out.append(f"The answer is {value}.")
        return "".join(out)

    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        keys = as_seeds(prompts, seeds)
        result = []
        for i, (prompt, count) in enumerate(zip(prompts, counts, strict=True)):
            row = []
            for j in range(count):
                rng = self._rng(prompt, None if keys is None else keys[i], j)
                full = self._continue(prompt, rng, params.temperature == 0)
                text, stopped = cut_at_stop(full, params.stop)
                reason: FinishReason = "stop" if stopped else "eos"
                if len(text) > params.max_tokens:
                    text, reason = text[: params.max_tokens], "length"
                row.append(Completion(text=text, prompt_tokens=len(prompt), completion_tokens=len(text),
                                      finish_reason=reason, logprob=0.0 if params.logprobs else None))
            result.append(row)
        return result
