"""Vectorised enumeration of hardware-friendly transformer shapes within a parameter range.

A `ShapeRules` says which shapes a family allows: ``d_model`` a multiple of 64 or 128, either a fixed set of head counts
(Bian et al. keeps 16 heads at every width) or a set of head widths (Llama: ``head_dim`` in {64, 128}), key/value head counts
that divide the query heads (GQA), and the family's FFN width rule. `enumerate_shapes` builds the full cross product
``d_model x n_layers x heads x kv_heads`` as numpy arrays, drops invalid combinations with masks and keeps the shapes
whose exact parameter count (`infscale.arch.param_count`) falls in ``[min_params, max_params]``. No Python loop runs
per shape, so hundreds of thousands of shapes take a fraction of a second (benchmarks/bench_plan.py).

Pure: numpy and infscale.arch only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from infscale.arch import (
    FFN_MATRICES,
    TransformerShape,
    ffn_attention_ratio,
    ffn_matrices,
    ffn_width,
    param_count,
)
from infscale.registry import Registry

__all__ = [
    "FFN_RULES",
    "FAMILIES",
    "ShapeRules",
    "ShapeGrid",
    "enumerate_shapes",
    "get_family",
    "params_band",
]


# name -> (width rule, number of d_model x d_ff matrices)
FFN_RULES: dict[str, tuple[Callable[[np.ndarray, int], np.ndarray], int]] = {
    kind: (lambda d, multiple, kind=kind: ffn_width(d, kind, multiple), ffn_matrices(kind)) for kind in FFN_MATRICES
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeRules:
    """Which shapes a model family allows. Either ``n_heads`` or ``head_dims`` (or both) restricts the heads."""

    d_model_multiple: int = 128
    """``d_model`` is a multiple of this (64 or 128 keep tensor-core tiles full)."""
    d_model_min: int = 128
    """Smallest ``d_model`` considered."""
    d_model_max: int = 8192
    """Largest ``d_model`` considered."""
    n_layers_min: int = 1
    """Fewest blocks considered."""
    n_layers_max: int = 48
    """Most blocks considered."""
    n_layers_step: int = 1
    """Layer counts are ``n_layers_min, n_layers_min + step, ...``."""
    n_heads: tuple[int, ...] | None = None
    """Allowed query-head counts (``head_dim = d_model / n_heads`` must be an integer); ``None``: any, via ``head_dims``."""
    head_dims: tuple[int, ...] | None = (64, 128)
    """Allowed head widths; ``None``: any width that ``n_heads`` gives."""
    kv_heads: tuple[int, ...] = ()
    """Allowed key/value head counts for GQA (each must divide ``n_heads``); empty: multi-head attention only."""
    include_mha: bool = True
    """Also allow ``n_kv_heads == n_heads`` when ``kv_heads`` is given."""
    ffn_kind: Literal["swiglu", "gelu"] = "swiglu"
    """FFN family: its width rule and matrix count come from `FFN_RULES`."""
    ffn_multiple: int = 256
    """The SwiGLU width is rounded up to a multiple of this."""
    ffn_multipliers: tuple[float, ...] = ()
    """FFN widths searched, as multiples of ``d_model`` (``d_ff = ffn_multiple * ceil(m d / ffn_multiple)``); empty:
    the family's one width rule (8/3 for SwiGLU, 4 for GELU)."""
    vocab_size: int = 50432
    """Vocabulary size (embedding rows)."""
    tied_embeddings: bool = False
    """Whether the LM head shares the input embedding (counted once)."""

    def __post_init__(self) -> None:
        for name in ("d_model_multiple", "d_model_min", "d_model_max", "n_layers_min", "n_layers_max",
                     "n_layers_step", "ffn_multiple", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"ShapeRules.{name} must be a positive integer, got {value!r}")
        if self.d_model_min > self.d_model_max:
            raise ValueError(f"ShapeRules: d_model_min={self.d_model_min} > d_model_max={self.d_model_max}")
        if self.n_layers_min > self.n_layers_max:
            raise ValueError(f"ShapeRules: n_layers_min={self.n_layers_min} > n_layers_max={self.n_layers_max}")
        if self.n_heads is None and self.head_dims is None:
            raise ValueError("ShapeRules: give n_heads or head_dims (or both)")
        for name in ("n_heads", "head_dims", "kv_heads"):
            values = getattr(self, name)
            if values is not None and any(int(v) <= 0 for v in values):
                raise ValueError(f"ShapeRules.{name} must hold positive integers, got {values!r}")
        if any(not (float(m) > 0 and np.isfinite(float(m))) for m in self.ffn_multipliers):
            raise ValueError(f"ShapeRules.ffn_multipliers must hold positive numbers, got {self.ffn_multipliers!r}")
        if self.ffn_kind not in FFN_RULES:
            raise ValueError(f"ShapeRules.ffn_kind must be one of {sorted(FFN_RULES)}, got {self.ffn_kind!r}")

    def with_(self, **changes: object) -> ShapeRules:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)


