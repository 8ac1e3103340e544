"""The trainer: one run from a `TrainConfig` to a run record (nanoGPT-style single loop).

Run directory layout (``run_dir``):
- ``config.yaml``  the resolved config (shape with the tokenizer's vocabulary, D, steps);
- ``metrics.jsonl`` append-only metrics (``train`` lines every ``log_every`` steps, ``val`` lines, ``resume`` events);
- ``ckpt.pt``      the latest checkpoint (model, optimizer, step, smoothed loss, elapsed time), written atomically;
- ``record.json``  the run record, written last: its presence means the run is finished (re-running returns it).

With ``downstream`` tasks (`infscale.train.downstream`) their examples are cut from the validation split before training
and the model is scored on them after the final validation pass, into the record's ``downstream`` ({metric: value}).

Recipe: AdamW (decay on matrices only), linear warm-up then cosine to ``lr * min_lr_ratio``, global grad-norm clipping,
optional z-loss, bf16 autocast on CPU and CUDA, gradient accumulation. Batches are a pure function of (seed, step, rank)
(`infscale.train.data.batch_at`), so resuming from a checkpoint reproduces the uninterrupted run.

Data parallel: launched by ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP (gloo on CPU, NCCL on CUDA);
each rank draws its own batches, rank 0 writes every file. ``torchrun --nproc_per_node 2 --no-python infscale train C``.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infscale.arch import TransformerShape, train_flops_6nd
from infscale.configio import save_config
from infscale.errors import InputError
from infscale.memory import available_bytes, estimate_train_bytes
from infscale.progress import Progress
from infscale.records import RecordWriter
from infscale.train.config import TrainConfig
from infscale.train.data import TokenData, batch_at, prepare_data
from infscale.train.downstream import Corpus, prepare_tasks, run_tasks


def resolve_shape(cfg: TrainConfig, vocab_size: int) -> TransformerShape:
    m = cfg.model
    try:
        return TransformerShape(
            d_model=m.d_model, n_layers=m.n_layers, n_heads=m.n_heads, n_kv_heads=m.n_kv_heads, d_ff=m.d_ff,
            ffn_kind=m.ffn_kind, tied_embeddings=m.tied_embeddings, context_length=m.context_length,
            vocab_size=vocab_size,
        )
    except ValueError as exc:
        raise InputError(f"model: {exc}") from None


def plan_tokens(cfg: TrainConfig, n_params: int, world_size: int = 1) -> tuple[int, int]:
    """(steps, D): D is the requested token count rounded up to whole optimizer steps."""
    target = cfg.tokens if cfg.tokens is not None else round(cfg.tokens_per_param * n_params)
    per_step = cfg.batch_size * cfg.model.context_length * cfg.grad_accum * world_size
    steps = max(1, math.ceil(target / per_step))
    return steps, steps * per_step


def default_run_id(shape: TransformerShape, n_tokens: int, group: str | None = None) -> str:
    head = f"{group}-" if group else ""
    return f"{head}d{shape.d_model}xL{shape.n_layers}h{shape.n_heads}-D{n_tokens}"


def lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_fraction * steps`` then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    o = cfg.optim
    warmup = int(o.warmup_fraction * steps)
    if step < warmup:
        return o.lr * (step + 1) / warmup
    span = max(1, steps - 1 - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = o.lr * o.min_lr_ratio
    return floor + 0.5 * (o.lr - floor) * (1.0 + math.cos(math.pi * progress))


def check_memory(cfg: TrainConfig, shape: TransformerShape, device: str, dtype: str) -> float:
    """Refuse (InputError) a shape whose estimated training memory (in compute ``dtype``) exceeds the limit; returns
    the estimate in bytes."""
    need = estimate_train_bytes(shape, cfg.batch_size, cfg.model.context_length, dtype)
    have = cfg.memory_limit_gb * 1e9 if cfg.memory_limit_gb is not None else available_bytes(device)
    if need > have:
        raise InputError(
            f"model d_model={shape.d_model} n_layers={shape.n_layers} (N={shape.n_params:,}): needs ~{need / 1e9:.2f} GB "
            f"to train at batch {cfg.batch_size} x {cfg.model.context_length}, only {have / 1e9:.2f} GB available on {device}"
        )
    return need


def autocast(device: str, dtype: str) -> Any:
    """The forward pass's precision context: bf16 autocast when ``dtype`` is ``bf16``, else a no-op."""
    import torch  # lazy: torch

    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bf16")


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s"


