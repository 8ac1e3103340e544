"""The project's own torch generator: `LlamaModel` + `KVCache`, batched sampling with prefix K/V reuse.

One ``generate`` call handles many prompts with different sample counts (tree search asks for a few children of many
nodes at once): the distinct prompts are left-padded and prefilled together once, the cache rows are forked to one per
sample (``KVCache.select``), then all samples decode in one batch. Every row keeps its own unpadded rotary positions
and a key mask hides the padding, so each row gets exactly its unpadded computation. Rows that hit a stop string,
end-of-sequence or their own ``max_tokens`` (cut to the room their prompt leaves in the context) stop; the batch is
compacted once half its rows are done. Each row samples from its own random stream (`infscale.tts.backends.sampling`),
so a problem's samples do not depend on the other problems sharing the batch. A finished row's K/V goes
to a bounded `PrefixStore` (tts/prefix_cache.py), so a later prompt that extends it (a tree-search child: the parent's
prompt + the parent's step) prefills only its new tail.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.memory import available_bytes
from infscale.train.model import KVCache, LlamaModel, load_weights
from infscale.tts.backends.prefix_cache import PrefixStore, prefill, store_tokens
from infscale.tts.backends.sampling import row_keys, sample_rows
from infscale.tts.core.generation import (
    Completion,
    FinishReason,
    SamplingParams,
    as_counts,
    as_seeds,
    cut_at_stop,
)
from infscale.tts.own_models.tokenizer import CharTokenizer

MODELS_DIR = Path(__file__).resolve().parents[1] / "own_models" / "models"
DEFAULT_POLICY = MODELS_DIR / "arith_policy.pt"
DEFAULT_PRM = MODELS_DIR / "arith_prm.pt"


def save_checkpoint(path: Path, model: LlamaModel, kind: str, extra: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    torch.save({"kind": kind, "shape": model.shape.to_dict(), "tokenizer": CharTokenizer.name,
                "state_dict": state, "extra": extra or {}}, path)


def load_checkpoint(path: str | Path, device: str = "cpu",
                    expect_kind: str | None = None) -> tuple[LlamaModel, CharTokenizer, dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found (train one with `infscale tts train`)")
    ckpt = load_weights(path)
    if expect_kind and ckpt.get("kind") != expect_kind:
        raise InputError(f"{path}: checkpoint kind is {ckpt.get('kind')!r}, expected {expect_kind!r}")
    model = LlamaModel(TransformerShape.from_dict(ckpt["shape"]))
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, CharTokenizer(), ckpt


class TorchGenerator:
    """Samples from a `LlamaModel` checkpoint (default: the bundled arithmetic policy).

    ``prefix_cache_mb`` bounds the prefix K/V store (0 turns it off); it is cleared whenever the weights change.
    """

    name = "torch"

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", seed: int = 0,
                 model: LlamaModel | None = None, threads: int | None = None,
                 prefix_cache_mb: float = 64.0) -> None:
        if threads:
            torch.set_num_threads(threads)
        if model is None:
            model, self.tokenizer, _ = load_checkpoint(checkpoint or DEFAULT_POLICY, device, expect_kind="policy")
        else:
            self.tokenizer = CharTokenizer()
        self.model = model.eval()
        self.shape: TransformerShape = model.shape
        self.device = next(model.parameters()).device
        self.rng = torch.Generator()  # keys of unseeded calls' rows (a seeded call keys every row itself)
        self.rng.manual_seed(seed)
        if prefix_cache_mb < 0:
            raise InputError(f"torch generator: prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        tokens = store_tokens(model, prefix_cache_mb)
        self.prefix_store: PrefixStore | None = PrefixStore(tokens) if tokens > 0 else None
        # the scheduler's defaults: batches that fill the device (on a CPU a batch of a few hundred rows already
        # amortises the per-step overhead; benchmarks/bench_tts_throughput.py), K/V within half its free memory

        self.max_batch_rows = 1024 if self.device.type == "cuda" else 512
        self.kv_budget_bytes = 0.5 * available_bytes(str(self.device))
        self.kv_bytes_per_elem = float(next(model.parameters()).element_size())

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], n: Sequence[int] | int, params: SamplingParams,
                 seeds: Sequence[int] | None = None) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        keys_in = as_seeds(prompts, seeds)
        out: list[list[Completion]] = [[] for _ in prompts]
        # identical prompts (tree search: siblings that wrote the same step) share one prefilled row
        distinct: dict[str, int] = {}
        for i, c in enumerate(counts):
            if c > 0:
                distinct.setdefault(prompts[i], len(distinct))
        if not distinct:
            return out
        tok, dev, ctx = self.tokenizer, self.device, self.shape.context_length
        enc = [tok.encode(p, bos=True) for p in distinct]
        lens = [len(e) for e in enc]
        P = max(lens)
        if P >= ctx:
            raise ValueError(f"prompt of {P} tokens does not fit the model's context of {ctx}")
        # every row's own limit: what it asked for, cut to the room its own prompt leaves in the context
        limit_of = [min(params.max_tokens, ctx - L) for L in lens]
        max_new = max(limit_of)
        store = self.prefix_store
        if store is not None:
            store.sync(self.model)
        pre = prefill(self.model, enc, store, max_new, tok.pad_id)
        # one row per sample, grouped by distinct prompt: (request index, sample index, distinct row)
        samples = sorted(((i, j, distinct[prompts[i]]) for i, c in enumerate(counts) for j in range(c)),
                         key=lambda q: q[2])  # stable: samples of one distinct row are contiguous, in order
        owners = [u for _, _, u in samples]
        keys = row_keys([(i, j) for i, j, _ in samples], keys_in, self.rng).to(dev)
        owner = torch.tensor(owners, device=dev)
        cache = pre.cache.select(owner)
        valid = pre.valid[owner]
        logits = pre.logits[owner, -1]
        B = len(owners)
        pos0 = torch.tensor(lens, device=dev)[owner][:, None]  # each row's own position of its first new token
        limits = [limit_of[u] for u in owners]
        live = list(range(B))  # sample index of each cache row (finished rows stay until the batch is compacted)
        alive = B
        ids: list[list[int]] = [[] for _ in range(B)]
        texts = [""] * B
        logp = [0.0] * B
        reason: list[FinishReason | None] = [None] * B
        stop = params.stop
        longest_stop = max((len(s) for s in stop), default=0)
        for step in range(max_new):
            nxt, lp = sample_rows(logits, params, keys, step)
            nxt_l, lp_l = nxt.tolist(), lp.tolist()
            for j, s in enumerate(live):
                if reason[s] is not None:
                    continue
                t = nxt_l[j]
                ids[s].append(t)
                logp[s] += lp_l[j]
                if t == tok.eos_id:
                    reason[s] = "eos"
                else:
                    texts[s] += tok.token_text(t)
                    if stop and any(x in texts[s][-(longest_stop + 8):] for x in stop):
                        reason[s] = "stop"
                    elif step == limits[s] - 1:
                        reason[s] = "length"
                if reason[s] is not None:
                    alive -= 1
                    self._remember(cache, j, P - lens[owners[s]], P + step, enc[owners[s]] + ids[s][:step])
            if not alive:
                break
            if 2 * alive <= len(live):  # compact: drop finished rows once they are half the batch
                keep = [j for j, s in enumerate(live) if reason[s] is None]
                index = torch.tensor(keep, device=dev)
                cache = cache.select(index)
                valid, nxt, pos0, keys = valid[index], nxt[index], pos0[index], keys[index]
                live = [live[j] for j in keep]
            pos = P + step
            valid[:, pos] = True
            logits = self.model(nxt[:, None], cache=cache, attn_mask=valid[:, None, None, :pos + 1],
                                positions=pos0 + step)[:, -1]
        for s, (i, _, u) in enumerate(samples):
            text = cut_at_stop(texts[s], stop)[0] if reason[s] == "stop" else texts[s]
            out[i].append(Completion(text=text, prompt_tokens=lens[u], completion_tokens=len(ids[s]),
                                     finish_reason=reason[s] or "length",
                                     logprob=logp[s] if params.logprobs else None))
        return out

    def _remember(self, cache: KVCache, row: int, start: int, end: int, ids: list[int]) -> None:
        """Keep a finished row's K/V (slots start..end-1, every token it fed) in the prefix store."""
        if self.prefix_store is not None:
            self.prefix_store.insert(ids, cache.k[:, row, :, start:end], cache.v[:, row, :, start:end])
