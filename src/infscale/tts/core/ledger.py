"""An honest FLOPs ledger for one problem, priced from the models' `TransformerShape`s (docs/references.md §2-§3).

Policy, for a request that samples ``n`` continuations of a prefix of ``p`` tokens, ``c`` of which are already in
the KV cache (a radix/prefix cache as in SGLang or vLLM; tree search: the whole path was produced earlier):
- prefill with prefix caching: ``flops_prefill(p - c, cached=c)`` once per request (the ``n`` samples share it);
- prefill without caching: ``n * flops_prefill(p)`` (every sequence re-processes its whole prefix);
- decode: ``flops_decode(p, g)`` per completion of ``g`` tokens (attention over the growing KV context included).
Reward model: ``flops_prefill(q)`` per scored sequence of ``q`` tokens (each scoring re-reads the whole sequence);
an exact verifier costs nothing. Wu et al.'s accounting: ``2 * N_policy * generated tokens`` (reward model not counted).
Memory traffic: the decode's ``k``-th new token of a completion reads the K/V of its ``p + k`` tokens (2 bytes per
element), ``kv_cache_bytes(1) * (g p + g (g + 1) / 2)`` per completion, the term that makes long search memory-bound
(Kinetics, Sadhukhan et al. 2025).
"""

from __future__ import annotations

from collections.abc import Sequence

from infscale.arch import TransformerShape
from infscale.tts.core.generation import Completion
from infscale.tts.core.records import FlopsLedger


class LedgerBuilder:
    """Accumulates one problem's FLOPs as requests are made; ``freeze()`` returns the `FlopsLedger`."""

    def __init__(self, policy: TransformerShape, reward: TransformerShape | None = None) -> None:
        self.policy, self.reward = policy, reward
        self.n_policy = policy.n_params
        self.prefill = 0.0
        self.prefill_nocache = 0.0
        self.decode = 0.0
        self.reward_flops = 0.0
        self.generated_tokens = 0
        self.prompt_tokens = 0
        self.reward_tokens = 0
        self.kv_read_bytes = 0.0
        self._kv_per_token = policy.kv_cache_bytes(1)

    def add_request(self, completions: Sequence[Completion], cached_tokens: int = 0) -> None:
        """One prefix and its samples. ``cached_tokens``: prefix tokens already in the KV cache."""
        if not completions:
            return
        p = completions[0].prompt_tokens
        c = min(max(cached_tokens, 0), p)
        self.prefill += self.policy.flops_prefill(p - c, cached=c)
        self.prompt_tokens += p - c
        for comp in completions:
            self.prefill_nocache += self.policy.flops_prefill(comp.prompt_tokens)
            self.decode += self.policy.flops_decode(comp.prompt_tokens, comp.completion_tokens)
            self.generated_tokens += comp.completion_tokens
            g = comp.completion_tokens
            self.kv_read_bytes += self._kv_per_token * (g * comp.prompt_tokens + g * (g + 1) / 2)

    def add_reward(self, n_tokens: Sequence[int]) -> None:
        """Reward-model passes over sequences of ``n_tokens`` tokens each (nothing for a verifier)."""
        self.reward_tokens += int(sum(n_tokens))
        if self.reward is not None:
            self.reward_flops += sum(self.reward.flops_prefill(q) for q in n_tokens)

    def freeze(self) -> FlopsLedger:
        return FlopsLedger(
            policy_prefill_flops=self.prefill, policy_prefill_nocache_flops=self.prefill_nocache,
            policy_decode_flops=self.decode, reward_flops=self.reward_flops,
            wu2025_flops=2.0 * self.n_policy * self.generated_tokens, generated_tokens=self.generated_tokens,
            prompt_tokens=self.prompt_tokens, reward_tokens=self.reward_tokens,
            policy_kv_read_bytes=self.kv_read_bytes)