def check_time(cfg: TrainConfig, model: Any, steps: int, device: str, dtype: str) -> float:
    """Time one micro-batch on ``model`` (forward and backward on a batch of zeros: no weight changes, no random draw,
    its gradients dropped) and refuse (InputError) a run whose estimate, ``steps * grad_accum`` of those, exceeds
    ``cfg.max_hours``; returns the estimate in seconds."""
    import torch  # lazy: torch

    from infscale.train.model import lm_loss  # lazy: torch

    x = torch.zeros((cfg.batch_size, cfg.model.context_length), dtype=torch.long, device=device)
    best = math.inf
    for _ in range(2):  # the first call pays for allocation; the faster one is the estimate
        t0 = time.perf_counter()
        with autocast(device, dtype):
            logits = model(x)
        lm_loss(logits, x, 0.0).backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    estimate = best * cfg.grad_accum * steps
    if estimate > cfg.max_hours * 3600:
        per_s = cfg.batch_size * cfg.model.context_length / best
        raise InputError(f"{steps:,} steps would take ~{_duration(estimate)} at the {per_s:,.0f} tokens/s measured on "
                         f"{device} (max_hours {cfg.max_hours:g}): lower tokens / tokens_per_param, or raise max_hours")
    return estimate


class _Dist:
    """Rank/world from torchrun's environment; initialises the process group when world > 1."""

    def __init__(self, device_kind: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.active = self.world > 1
        if self.active:
            import torch.distributed as dist  # lazy: torch

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist  # lazy: torch

            dist.barrier()

    @property
    def main(self) -> bool:
        return self.rank == 0


class _Metrics:
    """``metrics.jsonl`` of a run: one `RecordWriter`, opened at the first line (only the main rank writes) and held
    until the run returns, so a second trainer of the same run directory is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: RecordWriter | None = None

    def __call__(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = RecordWriter(self.path).__enter__()
        self._writer.append(row)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.__exit__(None, None, None)
            self._writer = None


def _device(cfg: TrainConfig, dist: _Dist | None = None) -> str:
    import torch  # lazy: torch

    if cfg.device == "auto":
        if torch.cuda.is_available():
            return f"cuda:{dist.local_rank}" if dist is not None and dist.active else "cuda"
        return "cpu"
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={cfg.device!r}: CUDA is not available")
    return cfg.device


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bf16 natively. Without it (e.g. a CPU with AVX2 only) bf16 autocast is emulated and
    runs several times slower than fp32 (10x measured on a 2-core AVX2 EPYC)."""
    import torch  # lazy: torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_dtype(dtype: str, device: str) -> str:
    """The compute dtype of a run: ``auto`` is bf16 where `native_bf16`, else fp32; explicit values stay."""
    if dtype != "auto":
        return dtype
    return "bf16" if native_bf16(device) else "fp32"


@dataclass(frozen=True, slots=True)
class ValLoss:
    """A validation pass: the mean next-token loss, its standard error and how many tokens it covered.

    The standard error treats each ``context_length`` window as one observation (``std(window means) / sqrt(windows)``):
    tokens of one window share their text, so the per-token formula would understate it.
    """

    loss: float
    loss_se: float
    n_tokens: int


def evaluate(model, tokens, cfg: TrainConfig, device: str, dtype: str | None = None) -> ValLoss:
    """Loss over the first ``eval_tokens`` of ``tokens`` (contiguous windows, no z-loss), computed in ``dtype``
    (default: the config's, resolved for ``device``)."""
    import torch  # lazy: torch

    T = cfg.model.context_length
    n_windows = max(1, min(cfg.eval_tokens, tokens.shape[0] - 1) // T)
    if (tokens.shape[0] - 1) < T:
        raise InputError(f"validation split has {tokens.shape[0]} tokens: fewer than context_length+1={T + 1}")
    dtype = dtype or resolve_dtype(cfg.dtype, device)
    was_training = model.training
    model.eval()
    means: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, n_windows, cfg.batch_size):
            idx = range(start, min(n_windows, start + cfg.batch_size))
            win = np.stack([np.asarray(tokens[i * T:i * T + T + 1], dtype=np.int64) for i in idx])
            x = torch.from_numpy(win[:, :-1]).to(device)
            y = torch.from_numpy(win[:, 1:]).to(device)
            with autocast(device, dtype):
                logits = model(x)
            per_token = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                          reduction="none")
            means.append(per_token.reshape(len(idx), T).mean(dim=1).cpu().numpy())
    model.train(was_training)
    window = np.concatenate(means).astype(np.float64)
    se = float(window.std(ddof=1) / np.sqrt(window.size)) if window.size > 1 else float("nan")
    return ValLoss(float(window.mean()), se, int(window.size * T))


