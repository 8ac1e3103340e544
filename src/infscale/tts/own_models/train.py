"""Train the project's own small policy and PRM on the synthetic arithmetic task (CPU, minutes).

A focused supervised loop over `LlamaModel` with the character tokenizer:
- policy: next-token cross-entropy on reference solutions (``prompt -> Step 1: ... ки ... The answer is N.<eos>``),
  loss on the solution tokens only;
- PRM (Math-Shepherd style): solutions with injected step errors; at every step tag and at the final token the target
  is ``+`` (every step so far correct) or ``-``; cross-entropy on those positions only, so the reward is
  ``softmax([logit('+'), logit('-')])[0]`` at the tag.
Checkpoints hold the shape, the state dict and the training log (`infscale.tts.backends.torch.save_checkpoint`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.train.model import LlamaModel
from infscale.tts.backends.torch import load_checkpoint, save_checkpoint
from infscale.tts.core.tasks import ARITH_OPS, STEP_TAG, ArithmeticTask, Problem
from infscale.tts.own_models.tokenizer import CharTokenizer

IGNORE = -100


@dataclass(frozen=True, slots=True, kw_only=True)
class SmallTrainConfig:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    context_length: int = 256
    min_difficulty: int = 2
    max_difficulty: int = 5
    batch_size: int = 64
    max_steps: int = 600
    max_time_s: float = 150.0
    """Wall-clock cap: training stops at whichever of max_steps / max_time_s comes first."""
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_steps: int = 30
    error_rate: float = 0.25
    """PRM data: probability that a step's result is corrupted."""
    seed: int = 0
    threads: int = 2


def small_shape(cfg: SmallTrainConfig, vocab_size: int) -> TransformerShape:
    return TransformerShape(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, vocab_size=vocab_size,
                            context_length=cfg.context_length)


def _problem(rng: random.Random, cfg: SmallTrainConfig, task: ArithmeticTask) -> Problem:
    return task.make_problem(0, rng, rng.randint(cfg.min_difficulty, cfg.max_difficulty))


def policy_example(rng: random.Random, cfg: SmallTrainConfig, task: ArithmeticTask,
                   tok: CharTokenizer) -> tuple[list[int], list[int]]:
    p = _problem(rng, cfg, task)
    prompt = tok.encode(task.prompt(p), bos=True)
    sol = tok.encode(task.solution(p)) + [tok.eos_id]
    ids = prompt + sol
    targets = [IGNORE] * (len(prompt) - 1) + sol + [IGNORE]
    return ids, targets


def corrupted_solution(p: Problem, rng: random.Random, error_rate: float) -> tuple[str, list[bool]]:
    """A solution whose step results are wrong with probability ``error_rate`` (errors propagate), and per step
    (the final answer line included) whether every step up to it is correct."""
    ops = p.get("ops")
    value, true_value, ok, lines, labels = p.get("start"), p.get("start"), True, [], []
    for k, (op, b) in enumerate(ops, start=1):
        new = ARITH_OPS[op](value, b)
        if rng.random() < error_rate:
            new += rng.choice((-10, -3, -2, -1, 1, 2, 3, 10))
        true_value = ARITH_OPS[op](true_value, b)
        ok = ok and new == true_value
        lines.append(f"Step {k}: {value}{op}{b}={new} {STEP_TAG}\n")
        labels.append(ok)
        value = new
    final = value
    if rng.random() < error_rate / 2:
        final += rng.choice((-1, 1))
    lines.append(f"The answer is {final}.")
    labels.append(ok and final == true_value)
    return "".join(lines), labels


def prm_example(rng: random.Random, cfg: SmallTrainConfig, task: ArithmeticTask,
                tok: CharTokenizer) -> tuple[list[int], list[int]]:
    p = _problem(rng, cfg, task)
    text, labels = corrupted_solution(p, rng, cfg.error_rate)
    ids = tok.encode(task.prompt(p) + text, bos=True)
    targets = [IGNORE] * len(ids)
    pos = [i for i, t in enumerate(ids) if t == tok.tag_id] + [len(ids) - 1]
    good, bad = tok.stoi["+"], tok.stoi["-"]
    for i, lab in zip(pos, labels, strict=True):
        targets[i] = good if lab else bad
    return ids, targets


def _batch(examples: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(x) for x, _ in examples)
    ids = torch.zeros((len(examples), T), dtype=torch.long)
    tgt = torch.full((len(examples), T), IGNORE, dtype=torch.long)
    for r, (x, y) in enumerate(examples):
        ids[r, : len(x)] = torch.tensor(x)
        tgt[r, : len(y)] = torch.tensor(y)
    return ids, tgt


def train_own_model(kind: str, cfg: SmallTrainConfig, out: Path, log_every: int = 50,
          init_from: Path | None = None) -> dict[str, float]:
    """Train a ``policy`` or ``prm`` and save it to ``out``; returns the final metrics.

    ``init_from``: start from the weights of that checkpoint (same shape) instead of a random initialisation, e.g. a
    PRM fine-tuned from a trained policy, as Math-Shepherd PRMs are fine-tuned from a math language model. The path is
    kept in the checkpoint (``extra["init_from"]``)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed + (0 if kind == "policy" else 1))
    tok = CharTokenizer()
    task = ArithmeticTask()
    model = LlamaModel(small_shape(cfg, tok.vocab_size))
    if init_from is not None:
        start, _, _ = load_checkpoint(init_from)
        if start.shape != model.shape:
            raise InputError(f"{init_from}: shape {start.shape.to_dict()} differs from the model to train "
                             f"{model.shape.to_dict()}")
        model.load_state_dict(start.state_dict())
    make = policy_example if kind == "policy" else prm_example
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    history: list[float] = []
    step = 0
    for step in range(1, cfg.max_steps + 1):
        # warm-up, then cosine to 10 % over whichever budget (steps or wall time) runs out first
        progress = min(1.0, max(step / cfg.max_steps, (time.perf_counter() - t0) / cfg.max_time_s))
        lr = cfg.lr * min(1.0, step / cfg.warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, tgt = _batch([make(rng, cfg, task, tok) for _ in range(cfg.batch_size)])
        logits = model(ids)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), tgt.view(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"{kind} step {step} loss {sum(history[-log_every:]) / log_every:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if time.perf_counter() - t0 > cfg.max_time_s:
            break
    metrics = {"steps": step, "final_loss": sum(history[-20:]) / len(history[-20:]),
               "train_s": time.perf_counter() - t0}
    extra = {"config": asdict(cfg), "metrics": metrics}
    if init_from is not None:
        extra["init_from"] = str(init_from)
    save_checkpoint(out, model, kind, extra)
    return metrics