# Named families (registry, not if-chains). "bian2025" is the open_lm space of Bian et al.: 16 heads at every width, SwiGLU
# rounded to 256, untied embeddings, GPT-NeoX vocabulary. "llama" uses 64/128-wide heads and GQA.
FAMILIES: Registry[ShapeRules] = Registry("shape family", normalize=str.lower)
for _name, _rules in {
    "bian2025": ShapeRules(n_heads=(16,), head_dims=None, d_model_multiple=128, d_model_min=256, d_model_max=8192,
                         n_layers_min=2, n_layers_max=48),
    "llama": ShapeRules(head_dims=(64, 128), kv_heads=(1, 2, 4, 8), d_model_multiple=128, d_model_min=256,
                        d_model_max=16384, n_layers_min=2, n_layers_max=128, vocab_size=32000),
    "gpt": ShapeRules(head_dims=(64, 128), ffn_kind="gelu", d_model_multiple=64, d_model_min=256, d_model_max=12288,
                      n_layers_min=2, n_layers_max=96, vocab_size=50304),
}.items():
    FAMILIES.register(_name, _rules)


def get_family(name: str) -> ShapeRules:
    """Look up a shape family by name."""
    return FAMILIES.get(name)


def params_band(n_params: float, factor: float = 2.0) -> tuple[float, float]:
    """A size class around a nominal count: ``[n / factor, n * factor]`` (Bian et al.'s "1B" shapes span 1.3B-2.1B)."""
    if not n_params > 0 or not factor >= 1.0:
        raise ValueError(f"params_band needs n_params > 0 and factor >= 1, got {n_params!r}, {factor!r}")
    return n_params / factor, n_params * factor