def train(cfg: TrainConfig, run_dir: str | Path, data: TokenData | None = None,
          stop_after_steps: int | None = None) -> dict[str, Any] | None:
    """Train one run into ``run_dir`` and return its record (resuming from ``ckpt.pt`` when present).

    ``stop_after_steps`` ends the process's work early after that many optimizer steps (a checkpoint is written) and
    returns None: the run is then resumed by calling `train` again.
    """
    metrics = _Metrics(Path(run_dir) / "metrics.jsonl")
    try:
        return _train(cfg, Path(run_dir), data, stop_after_steps, metrics)
    finally:
        metrics.close()


@dataclass
class _RunState:
    """What a checkpoint carries besides the weights: the step reached, the smoothed loss, the times."""

    step: int = 0
    ema: float = 0.0
    ema_weight: float = 0.0
    elapsed_s: float = 0.0
    train_time_s: float = 0.0


def _train(cfg: TrainConfig, run_dir: Path, data: TokenData | None, stop_after_steps: int | None,
           log: _Metrics) -> dict[str, Any] | None:
    import torch  # lazy: torch

    from infscale.train.model import LlamaModel  # lazy: torch

    if (run_dir / "record.json").exists():
        return json.loads((run_dir / "record.json").read_text())
    dist, device = _setup_device(cfg)
    data = data if data is not None else _shared_data(cfg, dist)
    shape = resolve_shape(cfg, data.vocab_size)
    dtype = resolve_dtype(cfg.dtype, device)
    need_bytes = check_memory(cfg, shape, device, dtype)  # before any parameter is allocated
    steps, n_tokens = plan_tokens(cfg, shape.n_params, dist.world)
    run_id = cfg.run_id or default_run_id(shape, n_tokens, cfg.group)
    # the downstream examples are cut now, so a split too small for them fails before any training
    tasks = prepare_tasks(cfg.downstream, Corpus.from_token_data(data), cfg.model.context_length) \
        if cfg.downstream and dist.main else []

    torch.manual_seed(cfg.seed)
    model = LlamaModel(shape).to(device)
    time_s = check_time(cfg, model, steps, device, dtype)  # before anything is written
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(run_dir / "config.yaml", cfg.model_dump(mode="json") | {"resolved": {
            "shape": shape.to_dict(), "n_params": shape.n_params, "n_tokens": n_tokens, "steps": steps,
            "world_size": dist.world, "device": device, "dtype": dtype, "corpus_hash": data.corpus_hash,
            "memory_estimate_bytes": need_bytes, "time_estimate_s": time_s, "run_id": run_id}})
    opt = _optimizer(model, cfg, device)
    state = _resume(run_dir / "ckpt.pt", model, opt, device)
    if state.step and dist.main:
        log({"event": "resume", "step": state.step})
    finished = _run_steps(cfg, model, opt, data, dist, device, dtype, steps, run_id, state, run_dir / "ckpt.pt",
                          stop_after_steps, log)
    if not finished:
        return None
    record = _final_record(cfg, model, data, tasks, shape, n_tokens, steps, run_id, dist, device, dtype, state)
    if dist.main:
        log({"step": steps, "val_loss": record["loss"], **record["downstream"], "final": True})
        tmp = run_dir / "record.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, run_dir / "record.json")
        (run_dir / "ckpt.pt").unlink(missing_ok=True)
    dist.barrier()
    return record


