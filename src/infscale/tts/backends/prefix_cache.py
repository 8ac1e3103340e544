"""Prefix K/V reuse for the own torch models: a bounded store of per-sequence keys/values and a prefill that reads it.

Tree search asks, at depth k + 1, for continuations of prompts that are a parent's prompt plus the parent's step, and
the reward model scores paths that are a scored parent plus one step. `PrefixStore` keeps the K/V of sequences the
model already ran (keyed by their token ids, found by the longest common token prefix in a token trie) so that only the
new tail is computed (`prefill`). Keys are stored as the model rotated them at each token's own position (0, 1, ...)
and every row runs with its own unpadded positions (``LlamaModel.forward(positions=(B, T))``), so a cached key is valid
at whatever slot of a padded batch it is copied to: no re-rotation, no drift.

Bounded: least recently used sequences are dropped beyond ``max_tokens`` cached tokens; a sequence that is a strict
prefix of a newer one is dropped at once (the newer one holds the same K/V). Safe: the store clears itself when the
model's weights change (`PrefixStore.sync`, a fingerprint of every parameter's storage and in-place version counter).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from infscale.train.model import KVCache, LlamaModel


@dataclass(frozen=True, eq=False, slots=True)
class CachedSeq:
    """One cached sequence: its ids, K/V of every token (n_layers, n_kv, len, hs), optional per-token values."""

    ids: tuple[int, ...]
    k: torch.Tensor
    v: torch.Tensor
    extra: Any = None
    """What the caller keeps per position besides K/V (sliced by position: a list or a tensor)."""


@dataclass(eq=False, slots=True)
class _TrieNode:
    children: dict[int, _TrieNode] = field(default_factory=dict)
    seq: CachedSeq | None = None
    """Some cached sequence whose ids pass through this node."""
    end: CachedSeq | None = None
    """The cached sequence that ends exactly here."""


class PrefixStore:
    """Cached K/V of whole token sequences, looked up by longest common prefix; LRU-bounded by total tokens."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.clear()
        self._fingerprint: tuple[tuple[int, int], ...] | None = None

    def clear(self) -> None:
        self._root = _TrieNode()
        self._lru: OrderedDict[int, CachedSeq] = OrderedDict()
        self.n_tokens = 0
        self.hit_tokens = 0
        """Prompt tokens served from the store since the last clear (diagnostic)."""

    def __len__(self) -> int:
        return len(self._lru)

    def sync(self, model: torch.nn.Module) -> None:
        """Forget everything if any weight of ``model`` changed (in place or replaced) since the last call."""
        fp = tuple((p.data_ptr(), p._version) for p in model.parameters())
        if fp != self._fingerprint:
            self.clear()
            self._fingerprint = fp

    def match(self, ids: Sequence[int]) -> tuple[CachedSeq | None, int]:
        """The cached sequence sharing the longest prefix with ``ids``, and that prefix's length (0: none)."""
        node, depth = self._root, 0
        for t in ids:
            child = node.children.get(t)
            if child is None:
                break
            node, depth = child, depth + 1
        if depth == 0:
            return None, 0
        seq = node.seq
        assert seq is not None
        self._lru.move_to_end(id(seq))
        return seq, depth

    def insert(self, ids: Sequence[int], k: torch.Tensor, v: torch.Tensor, extra: Any = None) -> None:
        """Cache ``ids`` with a copy of K/V (n_layers, n_kv, len(ids), hs) (views into a batch cache are fine).

        A sequence already held, or a prefix of one held, only refreshes that one (nothing is copied)."""
        if not ids or len(ids) > self.max_tokens:
            return
        node = self._root
        for t in ids:
            node = node.children.get(t)  # type: ignore[assignment]
            if node is None:
                break
        else:
            held = node.end if node.end is not None else node.seq
            assert held is not None
            self._lru.move_to_end(id(held))
            return
        seq = CachedSeq(tuple(ids), k.clone(), v.clone(), extra)
        node, covered = self._root, []
        for t in seq.ids:
            if node.end is not None:
                covered.append(node.end)  # a strict prefix of the new sequence: its K/V is inside the new one
            child = node.children.get(t)
            if child is None:
                child = node.children[t] = _TrieNode()
            node = child
            node.seq = seq
        node.end = seq
        self._lru[id(seq)] = seq
        self.n_tokens += len(seq.ids)
        for old in covered:
            self._remove(old)
        while self.n_tokens > self.max_tokens:
            self._remove(next(iter(self._lru.values())))

    def _remove(self, seq: CachedSeq) -> None:
        path = [self._root]
        for t in seq.ids:
            path.append(path[-1].children[t])
        for depth in range(len(seq.ids), 0, -1):
            node, parent = path[depth], path[depth - 1]
            if node.end is seq:
                node.end = None
            if not node.children and node.end is None:
                del parent.children[seq.ids[depth - 1]]
            elif node.seq is seq:
                node.seq = node.end if node.end is not None else next(iter(node.children.values())).seq
        del self._lru[id(seq)]
        self.n_tokens -= len(seq.ids)


