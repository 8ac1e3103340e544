"""Transformer shapes: exact parameter counts, FLOPs per token and KV-cache bytes.

Pure (standard library + numpy). Every quantity is a closed form of the shape, so it can be checked against
published counts (see tests/test_arch.py) and evaluated on numpy arrays of shapes (see `param_count`).

Conventions (docs/references.md §3, Kaplan et al. 2020):
- ``d_attn = n_heads * head_dim``; K and V projections are ``d_model x (n_kv_heads * head_dim)`` (GQA).
- A SwiGLU FFN has three ``d_model x d_ff`` matrices, a GELU FFN two.
- "matmul parameters" are the weights that multiply activations: every non-embedding matrix plus the LM head.
  The input embedding is a lookup (no FLOPs); with tied embeddings the LM head reuses it but still costs FLOPs.
- One multiply-add = 2 FLOPs. Attention over ``t`` keys costs ``4 * n_layers * t * d_attn`` FLOPs per token
  (``Q K^T`` and ``A V``); causal training/prefill averages ``t`` over positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from infscale.errors import InputError
from infscale.registry import Registry

FfnKind = Literal["swiglu", "gelu"]
NormKind = Literal["rmsnorm", "layernorm"]
PositionKind = Literal["rope", "learned", "relative"]

__all__ = [
    "TransformerShape",
    "PRESETS",
    "get_preset",
    "swiglu_hidden",
    "ffn_width",
    "ffn_matrices",
    "parse_shape_spec",
    "param_count",
    "bian2025_params",
    "train_flops_6nd",
    "serving_memory_bytes",
]


def _exact_ints(*values: np.ndarray | int) -> list[np.ndarray]:
    """int64 arrays for grids; for single shapes (all scalars) Python integers, so a count is exact at any size
    (``d1000000000x1000000`` would overflow int64)."""
    if all(np.ndim(v) == 0 for v in values):
        return [np.asarray(int(v), dtype=object) for v in values]
    return [np.asarray(v, dtype=np.int64) for v in values]


FFN_MATRICES: dict[str, int] = {"swiglu": 3, "gelu": 2}
"""d_model x d_ff matrices per FFN: SwiGLU has gate, up and down; a GELU MLP up and down."""


def ffn_matrices(ffn_kind: str) -> int:
    """Number of d_model x d_ff matrices of an FFN of this kind (the one place this rule is written)."""
    return FFN_MATRICES[ffn_kind]


def ffn_width(d_model: np.ndarray | int, ffn_kind: str = "swiglu", multiple: int = 256) -> np.ndarray:
    """The default FFN width (vectorised, exact integer arithmetic): SwiGLU (open_lm, Bian et al., Llama)
    ``multiple * ceil((8 d / 3) / multiple)``; GELU (GPT-2, Pythia) ``4 d``. The one place the rule is written."""
    (d,) = _exact_ints(d_model)
    width = 4 * d if ffn_kind == "gelu" else multiple * (-(-(8 * d) // (3 * multiple)))
    return width if isinstance(width, np.ndarray) else np.asarray(width, dtype=object)


def ffn_attention_ratio(n_heads: np.ndarray | int, n_kv_heads: np.ndarray | int, head_dim: np.ndarray | int,
                        d_ff: np.ndarray | int, ffn_kind: str = "swiglu") -> np.ndarray:
    """Bian et al. 2025b's MLP-to-attention ratio: a layer's FFN parameters over its attention parameters,
    ``m d d_ff / (2 d d_attn + 2 d d_kv) = m d_ff / (2 head_dim (n_heads + n_kv_heads))`` (m = 3 for SwiGLU).
    Grouped-query attention raises it: fewer KV heads, fewer attention parameters."""
    heads, kv, hd, ff = (np.asarray(v, dtype=np.float64) for v in (n_heads, n_kv_heads, head_dim, d_ff))
    return ffn_matrices(ffn_kind) * ff / (2.0 * hd * (heads + kv))


def swiglu_hidden(d_model: int, multiple: int = 256) -> int:
    """open_lm / Bian et al. SwiGLU width of one d_model: ``multiple * ceil((8 d / 3) / multiple)``."""
    return int(ffn_width(d_model, "swiglu", multiple))


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformerShape:
    """A decoder-only transformer's shape. All counts are exact for the stated conventions."""

    d_model: int
    """Residual stream width."""
    n_layers: int
    """Number of transformer blocks."""
    n_heads: int
    """Query heads."""
    n_kv_heads: int | None = None
    """Key/value heads (GQA); ``None`` means ``n_heads`` (multi-head attention)."""
    d_ff: int | None = None
    """FFN hidden width; ``None`` means the family rule (``swiglu_hidden`` for SwiGLU, ``4 d`` for GELU)."""
    vocab_size: int = 50432
    """Vocabulary size (rows of the embedding)."""
    tied_embeddings: bool = False
    """Whether the LM head shares the input embedding matrix."""
    ffn_kind: FfnKind = "swiglu"
    """``swiglu`` (3 matrices) or ``gelu`` (2 matrices)."""
    context_length: int = 2048
    """Maximum sequence length (training context)."""
    head_dim: int | None = None
    """Per-head width; ``None`` means ``d_model // n_heads``."""
    norm_kind: NormKind = "rmsnorm"
    """``rmsnorm`` (d params) or ``layernorm`` (d, or 2d with bias)."""
    bias: bool = False
    """Biases in linear layers and norms (GPT-2, Pythia)."""
    position: PositionKind = "rope"
    """``learned`` adds a ``context_length x d_model`` position table; ``rope``/``relative`` add no parameters."""

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "vocab_size", "context_length"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"TransformerShape.{name} must be a positive integer, got {value!r}")
        if self.head_dim is None and self.d_model % self.n_heads != 0:
            raise ValueError(
                f"TransformerShape: d_model={self.d_model} is not divisible by n_heads={self.n_heads} "
                "(set head_dim explicitly for non-standard heads)"
            )
        if self.head_dim is not None and self.head_dim <= 0:
            raise ValueError(f"TransformerShape.head_dim must be positive, got {self.head_dim}")
        kv = self.kv_heads
        if kv <= 0 or self.n_heads % kv != 0:
            raise ValueError(f"TransformerShape: n_kv_heads={kv} must divide n_heads={self.n_heads}")
        if self.d_ff is not None and self.d_ff <= 0:
            raise ValueError(f"TransformerShape.d_ff must be positive, got {self.d_ff}")
        if self.ffn_kind not in ("swiglu", "gelu"):
            raise ValueError(f"TransformerShape.ffn_kind must be 'swiglu' or 'gelu', got {self.ffn_kind!r}")
        if self.norm_kind not in ("rmsnorm", "layernorm"):
            raise ValueError(f"TransformerShape.norm_kind must be 'rmsnorm' or 'layernorm', got {self.norm_kind!r}")
        if self.position not in ("rope", "learned", "relative"):
            raise ValueError(f"TransformerShape.position must be rope|learned|relative, got {self.position!r}")

    # ----- derived widths -------------------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def hd(self) -> int:
        """Head dimension."""
        return self.d_model // self.n_heads if self.head_dim is None else self.head_dim

    @property
    def d_attn(self) -> int:
        """Width of the attention output (``n_heads * head_dim``)."""
        return self.n_heads * self.hd

    @property
    def d_kv(self) -> int:
        """Width of K (and of V): ``n_kv_heads * head_dim``."""
        return self.kv_heads * self.hd

    @property
    def ffn_hidden(self) -> int:
        if self.d_ff is not None:
            return self.d_ff
        return int(ffn_width(self.d_model, self.ffn_kind))

    @property
    def aspect_ratio(self) -> float:
        """Bian et al.'s ``R = d_model / n_layers``."""
        return self.d_model / self.n_layers

    # ----- parameters --------------------------------------------------------------------------------------
    @property
    def n_params_per_layer(self) -> int:
        return int(
            param_count(
                self.d_model, 1, self.d_attn, self.d_kv, self.ffn_hidden, 0,
                ffn_matrices=ffn_matrices(self.ffn_kind),
                norm_params=self._norm_params(), bias=self.bias, tied=True, final_norm=False,
            )
        )

    def _norm_params(self) -> int:
        if self.norm_kind == "layernorm" and self.bias:
            return 2
        return 1

    @property
    def n_params_embedding(self) -> int:
        """Input embedding + (untied) LM head + learned position table."""
        emb = self.vocab_size * self.d_model * (1 if self.tied_embeddings else 2)
        if self.position == "learned":
            emb += self.context_length * self.d_model
        return emb

    @property
    def n_params_non_embedding(self) -> int:
        """All parameters except the embedding, LM head and position table (Kaplan's N)."""
        return self.n_layers * self.n_params_per_layer + self._norm_params() * self.d_model

    @property
    def n_params(self) -> int:
        """Total parameter count."""
        return self.n_params_non_embedding + self.n_params_embedding

    @property
    def n_params_matmul(self) -> int:
        """Weights that multiply activations per token: non-embedding matrices + LM head (biases/norms excluded)."""
        ffn_m = ffn_matrices(self.ffn_kind)
        per_layer = 2 * self.d_model * self.d_attn + 2 * self.d_model * self.d_kv + ffn_m * self.d_model * self.ffn_hidden
        return self.n_layers * per_layer + self.vocab_size * self.d_model

    # ----- FLOPs -------------------------------------------------------------------------------------------
    def flops_decode_token(self, context: int) -> float:
        """Forward FLOPs for one new token attending to ``context`` keys (itself included)."""
        return 2.0 * self.n_params_matmul + 4.0 * self.n_layers * context * self.d_attn

    def flops_prefill(self, n_tokens: int, cached: int = 0) -> float:
        """Forward FLOPs to process ``n_tokens`` new tokens after ``cached`` tokens already in the KV cache.

        Causal: token ``i`` (1-based) attends to ``cached + i`` keys, so the attention term is
        ``4 L d_attn * (s*cached + s(s+1)/2)``.
        """
        s = float(n_tokens)
        return 2.0 * self.n_params_matmul * s + 4.0 * self.n_layers * self.d_attn * (s * cached + s * (s + 1) / 2)

    def flops_decode(self, prompt_tokens: int, new_tokens: int) -> float:
        """Forward FLOPs for ``new_tokens`` decode steps after a prompt of ``prompt_tokens`` (KV cache in use)."""
        return self.flops_prefill(new_tokens, cached=prompt_tokens)

    def flops_train_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward = 3x forward), causal average over ``seq_len``."""
        s = self.context_length if seq_len is None else seq_len
        return 3.0 * self.flops_prefill(s) / s

    # ----- memory ------------------------------------------------------------------------------------------
    def kv_cache_bytes(self, context: int, batch: int = 1, bytes_per_elem: float = 2.0) -> float:
        """Bytes of K and V for ``batch`` sequences of ``context`` tokens."""
        return batch * 2.0 * self.n_layers * context * self.d_kv * bytes_per_elem

    def weight_bytes(self, bytes_per_weight: float = 2.0) -> float:
        return self.n_params * bytes_per_weight

    def serving_bytes(self, context: int, batch: int = 1, bytes_per_elem: float = 2.0) -> float:
        """Weights plus the KV cache of ``batch`` sequences of ``context`` tokens (`serving_memory_bytes`)."""
        return float(serving_memory_bytes(self.n_params, self.n_layers, self.d_kv, context, batch, bytes_per_elem))

    def decode_step_bytes(self, context: int, batch: int = 1, bytes_per_weight: float = 2.0,
                          kv_bytes: float = 2.0) -> float:
        """Bytes moved by one decode step: every matmul weight once, plus the KV cache read."""
        return self.n_params_matmul * bytes_per_weight + self.kv_cache_bytes(context, batch, kv_bytes)

    # ----- misc --------------------------------------------------------------------------------------------
    def with_(self, **changes: object) -> TransformerShape:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    @property
    def label(self) -> str:
        """``d512x8``; a grouped-query shape adds its KV heads (``d512x8kv4``), so that shapes differing only in them
        are told apart (records, calibration, ``--fit-on``)."""
        kv = f"kv{self.kv_heads}" if self.kv_heads != self.n_heads else ""
        return f"d{self.d_model}x{self.n_layers}{kv}"

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TransformerShape:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"TransformerShape: unknown field(s) {sorted(unknown)}")
        return cls(**data)  # type: ignore[arg-type]

    @classmethod
    def open_lm(cls, d_model: int, n_layers: int, n_heads: int, *, vocab_size: int = 50432,
                d_ff: int | None = None, context_length: int = 2048) -> TransformerShape:
        """An open_lm shape as in Bian et al.: SwiGLU, untied embeddings, one d-vector per norm, no biases."""
        return cls(d_model=d_model, n_layers=n_layers, n_heads=n_heads, vocab_size=vocab_size, d_ff=d_ff,
                   context_length=context_length, head_dim=d_model // n_heads if d_model % n_heads == 0 else None)


def param_count(
    d_model: np.ndarray | int,
    n_layers: np.ndarray | int,
    d_attn: np.ndarray | int,
    d_kv: np.ndarray | int,
    d_ff: np.ndarray | int,
    vocab_size: np.ndarray | int,
    *,
    ffn_matrices: int = 3,
    norm_params: int = 1,
    bias: bool = False,
    tied: bool = False,
    final_norm: bool = True,
) -> np.ndarray:
    """Vectorised exact parameter count (no learned position table).

    Per layer: ``2 d d_attn + 2 d d_kv + m d d_ff`` matrices, two norms of ``norm_params * d``, and with ``bias``
    the biases of Q, K, V, O and the FFN. Plus embeddings ``V d`` (x2 untied) and a final norm.
    """
    d, L, da, dkv, ff, V = _exact_ints(d_model, n_layers, d_attn, d_kv, d_ff, vocab_size)
    per_layer = 2 * d * da + 2 * d * dkv + ffn_matrices * d * ff + 2 * norm_params * d
    if bias:
        # q, k, v biases + output bias + FFN biases (the up/gate matrices and the down matrix)
        per_layer = per_layer + da + 2 * dkv + d + (ffn_matrices - 1) * ff + d
    total = L * per_layer + V * d * (1 if tied else 2)
    if final_norm:
        total = total + norm_params * d
    return total if isinstance(total, np.ndarray) else np.asarray(total, dtype=object)


def serving_memory_bytes(n_params: np.ndarray | int, n_layers: np.ndarray | int, d_kv: np.ndarray | int,
                         context: int, batch: int = 1, bytes_per_elem: float = 2.0) -> np.ndarray:
    """Device memory a served model needs (vectorised): every weight once plus the K and V of ``batch`` sequences of
    ``context`` tokens, ``N b + 2 L d_kv context batch b`` (activations and the runtime's own pool not counted)."""
    n = np.asarray(n_params, dtype=np.float64)
    kv = 2.0 * np.asarray(n_layers, dtype=np.float64) * np.asarray(d_kv, dtype=np.float64) * context * batch
    return (n + kv) * bytes_per_elem


def bian2025_params(d_model: np.ndarray | int, n_layers: np.ndarray | int, vocab_size: int = 50432) -> np.ndarray:
    """Bian et al.'s N: ``2 V d + L (4 d^2 + 3 d h + 2 d) + d`` with ``h = 256 ceil(8d/3/256)``."""
    d = np.asarray(d_model, dtype=np.int64)
    return param_count(d, n_layers, d, d, ffn_width(d), vocab_size)


def train_flops_6nd(n_params: float, n_tokens: float) -> float:
    """The standard training-compute approximation ``C = 6 N D``."""
    return 6.0 * n_params * n_tokens


PRESETS: Registry[TransformerShape] = Registry("shape preset", normalize=str.lower)
for _name, _shape in {
    # GPT-2 small: published 124,439,808 parameters (tied wte, learned wpe, biases, LayerNorm)
    "gpt2-124m": TransformerShape(
        d_model=768, n_layers=12, n_heads=12, d_ff=3072, vocab_size=50257, tied_embeddings=True,
        ffn_kind="gelu", context_length=1024, norm_kind="layernorm", bias=True, position="learned",
    ),
    # Pythia-1.4B: published 1,414,647,808 total, 1,208,602,624 non-embedding
    "pythia-1.4b": TransformerShape(
        d_model=2048, n_layers=24, n_heads=16, d_ff=8192, vocab_size=50304, ffn_kind="gelu",
        norm_kind="layernorm", bias=True, context_length=2048,
    ),
    # Llama-2-7B: published 6,738,415,616
    "llama-2-7b": TransformerShape(
        d_model=4096, n_layers=32, n_heads=32, d_ff=11008, vocab_size=32000, context_length=4096,
    ),
    # Llama-3-8B: published 8,030,261,248 (GQA with 8 KV heads)
    "llama-3-8b": TransformerShape(
        d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=128256, context_length=8192,
    ),
    # Chinchilla-70B (Hoffmann et al. Table 4): d 8192, 80 layers, 64 heads of 128, FFN 4d. The paper's label is
    # "70B"; the shape as published gives 64.7B with a GELU-style 2-matrix FFN (see tests).
    "chinchilla-70b": TransformerShape(
        d_model=8192, n_layers=80, n_heads=64, d_ff=32768, vocab_size=32000, ffn_kind="gelu",
        context_length=2048, position="relative",
    ),
    # Morph-1B (Bian et al.): d 3072, 12 layers, 16 heads, FFN 8192; N = 1,668,885,504
    "morph-1b": TransformerShape.open_lm(3072, 12, 16),
    # Open-LM-1B baseline (Bian et al.): d 2048, 24 layers
    "open-lm-1b": TransformerShape.open_lm(2048, 24, 16),
}.items():
    PRESETS.register(_name, _shape)


def get_preset(name: str) -> TransformerShape:
    """A preset shape by name (case-insensitive); an unknown name is an `InputError` listing the known ones."""
    return PRESETS.get(name.strip())


_SPEC = re.compile(r"^d(\d+)x(\d+)(?:h(\d+))?(?:kv(\d+))?(?:f(\d+))?(?:v(\d+))?$")


def parse_shape_spec(spec: str, *, vocab_size: int | None = None, context_length: int = 2048) -> TransformerShape:
    """A `TransformerShape` from ``d256x4[hN][kvN][fN][vN]`` or a preset name; bad specs are `InputError`s.

    ``d256x4`` is d_model 256 with 4 layers, optionally followed by ``h4`` (heads), ``kv2`` (KV heads), ``f688`` (FFN
    width) and ``v4096`` (vocabulary). Defaults: ``n_heads = max(1, d_model // 64)``, the SwiGLU width rule,
    vocabulary 50432 (or ``vocab_size``).
    """
    text = spec.strip().lower()
    if text in PRESETS:
        shape = PRESETS.get(text)
        return shape if vocab_size is None else shape.with_(vocab_size=vocab_size)
    m = _SPEC.match(text)
    if not m:
        raise InputError(f"shape {spec!r}: expected dDxL[hH][kvK][fF][vV] (e.g. d256x4h4) or a preset "
                         f"({', '.join(PRESETS.names())})")
    d, layers, heads, kv, ff, vocab = (None if g is None else int(g) for g in m.groups())
    heads = heads if heads is not None else max(1, d // 64)
    vocab = vocab if vocab is not None else (vocab_size if vocab_size is not None else 50432)
    try:
        return TransformerShape(d_model=d, n_layers=layers, n_heads=heads, n_kv_heads=kv, d_ff=ff, vocab_size=vocab,
                                context_length=context_length)
    except ValueError as exc:
        raise InputError(f"shape {spec!r}: {exc}") from None
