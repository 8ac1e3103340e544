"""Trainer overhead: tokens/s of `infscale.train.trainer.train` vs a minimal hand-written torch loop.

Same model (`LlamaModel`), same shape, batch, sequence length, dtype (the trainer's `auto`: bf16 autocast where the
device computes bf16 natively, else fp32), optimizer (AdamW), grad clipping and
data (random windows of the same memory-mapped token shard). The trainer adds its schedule, logging, EMA and
bookkeeping; z-loss and periodic checkpoints/evaluation are off in both so the same arithmetic is timed. Trials
alternate between the two (A B A B ...) and the medians are compared. Each trainer trial runs `train()` end to end
(fresh model); its `tokens_per_s` counts only optimizer-step time, as the hand loop's does.

On a CUDA device it also reports MFU for a ~100M-parameter model: 6 N tokens/s over the peak bf16 dense FLOP/s.

    flock /tmp/infscale-cpu.lock .venv/bin/python benchmarks/bench_train.py [--trials 5] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from infscale.arch import TransformerShape
from infscale.train.config import parse_train
from infscale.train.data import prepare_data
from infscale.train.model import LlamaModel
from infscale.train.trainer import resolve_dtype, train

# peak dense bf16 tensor FLOP/s by device name (vendor data sheets; no sparsity)
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def hand_loop(shape: TransformerShape, tokens: np.ndarray, batch: int, steps: int, device: str, lr: float,
              bf16: bool) -> float:
    """The minimal loop (nanoGPT-style). Returns tokens/s over the optimizer steps."""
    torch.manual_seed(0)
    model = LlamaModel(shape).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.033,
                            fused=device.startswith("cuda"))
    T = shape.context_length
    rng = np.random.default_rng(0)
    elapsed = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        starts = rng.integers(0, len(tokens) - T - 1, size=batch)
        win = torch.from_numpy(np.stack([tokens[s:s + T + 1].astype(np.int64) for s in starts])).to(device)
        x, y = win[:, :-1], win[:, 1:]
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())  # the loop reads its loss, as any loop that logs does
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - t0
    return batch * T * steps / elapsed


def trainer_run(cfg_dict: dict, steps: int, batch: int, T: int) -> float:
    cfg = parse_train(cfg_dict | {"tokens": steps * batch * T})
    with tempfile.TemporaryDirectory() as tmp:
        rec = train(cfg, tmp)
    return rec["tokens_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = prepare_data("default", 512, 0.01, max_bytes=2_000_000)
    heads = max(1, args.d_model // 32)
    model_cfg = {"d_model": args.d_model, "n_layers": args.n_layers, "n_heads": heads, "context_length": args.seq,
                 "tied_embeddings": True}
    cfg = {"model": model_cfg, "data": {"corpus": "default", "vocab_size": 512, "val_fraction": 0.01,
                                        "max_bytes": 2_000_000},
           "batch_size": args.batch, "dtype": "auto", "device": device, "optim": {"z_loss": 0.0, "warmup_fraction": 0.0},
           "checkpoint_every": 0, "eval_every": 0, "eval_tokens": args.seq, "log_every": 10, "progress": False}
    shape = TransformerShape(d_model=args.d_model, n_layers=args.n_layers, n_heads=heads, vocab_size=data.vocab_size,
                             tied_embeddings=True, context_length=args.seq)
    dtype = resolve_dtype("auto", device)
    print(f"device {device}, threads {torch.get_num_threads()}, shape d{args.d_model}xL{args.n_layers} "
          f"N={shape.n_params:,}, batch {args.batch}x{args.seq}, {dtype}, {args.steps} steps x {args.trials} trials")
    ours, base = [], []
    hand_loop(shape, np.asarray(data.train), args.batch, 3, device, 3e-3, dtype == "bf16")  # warm-up (allocator, kernels)
    for i in range(args.trials):
        base.append(hand_loop(shape, np.asarray(data.train), args.batch, args.steps, device, 3e-3,
                              dtype == "bf16"))
        ours.append(trainer_run(cfg, args.steps, args.batch, args.seq))
        print(f"trial {i}: hand loop {base[-1]:,.0f} tok/s, infscale train {ours[-1]:,.0f} tok/s")
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"median tokens/s: infscale train {mo:,.0f}, hand-written loop {mb:,.0f}")
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
        big = {"d_model": 768, "n_layers": 12, "n_heads": 12, "context_length": 1024, "tied_embeddings": False}
        big_cfg = cfg | {"model": big, "batch_size": 16, "data": {"corpus": "default", "vocab_size": 32768,
                                                                  "val_fraction": 0.01}}
        bd = prepare_data("default", 32768, 0.01)
        n = TransformerShape(vocab_size=bd.vocab_size, **{k: v for k, v in big.items()}).n_params
        tps = trainer_run(big_cfg, 30, 16, 1024)
        if peak:
            print(f"~100M model (N={n:,}): {tps:,.0f} tok/s, MFU {6 * n * tps / peak:.1%} of {name} bf16 peak")
    print(f"infscale train vs hand-written loop (tokens/s, median): {mo / mb:.3f}x")


if __name__ == "__main__":
    main()
