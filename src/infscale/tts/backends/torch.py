"""The project's own torch generator: `LlamaModel` + `KVCache`, batched sampling with prefix K/V reuse.

One ``generate`` call handles many prompts with different sample counts (tree search asks for a few children of many
nodes at once): the distinct prompts are left-padded and prefilled together once, the cache rows are forked to one per
sample (``KVCache.select``), then all samples decode in one batch. Every row keeps its own unpadded rotary positions
and a key mask hides the padding, so each row gets exactly its unpadded computation. Rows that hit a stop string,
end-of-sequence or ``max_tokens`` stop; the batch is compacted once half its rows are done. A finished row's K/V goes
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
from infscale.train.model import KVCache, LlamaModel, load_weights
from infscale.tts.backends.prefix_cache import PrefixStore, prefill, store_tokens
from infscale.tts.core.generation import Completion, FinishReason, SamplingParams, as_counts, cut_at_stop
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
        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(seed)
        if prefix_cache_mb < 0:
            raise InputError(f"torch generator: prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        tokens = store_tokens(model, prefix_cache_mb)
        self.prefix_store: PrefixStore | None = PrefixStore(tokens) if tokens > 0 else None

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], n: Sequence[int] | int,
                 params: SamplingParams) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        if params.seed is not None:
            self.rng.manual_seed(params.seed)
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
        max_new = min(params.max_tokens, ctx - P)
        store = self.prefix_store
        if store is not None:
            store.sync(self.model)
        pre = prefill(self.model, enc, store, max_new, tok.pad_id)
        # fork one row per sample, in request order
        per_row = [0] * len(enc)
        requests: list[tuple[int, int]] = []  # (request index, distinct row) per sample
        for i, c in enumerate(counts):
            if c > 0:
                u = distinct[prompts[i]]
                per_row[u] += c
                requests += [(i, u)] * c
        requests.sort(key=lambda q: q[1])  # stable: samples of one distinct row are contiguous
        owner = torch.repeat_interleave(torch.arange(len(enc), device=dev), torch.tensor(per_row, device=dev))
        cache = pre.cache.select(owner)
        valid = pre.valid[owner]
        logits = pre.logits[owner, -1]
        owners = owner.tolist()
        B = len(owners)
        pos0 = torch.tensor(lens, device=dev)[owner][:, None]  # each row's own position of its first new token
        live = list(range(B))  # sample index of each cache row (finished rows stay until the batch is compacted)
        alive = B
        ids: list[list[int]] = [[] for _ in range(B)]
        texts = [""] * B
        logp = [0.0] * B
        reason: list[FinishReason | None] = [None] * B
        stop = params.stop
        longest_stop = max((len(s) for s in stop), default=0)
        for step in range(max_new):
            nxt, lp = self._sample(logits, params)
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
                    elif step == max_new - 1:
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
                valid, nxt, pos0 = valid[index], nxt[index], pos0[index]
                live = [live[j] for j in keep]
            pos = P + step
            valid[:, pos] = True
            logits = self.model(nxt[:, None], cache=cache, attn_mask=valid[:, None, None, :pos + 1],
                                positions=pos0 + step)[:, -1]
        for s, (i, u) in enumerate(requests):
            text = cut_at_stop(texts[s], stop)[0] if reason[s] == "stop" else texts[s]
            out[i].append(Completion(text=text, prompt_tokens=lens[u], completion_tokens=len(ids[s]),
                                     finish_reason=reason[s] or "length",
                                     logprob=logp[s] if params.logprobs else None))
        return out

    def _remember(self, cache: KVCache, row: int, start: int, end: int, ids: list[int]) -> None:
        """Keep a finished row's K/V (slots start..end-1, every token it fed) in the prefix store."""
        if self.prefix_store is not None:
            self.prefix_store.insert(ids, cache.k[:, row, :, start:end], cache.v[:, row, :, start:end])

    def _sample(self, logits: torch.Tensor, params: SamplingParams) -> tuple[torch.Tensor, torch.Tensor]:
        logits = logits.float()
        if params.temperature == 0:
            nxt = logits.argmax(-1)
            lp = torch.log_softmax(logits, -1).gather(-1, nxt[:, None])[:, 0]
            return nxt, lp
        logprobs = torch.log_softmax(logits / params.temperature, -1)
        probs = logprobs.exp()
        if params.top_p < 1.0:
            sp, si = probs.sort(-1, descending=True)
            drop = sp.cumsum(-1) - sp > params.top_p
            sp = sp.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, si, sp)
        nxt = torch.multinomial(probs, 1, generator=self.rng)[:, 0]
        return nxt, logprobs.gather(-1, nxt[:, None])[:, 0]
