"""Train the project's own small policy and PRM on the synthetic arithmetic task (CPU, minutes).

A focused supervised loop over `LlamaModel` with the character tokenizer:
- policy: next-token cross-entropy on reference solutions (``prompt -> Step 1: ... ки ... The answer is N.<eos>``),
  loss on the solution tokens only;
- PRM (Math-Shepherd style): at every step tag and at the final token the target is ``+`` (every step so far
  correct) or ``-``; cross-entropy on those positions only, so the reward is ``softmax([logit('+'), logit('-')])[0]``
  at the tag. Its solutions are either reference solutions with injected step errors (``prm_example``) or, better,
  the policy's own samples labelled by the exact checker with the labels balanced per step position
  (``policy_prm_examples``): a PRM trained on injected errors learns where errors were put, not what they look like.
Checkpoints hold the shape, the state dict and the training log (`infscale.tts.backends.torch.save_checkpoint`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.progress import Progress
from infscale.train.model import LlamaModel
from infscale.tts.backends.torch import TorchGenerator, load_checkpoint, save_checkpoint
from infscale.tts.core.generation import SamplingParams
from infscale.tts.core.rewards import LikelihoodHead, path_min_logprobs, token_logprobs
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
    """The training budget, in optimizer steps (never seconds: a busy machine trains the same model, only slower)."""
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


Labelled = tuple[list[int], list[int], list[bool]]
"""Token ids, the positions a PRM reads, and the exact label at each."""


def _injected(rng: random.Random, cfg: SmallTrainConfig, task: ArithmeticTask, tok: CharTokenizer) -> Labelled:
    """A random problem's reference solution with injected errors: its ids, reward positions and labels."""
    p = _problem(rng, cfg, task)
    text, labels = corrupted_solution(p, rng, cfg.error_rate)
    ids = tok.encode(task.prompt(p) + text, bos=True)
    return ids, tok.step_positions(ids, len(labels)), labels


def prm_example(rng: random.Random, cfg: SmallTrainConfig, task: ArithmeticTask,
                tok: CharTokenizer) -> tuple[list[int], list[int]]:
    ids, pos, labels = _injected(rng, cfg, task, tok)
    targets = [IGNORE] * len(ids)
    good, bad = tok.stoi["+"], tok.stoi["-"]
    for i, lab in zip(pos, labels, strict=True):
        targets[i] = good if lab else bad
    return ids, targets


Example = tuple[list[int], list[int], list[float]]
"""Token ids, targets (``IGNORE`` where no loss) and a weight per target."""


def _weighted(ex: tuple[list[int], list[int]]) -> Example:
    ids, tgt = ex
    return ids, tgt, [0.0 if t == IGNORE else 1.0 for t in tgt]