def store_tokens(model: LlamaModel, megabytes: float) -> int:
    """How many tokens of K/V fit in ``megabytes`` for ``model`` (all layers, keys and values, its dtype)."""
    s = model.shape
    elem = next(model.parameters()).element_size()
    return int(megabytes * 2**20 // (2 * s.n_layers * s.kv_heads * s.hd * elem))


@dataclass(frozen=True, eq=False, slots=True)
class Prefill:
    """A prefilled, left-padded batch: row r's prompt ends at slot ``width - 1``; decode slots follow."""

    cache: KVCache
    valid: torch.Tensor
    """(U, width + extra slots) bool: which cache slots hold a row's real tokens."""
    logits: torch.Tensor
    """(U, S, V) logits of the last S prompt positions of every row (the computed window)."""
    width: int
    """P: slots taken by the longest prompt."""
    window: int
    """S: prompt positions computed in this call (the rest came from the store)."""
    hits: list[tuple[CachedSeq | None, int]]
    """Per row: the cached sequence used and how many of its leading tokens the row shares with it."""


def prefill(model: LlamaModel, seqs: Sequence[Sequence[int]], store: PrefixStore | None, extra_slots: int,
            pad_id: int) -> Prefill:
    """Run ``seqs`` through ``model`` into a fresh `KVCache`, reusing stored K/V of their longest cached prefixes.

    Row r (length L_r) is left-padded so its last token sits at slot P - 1 and carries its unpadded positions
    0..L_r-1. With c_r tokens in the store, only the last S = max_r(L_r - c_r) slots are computed (every row's own
    tokens there, so a row with a longer cached prefix recomputes a few of them in the same batched call); slots before
    the window are copied from the store. At least the last token of every row is computed (its logits are needed).
    """
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    U = len(seqs)
    lens = [len(s) for s in seqs]
    P = max(lens)
    hits = [store.match(s[:-1]) if store is not None else (None, 0) for s in seqs]
    S = max(L - c for L, (_, c) in zip(lens, hits, strict=True))
    cache = KVCache.empty(model.shape, U, P + extra_slots, dev, dtype)
    if P > S:  # slots before the window that no row fills (its padding) are masked, yet must hold finite numbers:
        cache.k[:, :, :, :P - S].zero_()  # attention weighs a masked slot by 0, and 0 * NaN garbage is NaN
        cache.v[:, :, :, :P - S].zero_()
    valid = torch.zeros((U, P + extra_slots), dtype=torch.bool, device=dev)
    rows: list[list[int]] = []
    for r, (s, L, (seq, c)) in enumerate(zip(seqs, lens, hits, strict=True)):
        off = P - L
        valid[r, off:P] = True
        keep = L - S  # leading tokens taken from the store
        if keep > 0:
            assert seq is not None and c >= keep
            cache.k[:, r, :, off:off + keep] = seq.k[:, :, :keep]
            cache.v[:, r, :, off:off + keep] = seq.v[:, :, :keep]
            if store is not None:
                store.hit_tokens += keep
        rows.append([pad_id] * max(0, -keep) + list(s[max(0, keep):]))
    ids = torch.tensor(rows, dtype=torch.long, device=dev)
    lens_t = torch.tensor(lens, dtype=torch.long, device=dev)
    positions = (torch.arange(S, device=dev)[None] + (lens_t - S)[:, None]).clamp(min=0)
    q_slot = torch.arange(P - S, P, device=dev)[:, None]
    k_slot = torch.arange(P, device=dev)[None]
    # causal over real tokens; every query also sees itself, so a pad query never has an empty row
    mask = ((k_slot <= q_slot)[None] & valid[:, None, :P]) | (k_slot == q_slot)[None]
    cache.length = P - S
    logits = model(ids, cache=cache, attn_mask=mask[:, None], positions=positions)
    return Prefill(cache=cache, valid=valid, logits=logits, width=P, window=S, hits=hits)