_GRID_FIELDS = ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "n_params")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ShapeGrid:
    """Many shapes as parallel int64 arrays (one entry per shape) sharing vocabulary, embedding tying and FFN kind."""

    d_model: np.ndarray
    n_layers: np.ndarray
    n_heads: np.ndarray
    n_kv_heads: np.ndarray
    head_dim: np.ndarray
    d_ff: np.ndarray
    n_params: np.ndarray
    """Exact total parameters (embeddings included, as Bian et al. counts N)."""
    vocab_size: int = 50432
    tied_embeddings: bool = False
    ffn_kind: Literal["swiglu", "gelu"] = "swiglu"
    label_ffn: bool = False
    """Name the FFN width in labels (the grid searched several)."""

    def __post_init__(self) -> None:
        sizes = {np.shape(getattr(self, f)) for f in _GRID_FIELDS}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ValueError(f"ShapeGrid arrays must be 1-D and of one length, got shapes {sorted(sizes)}")

    def __len__(self) -> int:
        return int(self.d_model.shape[0])

    @property
    def aspect_ratio(self) -> np.ndarray:
        """Bian et al.'s ``R = d_model / n_layers``."""
        return self.d_model / self.n_layers

    @property
    def d_attn(self) -> np.ndarray:
        return self.n_heads * self.head_dim

    @property
    def ffn_ratio(self) -> np.ndarray:
        """Bian et al. 2025b's MLP-to-attention parameter ratio of every shape."""
        return ffn_attention_ratio(self.n_heads, self.n_kv_heads, self.head_dim, self.d_ff, self.ffn_kind)

    @property
    def kv_group(self) -> np.ndarray:
        """Query heads per KV head (1: multi-head attention)."""
        return self.n_heads / self.n_kv_heads

    @property
    def d_kv(self) -> np.ndarray:
        return self.n_kv_heads * self.head_dim

    @property
    def n_params_embedding(self) -> np.ndarray:
        return self.vocab_size * self.d_model * (1 if self.tied_embeddings else 2)

    @property
    def n_params_non_embedding(self) -> np.ndarray:
        return self.n_params - self.n_params_embedding

    def shape(self, i: int) -> TransformerShape:
        """Shape ``i`` as a `TransformerShape` (its ``n_params`` equals ``self.n_params[i]``)."""
        return TransformerShape(
            d_model=int(self.d_model[i]), n_layers=int(self.n_layers[i]), n_heads=int(self.n_heads[i]),
            n_kv_heads=int(self.n_kv_heads[i]), head_dim=int(self.head_dim[i]), d_ff=int(self.d_ff[i]),
            vocab_size=self.vocab_size, tied_embeddings=self.tied_embeddings, ffn_kind=self.ffn_kind,
        )

    def label(self, i: int) -> str:
        kv = "" if self.n_kv_heads[i] == self.n_heads[i] else f" kv{int(self.n_kv_heads[i])}"
        ff = f" f{int(self.d_ff[i])}" if self.label_ffn else ""
        return f"d{int(self.d_model[i])}x{int(self.n_layers[i])} h{int(self.n_heads[i])}{kv}{ff}"

    def take(self, index: np.ndarray | list[int]) -> ShapeGrid:
        """The sub-grid at ``index`` (integer positions or a boolean mask)."""
        idx = np.asarray(index)
        return ShapeGrid(**{f: getattr(self, f)[idx] for f in _GRID_FIELDS}, vocab_size=self.vocab_size,
                         tied_embeddings=self.tied_embeddings, ffn_kind=self.ffn_kind, label_ffn=self.label_ffn)

    def concat(self, other: ShapeGrid) -> ShapeGrid:
        """This grid followed by ``other`` (same vocabulary, tying and FFN kind), duplicates of self dropped."""
        if (other.vocab_size, other.tied_embeddings, other.ffn_kind) != (self.vocab_size, self.tied_embeddings,
                                                                           self.ffn_kind):
            raise ValueError("ShapeGrid.concat: grids differ in vocab_size, tied_embeddings or ffn_kind")
        keep = np.array([self.find(other.shape(i)) is None for i in range(len(other))], dtype=bool)
        extra = other.take(keep)
        return ShapeGrid(**{f: np.concatenate([getattr(self, f), getattr(extra, f)]) for f in _GRID_FIELDS},
                         vocab_size=self.vocab_size, tied_embeddings=self.tied_embeddings, ffn_kind=self.ffn_kind,
                         label_ffn=self.label_ffn)

    def find(self, shape: TransformerShape) -> int | None:
        """Position of ``shape`` in the grid, or None."""
        hit = ((self.d_model == shape.d_model) & (self.n_layers == shape.n_layers) & (self.n_heads == shape.n_heads)
               & (self.n_kv_heads == shape.kv_heads) & (self.d_ff == shape.ffn_hidden))
        pos = np.flatnonzero(hit)
        return int(pos[0]) if pos.size else None

    @classmethod
    def from_shapes(cls, shapes: Iterable[TransformerShape]) -> ShapeGrid:
        """A grid of explicit shapes (e.g. published baselines); they must share vocabulary, tying and FFN kind."""
        shapes = list(shapes)
        if not shapes:
            raise ValueError("ShapeGrid.from_shapes needs at least one shape")
        first = shapes[0]
        for s in shapes[1:]:
            if (s.vocab_size, s.tied_embeddings, s.ffn_kind) != (first.vocab_size, first.tied_embeddings,
                                                                 first.ffn_kind):
                raise ValueError(f"ShapeGrid.from_shapes: {s.label} differs from {first.label} in vocab/tying/FFN")
            if s.position == "learned" or s.bias or s.norm_kind != "rmsnorm":
                raise ValueError(f"ShapeGrid.from_shapes: {s.label} is not a bias-free RMSNorm RoPE shape")

        def col(attr: str) -> np.ndarray:
            return np.array([getattr(s, attr) for s in shapes], dtype=np.int64)

        return cls(d_model=col("d_model"), n_layers=col("n_layers"), n_heads=col("n_heads"), n_kv_heads=col("kv_heads"),
                   head_dim=col("hd"), d_ff=col("ffn_hidden"), n_params=col("n_params"), vocab_size=first.vocab_size,
                   tied_embeddings=first.tied_embeddings, ffn_kind=first.ffn_kind)