def _batch(examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    T = max(len(x) for x, _, _ in examples)
    ids = torch.zeros((len(examples), T), dtype=torch.long)
    tgt = torch.full((len(examples), T), IGNORE, dtype=torch.long)
    wts = torch.zeros((len(examples), T), dtype=torch.float32)
    for r, (x, y, w) in enumerate(examples):
        ids[r, : len(x)] = torch.tensor(x)
        tgt[r, : len(y)] = torch.tensor(y)
        wts[r, : len(w)] = torch.tensor(w)
    return ids, tgt, wts


def policy_samples(policy: str | Path, cfg: SmallTrainConfig, n_problems: int, samples: int,
                   temperature: float = 1.0, log_every: int = 0) -> list[tuple[Labelled, int]]:
    """``samples`` solutions by ``policy`` of each of ``n_problems`` random problems (difficulties
    ``min..max_difficulty``), every step labelled by the task's exact checker (good while every step up to it is
    right), each with the index of its first solution token. Truncated solutions and ones beyond the context are
    left out."""

    rng = random.Random(cfg.seed + 7)
    tok, task = CharTokenizer(), ArithmeticTask()
    gen = TorchGenerator(checkpoint=str(policy), seed=cfg.seed, threads=cfg.threads)
    params = SamplingParams(temperature=temperature, max_tokens=cfg.context_length)
    out: list[tuple[Labelled, int]] = []
    with Progress(f"sample {Path(policy).stem}", n_problems, "problems", enabled=log_every > 0) as bar:
        for start in range(0, n_problems, 32):
            problems = [_problem(rng, cfg, task) for _ in range(min(32, n_problems - start))]
            prompts = [task.prompt(p) for p in problems]
            for p, prompt, comps in zip(problems, prompts, gen.generate(prompts, samples, params), strict=True):
                first = len(tok.encode(prompt, bos=True))
                for c in comps:
                    if c.finish_reason == "length":
                        continue
                    steps = task.split_steps(c.text)
                    labels = [bool(v) for v in task.verify_steps(p, steps)]
                    ids = tok.encode(prompt + c.text, bos=True)
                    if len(ids) > cfg.context_length or len(labels) != len(steps):
                        continue
                    out.append(((ids, tok.step_positions(ids, len(steps)), labels), first))
            bar.advance(len(problems), note=f"{len(out)} labelled solutions")
    return out


def policy_prm_examples(policy: str | Path, cfg: SmallTrainConfig, n_problems: int, samples: int,
                        temperature: float = 1.0, log_every: int = 0, injected: int = 0) -> list[Example]:
    """PRM training data for the tag head from the policy's own distribution (`policy_samples`), plus ``injected``
    reference solutions with injected errors (more wrong steps of every kind, the policy errs rarely). Targets are
    balanced per step position (`balance_positions`), so the reward cannot be read off the step index (or the
    length)."""
    tok, task = CharTokenizer(), ArithmeticTask()
    raw = [lab for lab, _ in policy_samples(policy, cfg, n_problems, samples, temperature, log_every)]
    rng = random.Random(cfg.seed + 7)
    raw += [_injected(rng, cfg, task, tok) for _ in range(injected)]
    return balance_positions(raw, tok)


def position_weights(labels: list[list[bool]]) -> list[list[float]]:
    """A weight per label such that at every step position the good and the bad labels carry equal total weight (a
    position with one label only teaches nothing but the index: weight 0), the position keeping its share."""
    counts: dict[tuple[int, bool], int] = {}
    for row in labels:
        for k, lab in enumerate(row):
            counts[(k, lab)] = counts.get((k, lab), 0) + 1
    out = []
    for row in labels:
        w = []
        for k, lab in enumerate(row):
            n_k = counts.get((k, True), 0) + counts.get((k, False), 0)
            w.append(0.5 * n_k / counts[(k, lab)] if counts.get((k, not lab)) else 0.0)
        out.append(w)
    return out


def fit_likelihood_head(lm: LlamaModel, samples: list[tuple[Labelled, int]], batch_size: int = 64) -> LikelihoodHead:
    """Fit a `LikelihoodHead` for the language model ``lm`` on labelled solutions (`policy_samples`): weighted logistic
    regression of each step's label on the running minimum of the solution's token log-likelihoods under ``lm``, the
    labels weighted per step position (`position_weights`) so that the index cannot stand in for correctness."""
    from scipy.optimize import minimize  # lazy: scipy

    if not samples:
        raise InputError("likelihood head: no labelled solutions to fit on")
    feats: list[float] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        T = max(len(ids) for (ids, _, _), _ in chunk)
        batch = torch.zeros((len(chunk), T), dtype=torch.long)
        for r, ((ids, _, _), _) in enumerate(chunk):
            batch[r, : len(ids)] = torch.tensor(ids)
        with torch.inference_mode():
            logsm = torch.log_softmax(lm(batch).float(), -1)
        for r, ((ids, pos, _), first) in enumerate(chunk):
            lp = token_logprobs(logsm[r, : len(ids)], ids)
            feats += path_min_logprobs(lp, first, pos)
    labels = [lab for (_, _, lab), _ in samples]
    x = np.asarray(feats)
    y = np.asarray([v for row in labels for v in row], dtype=float)
    w = np.asarray([v for row in position_weights(labels) for v in row])
    if not (0 < y.sum() < len(y)) or w.sum() == 0:
        raise InputError(f"likelihood head: the {len(samples)} solutions need both good and bad steps at some "
                         "position (sample harder problems or at a higher temperature)")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * x + theta[1]
        p = 1.0 / (1.0 + np.exp(-z))
        g = w * (p - y)
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z))), np.array([np.sum(g * x), np.sum(g)])

    theta = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B").x
    return LikelihoodHead(coef=float(theta[0]), intercept=float(theta[1]))