def _setup_device(cfg: TrainConfig) -> tuple[_Dist, str]:
    import torch  # lazy: torch

    device_kind = "cuda" if (cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())) \
        else "cpu"
    dist = _Dist(device_kind)
    device = _device(cfg, dist)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    return dist, device


def _shared_data(cfg: TrainConfig, dist: _Dist) -> TokenData:
    """The tokenized corpus: the main rank builds the cache, the others read it after the barrier."""
    d = cfg.data
    data = prepare_data(d.corpus, d.vocab_size, d.val_fraction, d.cache_dir, d.max_bytes) if dist.main else None
    dist.barrier()
    return data if data is not None else prepare_data(d.corpus, d.vocab_size, d.val_fraction, d.cache_dir,
                                                      d.max_bytes)


def _optimizer(model: Any, cfg: TrainConfig, device: str) -> Any:
    """AdamW, weight decay on the matrices only."""
    import torch  # lazy: torch

    o = cfg.optim
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o.lr, betas=(o.beta1, o.beta2), fused=device.startswith("cuda"),
    )


def _resume(ckpt_path: Path, model: Any, opt: Any, device: str) -> _RunState:
    """The weights, optimizer and progress of the checkpoint when there is one (a fresh `_RunState` otherwise)."""
    from infscale.train.model import load_weights  # lazy: torch

    if not ckpt_path.exists():
        return _RunState()
    ckpt = load_weights(ckpt_path, map_location=device)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    return _RunState(step=ckpt["step"], ema=ckpt["ema"], ema_weight=ckpt["ema_weight"], elapsed_s=ckpt["elapsed_s"],
                     train_time_s=ckpt["train_time_s"])


def _save_checkpoint(ckpt_path: Path, model: Any, opt: Any, state: _RunState, step: int) -> None:
    import torch  # lazy: torch

    tmp = ckpt_path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "ema": state.ema,
                "ema_weight": state.ema_weight, "elapsed_s": state.elapsed_s, "train_time_s": state.train_time_s},
               tmp)
    os.replace(tmp, ckpt_path)


