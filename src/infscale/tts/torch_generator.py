"""The project's own torch generator: `LlamaModel` + `KVCache`, batched sampling with shared-prefix prefill.

One ``generate`` call handles many prompts with different sample counts (tree search asks for a few children of many
nodes at once): the distinct prompts are left-padded and prefilled together once, the cache rows are forked to one per
sample (``KVCache.select``), then all samples decode in one batch; rows that hit a stop string, end-of-sequence or
``max_tokens`` are dropped from the batch. Rotary attention depends only on relative positions, so left padding with
shared positions and a key mask gives each row exactly its unpadded computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from infscale.arch import TransformerShape
from infscale.errors import InputError
from infscale.train.model import KVCache, LlamaModel
from infscale.tts.generation import Completion, FinishReason, SamplingParams, as_counts, cut_at_stop
from infscale.tts.tokenizer import CharTokenizer

MODELS_DIR = Path(__file__).parent / "models"
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
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise InputError(f"{path}: not an infscale checkpoint ({type(exc).__name__})") from None
    if expect_kind and ckpt.get("kind") != expect_kind:
        raise InputError(f"{path}: checkpoint kind is {ckpt.get('kind')!r}, expected {expect_kind!r}")
    model = LlamaModel(TransformerShape.from_dict(ckpt["shape"]))
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, CharTokenizer(), ckpt


class TorchGenerator:
    """Samples from a `LlamaModel` checkpoint (default: the bundled arithmetic policy)."""

    name = "torch"

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", seed: int = 0,
                 model: LlamaModel | None = None, threads: int | None = None) -> None:
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

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], n: Sequence[int] | int,
                 params: SamplingParams) -> list[list[Completion]]:
        counts = as_counts(prompts, n)
        if params.seed is not None:
            self.rng.manual_seed(params.seed)
        out: list[list[Completion]] = [[] for _ in prompts]
        active = [i for i, c in enumerate(counts) if c > 0]
        if not active:
            return out
        tok, dev, ctx = self.tokenizer, self.device, self.shape.context_length
        enc = [tok.encode(prompts[i], bos=True) for i in active]
        lens = [len(e) for e in enc]
        P = max(lens)
        if P >= ctx:
            raise ValueError(f"prompt of {P} tokens does not fit the model's context of {ctx}")
        max_new = min(params.max_tokens, ctx - P)
        U = len(active)
        ids = torch.full((U, P), tok.pad_id, dtype=torch.long, device=dev)
        valid = torch.zeros((U, P + max_new), dtype=torch.bool, device=dev)
        for r, e in enumerate(enc):
            ids[r, P - len(e):] = torch.tensor(e, device=dev)
            valid[r, P - len(e):P] = True
        # prefill the distinct prompts once: causal, pads masked (each row may still see itself: no empty rows)
        causal = torch.ones(P, P, dtype=torch.bool, device=dev).tril()
        mask = (causal[None] & valid[:, None, :P]) | torch.eye(P, dtype=torch.bool, device=dev)[None]
        cache = KVCache.empty(self.shape, U, P + max_new, dev, next(self.model.parameters()).dtype)
        logits = self.model(ids, cache=cache, attn_mask=mask[:, None])[:, -1]  # (U, V)
        # fork one row per sample
        owner = torch.repeat_interleave(torch.arange(U, device=dev), torch.tensor([counts[i] for i in active],
                                                                                  device=dev))
        cache = cache.select(owner)
        valid = valid[owner]
        logits = logits[owner]
        B = owner.numel()
        rows = list(range(B))  # live row -> sample index
        owners = owner.tolist()
        texts = [""] * B
        ntok = [0] * B
        logp = [0.0] * B
        reason: list[FinishReason | None] = [None] * B
        stop = params.stop
        longest_stop = max((len(s) for s in stop), default=0)
        for step in range(max_new):
            nxt, lp = self._sample(logits, params)
            nxt_l, lp_l = nxt.tolist(), lp.tolist()
            keep = []
            for j, s in enumerate(rows):
                t = nxt_l[j]
                ntok[s] += 1
                logp[s] += lp_l[j]
                if t == tok.eos_id:
                    reason[s] = "eos"
                    continue
                texts[s] += tok.token_text(t)
                if stop:
                    tail = texts[s][-(longest_stop + 8):]
                    if any(x in tail for x in stop):
                        reason[s] = "stop"
                        continue
                if step == max_new - 1:
                    reason[s] = "length"
                    continue
                keep.append(j)
            if not keep:
                break
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=dev)
                cache = cache.select(index)
                valid = valid[index]
                nxt = nxt[index]
                rows = [rows[j] for j in keep]
            pos = P + step
            valid[:, pos] = True
            logits = self.model(nxt[:, None], cache=cache, attn_mask=valid[:, None, None, :pos + 1])[:, -1]
        for s in range(B):
            i = active[owners[s]]
            text = cut_at_stop(texts[s], stop)[0] if reason[s] == "stop" else texts[s]
            out[i].append(Completion(text=text, prompt_tokens=lens[owners[s]], completion_tokens=ntok[s],
                                     finish_reason=reason[s] or "length",
                                     logprob=logp[s] if params.logprobs else None))
        return out

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