def train_likelihood_prm(lm: Path, policies: Sequence[Path], cfg: SmallTrainConfig, n_problems: int, samples: int,
                         out: Path, log_every: int = 10, recipe: dict[str, object] | None = None) -> dict[str, float]:
    """A likelihood PRM: the language model ``lm`` (a policy checkpoint) with a `LikelihoodHead` fitted on the own
    labelled samples of every one of ``policies`` (``n_problems`` problems each); saved as a ``prm`` checkpoint to
    ``out`` (``recipe``: settings kept beside it, so a study can tell whether it may reuse it). Returns the fit's
    figures."""
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    model, _, _ = load_checkpoint(lm, expect_kind="policy")
    data = [s for policy in policies for s in policy_samples(policy, cfg, n_problems, samples, log_every=log_every)]
    head = fit_likelihood_head(model, data)
    n_steps = sum(len(lab) for (_, _, lab), _ in data)
    n_bad = sum(1 for (_, _, lab), _ in data for v in lab if not v)
    metrics = {"solutions": len(data), "steps": n_steps, "bad_steps": n_bad, "train_s": time.perf_counter() - t0,
               "coef": head.coef, "intercept": head.intercept}
    names = ", ".join(Path(p).name for p in policies)
    save_checkpoint(out, model, "prm", {"head": head.to_dict(), "lm": Path(lm).name, "policies": names,
                                        "config": asdict(cfg), "metrics": metrics, "recipe": recipe or {},
                                        "data": f"{len(data)} solutions of {n_problems} problems by each of {names}"})
    return metrics


def balance_positions(raw: list[Labelled], tok: CharTokenizer) -> list[Example]:
    """Tag-head targets with the `position_weights` of their labels."""
    good, bad = tok.stoi["+"], tok.stoi["-"]
    out: list[Example] = []
    for (ids, pos, labels), weights in zip(raw, position_weights([lab for _, _, lab in raw]), strict=True):
        tgt, wts = [IGNORE] * len(ids), [0.0] * len(ids)
        for i, lab, w in zip(pos, labels, weights, strict=True):
            tgt[i] = good if lab else bad
            wts[i] = w
        out.append((ids, tgt, wts))
    return out


def train_own_model(kind: str, cfg: SmallTrainConfig, out: Path, log_every: int = 50,
                    init_from: Path | None = None, examples: list[Example] | None = None) -> dict[str, float]:
    """Train a ``policy`` or ``prm`` and save it to ``out``; returns the final metrics.

    ``init_from``: start from the weights of that checkpoint (same shape) instead of a random initialisation, e.g. a
    PRM fine-tuned from a trained policy, as Math-Shepherd PRMs are fine-tuned from a math language model. The path is
    kept in the checkpoint (``extra["init_from"]``). ``examples``: a fixed pool to draw batches from (e.g.
    `policy_prm_examples`) instead of freshly generated ones; its weights scale each target's loss."""
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
    if examples is not None and not examples:
        raise InputError(f"{kind}: the example pool is empty")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    history: list[float] = []
    step = 0
    with Progress(f"train {kind} d{cfg.d_model}x{cfg.n_layers}", cfg.max_steps, "steps", every=log_every or 1,
                  enabled=log_every > 0) as bar:
        for step in range(1, cfg.max_steps + 1):
            # warm-up, then cosine to 10 % over the step budget
            progress = step / cfg.max_steps
            lr = cfg.lr * min(1.0, step / cfg.warmup_steps) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
            for g in opt.param_groups:
                g["lr"] = lr
            batch = ([examples[rng.randrange(len(examples))] for _ in range(cfg.batch_size)] if examples is not None
                     else [_weighted(make(rng, cfg, task, tok)) for _ in range(cfg.batch_size)])
            ids, tgt, wts = _batch(batch)
            logits = model(ids)
            per_token = F.cross_entropy(logits.view(-1, logits.size(-1)), tgt.view(-1), ignore_index=IGNORE,
                                        reduction="none")
            loss = (per_token * wts.view(-1)).sum() / wts.sum().clamp_min(1e-9)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            history.append(loss.item())
            window = history[-(log_every or 1):]
            bar.advance(note=f"loss {sum(window) / len(window):.4f}")
    metrics = {"steps": step, "final_loss": sum(history[-20:]) / len(history[-20:]),
               "train_s": time.perf_counter() - t0}
    extra = {"config": asdict(cfg), "metrics": metrics,
             "data": "injected errors" if examples is None else f"pool of {len(examples)} examples"}
    if init_from is not None:
        extra["init_from"] = str(init_from)
    save_checkpoint(out, model, kind, extra)
    return metrics