def _run_steps(cfg: TrainConfig, model: Any, opt: Any, data: TokenData, dist: _Dist, device: str, dtype: str,
               steps: int, run_id: str, state: _RunState, ckpt_path: Path, stop_after_steps: int | None,
               log: _Metrics) -> bool:
    """Steps ``state.step .. steps - 1`` (metrics every ``log_every``, evaluations, checkpoints); False when
    ``stop_after_steps`` stopped it first (a checkpoint saved)."""
    import torch  # lazy: torch

    from infscale.train.model import lm_loss  # lazy: torch

    net = model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel  # lazy: torch

        net = DistributedDataParallel(model, device_ids=[dist.local_rank] if device.startswith("cuda") else None)
    # a bar on a terminal; otherwise a line per log interval (cfg.log_every steps) at most, each with its ETA
    bar = Progress(f"train {run_id}", steps, "steps", every=cfg.log_every,
                   enabled=cfg.progress and dist.main).start()
    bar.advance(state.step, resumed=True)
    T, B, A = cfg.model.context_length, cfg.batch_size, cfg.grad_accum
    o, beta = cfg.optim, cfg.ema_beta
    done_here = 0
    t_wall = time.perf_counter()
    model.train()
    for step in range(state.step, steps):
        t0 = time.perf_counter()
        lr = lr_at(step, steps, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(A):
            xb, yb = batch_at(data.train, B, T, cfg.seed, step * A + micro, dist.rank)
            x = torch.from_numpy(xb).to(device, non_blocking=True)
            y = torch.from_numpy(yb).to(device, non_blocking=True)
            sync_ctx = net.no_sync() if (dist.active and micro < A - 1) else nullcontext()
            with sync_ctx:
                with autocast(device, dtype):
                    logits = net(x)
                loss = lm_loss(logits, y, o.z_loss) / A
                loss.backward()
            loss_sum += float(loss.detach())
        if o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        state.ema = beta * state.ema + (1 - beta) * loss_sum
        state.ema_weight = beta * state.ema_weight + (1 - beta)
        dt = time.perf_counter() - t0
        state.train_time_s += dt
        done = step + 1
        bar.advance(note=f"loss {state.ema / state.ema_weight:.4f}")
        if dist.main and (done % cfg.log_every == 0 or done == steps):
            log({"step": done, "tokens": done * B * T * A * dist.world, "loss": loss_sum,
                 "loss_smoothed": state.ema / state.ema_weight, "lr": lr,
                 "tokens_per_s": B * T * A * dist.world / dt})
        if cfg.eval_every and done % cfg.eval_every == 0 and done < steps and dist.main:
            log({"step": done, "val_loss": evaluate(model, data.val, cfg, device, dtype).loss})
        done_here += 1
        now = time.perf_counter()
        if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < steps) or (
                stop_after_steps is not None and done_here >= stop_after_steps):
            state.elapsed_s += now - t_wall
            t_wall = now
            if dist.main:
                _save_checkpoint(ckpt_path, model, opt, state, done)
            dist.barrier()
        if stop_after_steps is not None and done_here >= stop_after_steps and done < steps:
            bar.close()
            return False
    bar.close()
    state.elapsed_s += time.perf_counter() - t_wall
    return True


def _final_record(cfg: TrainConfig, model: Any, data: TokenData, tasks: list[Any], shape: TransformerShape,
                  n_tokens: float, steps: int, run_id: str, dist: _Dist, device: str, dtype: str,
                  state: _RunState) -> dict[str, Any]:
    """The run's record: validation loss (with its standard error), downstream scores while the trained model is in
    memory, the shape, the token and FLOP counts, the times."""
    t_eval = time.perf_counter()
    val = evaluate(model, data.val, cfg, device, dtype)
    downstream, downstream_n, t_down = {}, {}, time.perf_counter()
    if tasks:  # scored now, while the trained model is in memory (the checkpoint is deleted after)
        model.eval()
        downstream, downstream_n = run_tasks(model, tasks, device)
        model.train()
    downstream_s = time.perf_counter() - t_down
    elapsed = state.elapsed_s + (time.perf_counter() - t_eval)
    n, T = shape.n_params, cfg.model.context_length
    train_time = state.train_time_s
    return {
        "run_id": run_id, "group": cfg.group, "N": n, "D": n_tokens, "loss": val.loss, "loss_se": val.loss_se,
        "val_tokens": val.n_tokens, "seed": cfg.seed,
        "train_loss_smoothed": state.ema / state.ema_weight, "d_model": shape.d_model, "n_layers": shape.n_layers,
        "n_heads": shape.n_heads, "n_kv_heads": shape.kv_heads, "d_ff": shape.ffn_hidden,
        "vocab_size": shape.vocab_size, "context_length": T, "aspect_ratio": shape.aspect_ratio,
        "tokens_per_param": n_tokens / n, "flops": train_flops_6nd(n, n_tokens),
        "flops_exact": shape.flops_train_token(T) * n_tokens, "steps": steps, "wall_s": elapsed,
        "train_time_s": train_time, "tokens_per_s": n_tokens / train_time if train_time > 0 else float("nan"),
        "world_size": dist.world, "device": device, "dtype": dtype, "corpus_hash": data.corpus_hash,
        "n_train_tokens_corpus": data.n_train_tokens, "epochs": n_tokens / data.n_train_tokens,
        "downstream": downstream, "downstream_examples": downstream_n, "downstream_s": downstream_s,
        "config": cfg.model_dump(mode="json"),
    }