def enumerate_shapes(rules: ShapeRules, min_params: float, max_params: float) -> ShapeGrid:
    """Every shape the rules allow with ``min_params <= N <= max_params`` (exact N), ordered by d_model, heads, kv heads, n_layers.

    The cross product is built by broadcasting: axis 0 ``d_model``, axis 1 heads, axis 2 kv heads, axis 3 FFN widths,
    axis 4 ``n_layers``.
    """
    if not 0 < min_params <= max_params:
        raise ValueError(f"enumerate_shapes needs 0 < min_params <= max_params, got {min_params!r}, {max_params!r}")
    m = rules.d_model_multiple
    d = np.arange(-(-rules.d_model_min // m) * m, rules.d_model_max + 1, m, dtype=np.int64)
    layers = np.arange(rules.n_layers_min, rules.n_layers_max + 1, rules.n_layers_step, dtype=np.int64)

    # heads: either fixed head counts (head_dim follows) or fixed head widths (head count follows)
    if rules.n_heads is not None:
        nh = np.broadcast_to(np.asarray(rules.n_heads, dtype=np.int64)[None, :], (d.size, len(rules.n_heads)))
        ok = d[:, None] % nh == 0
        hd = d[:, None] // nh
        if rules.head_dims is not None:
            ok &= np.isin(hd, np.asarray(rules.head_dims, dtype=np.int64))
    else:
        hd = np.broadcast_to(np.asarray(rules.head_dims, dtype=np.int64)[None, :], (d.size, len(rules.head_dims)))
        ok = d[:, None] % hd == 0
        nh = np.maximum(d[:, None] // hd, 1)

    # kv heads: 0 stands for "same as n_heads" (multi-head attention)
    kv_opts = [int(k) for k in rules.kv_heads]
    if not kv_opts or rules.include_mha:
        kv_opts.append(0)
    kv = np.asarray(kv_opts, dtype=np.int64)[None, None, :]
    n_kv = np.where(kv == 0, nh[:, :, None], kv)
    ok3 = ok[:, :, None] & (n_kv <= nh[:, :, None]) & (nh[:, :, None] % n_kv == 0)
    ok3 &= ~((kv != 0) & (kv == nh[:, :, None]) & (0 in kv_opts))  # an explicit kv == n_heads duplicates MHA

    ffn_rule, ffn_matrices = FFN_RULES[rules.ffn_kind]
    if rules.ffn_multipliers:  # axis 3: the FFN widths searched, d_ff = multiple * ceil(m d / multiple)
        mult = np.asarray(rules.ffn_multipliers, dtype=np.float64)
        q = rules.ffn_multiple
        ff = (q * np.ceil(mult[None, :] * d[:, None] / q - 1e-9)).astype(np.int64)[:, None, None, :]
    else:
        ff = np.asarray(ffn_rule(d, rules.ffn_multiple), dtype=np.int64)[:, None, None, None]
    dd = d[:, None, None, None]
    d_attn = (nh * hd)[:, :, None, None]
    d_kv = (n_kv * hd[:, :, None])[..., None]
    # N = L * per_layer + fixed, with per_layer and fixed independent of L: compute once, broadcast over layers
    per_layer = param_count(dd, 1, d_attn, d_kv, ff, 0, ffn_matrices=ffn_matrices, tied=True, final_norm=False)
    fixed = param_count(dd, 0, d_attn, d_kv, ff, rules.vocab_size, ffn_matrices=ffn_matrices,
                        tied=rules.tied_embeddings, final_norm=True)
    n_params = per_layer[..., None] * layers + fixed[..., None]
    full = n_params.shape[:4]
    keep = np.broadcast_to(ok3[..., None, None], full + (layers.size,)) & (n_params >= min_params) \
        & (n_params <= max_params)

    i_d, i_h, i_k, i_f, i_l = np.nonzero(keep)
    return ShapeGrid(
        d_model=d[i_d], n_layers=layers[i_l], n_heads=nh[i_d, i_h], n_kv_heads=n_kv[i_d, i_h, i_k],
        head_dim=hd[i_d, i_h], d_ff=np.broadcast_to(ff, full)[i_d, i_h, i_k, i_f],
        n_params=n_params[i_d, i_h, i_k, i_f, i_l], vocab_size=rules.vocab_size, tied_embeddings=rules.tied_embeddings,
        ffn_kind=rules.ffn_kind, label_ffn=bool(rules.ffn_multipliers),
    )