PRM_DATA = ("likelihood", "policy", "injected")
"""How `train_policy_and_prm` builds the PRM: a likelihood head over the PRM's language model fitted to the policy's
own labelled samples (the bundled one), a tag head fine-tuned on those samples, or a tag head trained on injected
errors."""

POLICY_SHAPE = {"d_model": 64, "n_layers": 4, "n_heads": 4}
"""The bundled policy: small, so that it errs (greedy about 55% at difficulty 3) and search has room to help."""
PRM_SHAPE = {"d_model": 128, "n_layers": 4, "n_heads": 4}
"""The bundled PRM's language model: about 5x the policy's parameters (Wu et al.'s PRM is larger than its policies)."""


def train_policy_and_prm(out_dir: Path, policy_steps: int = 600, lm_steps: int = 750, seed: int = 0,
                         prm_data: str = "likelihood", prm_problems: int = 1200, prm_steps: int = 400,
                         threads: int = 2, log_every: int = 50) -> dict[str, dict[str, float]]:
    """The bundled pair (``infscale tts train``), every budget in optimizer steps (a busy machine trains the same
    models, only slower): the policy (`POLICY_SHAPE`, ``policy_steps``), the PRM's language model (`PRM_SHAPE`,
    ``lm_steps``, kept as ``arith_lm.pt``), then the PRM (`PRM_DATA`): ``likelihood`` (default) fits a
    `LikelihoodHead` over the language model on the policy's own samples (4 of each of ``prm_problems`` problems,
    difficulties 2-5); ``policy`` fine-tunes a tag head from the language model on those samples (difficulties 2-7,
    ``prm_steps``); ``injected`` trains a tag head from the language model on injected errors (``prm_steps``)."""
    if prm_data not in PRM_DATA:
        raise InputError(f"prm data {prm_data!r}: expected one of {', '.join(PRM_DATA)}")
    common = {"lr": 4e-3, "warmup_steps": 50, "seed": seed, "threads": threads}
    policy, lm, prm = out_dir / "arith_policy.pt", out_dir / "arith_lm.pt", out_dir / "arith_prm.pt"
    out = {"policy": train_own_model("policy", SmallTrainConfig(**POLICY_SHAPE, max_steps=policy_steps, **common),
                                     policy, log_every=log_every)}
    out["lm"] = train_own_model("policy", SmallTrainConfig(**PRM_SHAPE, max_steps=lm_steps, **common), lm,
                                log_every=log_every)
    if prm_data == "likelihood":
        cfg = SmallTrainConfig(**PRM_SHAPE, seed=seed, threads=threads)
        out["prm"] = train_likelihood_prm(lm, [policy], cfg, prm_problems, 4, prm, log_every=10 if log_every else 0)
        return out
    tag = {**common, "lr": 1e-3, "max_steps": prm_steps}
    if prm_data == "injected":
        out["prm"] = train_own_model("prm", SmallTrainConfig(**PRM_SHAPE, **tag), prm, log_every=log_every,
                                     init_from=lm)
    else:
        cfg = SmallTrainConfig(**PRM_SHAPE, max_difficulty=7, **tag)
        pool = policy_prm_examples(policy, cfg, prm_problems, 4, log_every=10)
        out["prm"] = train_own_model("prm", cfg, prm, log_every=log_every, init_from=lm, examples=pool)
    return out
