"""What every law form shares: the per-run features it reads (`Features`, `Architecture`), the batched log-sum-exp
and its vector-Jacobian product, and the `LawForm` base class. The forms themselves and their registry are in
`infscale.laws.forms`. Pure numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ARCH_COLUMNS", "Architecture", "Features", "LawForm", "Vjp"]

Vjp = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class Architecture:
    """What an architecture-conditional law reads beside N, D and R, per run (arrays broadcast against N):
    ``d_model``, ``ffn_ratio`` (the MLP-to-attention parameter ratio, `infscale.arch.ffn_attention_ratio`) and
    ``kv_group`` (query heads per KV head: 1 for multi-head attention, n_heads for multi-query). None: not known."""

    d_model: np.ndarray | None = None
    ffn_ratio: np.ndarray | None = None
    kv_group: np.ndarray | None = None

    def missing(self, names: tuple[str, ...]) -> list[str]:
        return [n for n in names if getattr(self, n) is None]


ARCH_COLUMNS = {"d_model": "d_model", "ffn_ratio": "d_ff and n_heads (n_kv_heads)", "kv_group": "n_heads and n_kv_heads"}
"""Where each `Architecture` field comes from in a runs table (named in the errors)."""


def _log_or_none(values) -> np.ndarray | None:
    return None if values is None else np.log(np.asarray(values, dtype=float))


@dataclass(frozen=True, slots=True)
class Features:
    """Log-features of a set of runs, computed once per fit: N, D, and where known R, d_model, r and the GQA group."""

    log_n: np.ndarray
    log_d: np.ndarray
    log_r: np.ndarray | None = None
    log_w: np.ndarray | None = None
    log_f: np.ndarray | None = None
    log_g: np.ndarray | None = None

    @classmethod
    def of(cls, n_params: np.ndarray, n_tokens: np.ndarray, aspect_ratio: np.ndarray | None = None,
           arch: Architecture | None = None) -> Features:
        arch = arch or Architecture()
        return cls(np.log(np.asarray(n_params, dtype=float)), np.log(np.asarray(n_tokens, dtype=float)),
                   _log_or_none(aspect_ratio), _log_or_none(arch.d_model), _log_or_none(arch.ffn_ratio),
                   _log_or_none(arch.kv_group))

    def _map(self, fn) -> Features:
        return Features(*(None if v is None else fn(v) for v in (self.log_n, self.log_d, self.log_r, self.log_w,
                                                                 self.log_f, self.log_g)))

    def take(self, index: np.ndarray) -> Features:
        return self._map(lambda v: v[index])

    def astype(self, dtype: np.dtype | str) -> Features:
        return self._map(lambda v: v.astype(dtype))


def _col(params: np.ndarray, i: int) -> np.ndarray:
    """Column i of a (p,) or (B, p) parameter array, shaped to broadcast against (n,) data: () or (B, 1)."""
    p = np.asarray(params, dtype=float)
    return p[i] if p.ndim == 1 else p[:, i:i + 1]


def _grid(*axes: list[float]) -> np.ndarray:
    return np.array(list(itertools.product(*axes)), dtype=float)


def _lse3(t1: np.ndarray, t2: np.ndarray, t3: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """log(exp t1 + exp t2 + exp t3) and the softmax weights; inputs broadcast to a common shape.

    Fast path: exponentiate directly (t3 is often one value per batch row, so only two full-size exps); rows where that
    overflows or underflows are recomputed with the max-shifted, stable formula."""
    shape = np.broadcast_shapes(np.shape(t1), np.shape(t2), np.shape(t3))
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        e1 = np.exp(t1)
        e2 = np.exp(t2)
        e3 = np.exp(t3)
        s = e1 + e2
        s += e3
        lse = np.log(s)
        inv = 1.0 / s
        w1 = e1 * inv
        w2 = e2 * inv
        w3 = np.broadcast_to(e3, shape) * inv
        # a row is redone when any of its values over- or underflowed (s = 0 makes lse = -inf): one sum per row
        # finds it (a sum that overflows with finite terms only sends a row down the stable path needlessly)
        bad = ~(np.isfinite(lse.sum(axis=-1)) & np.isfinite(inv.sum(axis=-1)))
    if bad.any():
        if len(shape) < 2:
            return _lse3_stable(t1, t2, t3)
        rows = np.flatnonzero(bad.reshape(-1))
        out = _lse3_stable(*(np.broadcast_to(t, shape)[rows] for t in (t1, t2, t3)))
        for arr, val in zip((lse, w1, w2, w3), out, strict=True):  # fresh ufunc results: written in place
            arr[rows] = val
    return lse, w1, w2, w3


def _lse3_stable(t1, t2, t3):
    t1, t2, t3 = np.broadcast_arrays(t1, t2, t3)
    m = np.maximum(np.maximum(t1, t2), t3)
    m = np.where(np.isfinite(m), m, 0.0)
    e1 = np.exp(t1 - m)
    e2 = np.exp(t2 - m)
    e3 = np.exp(t3 - m)
    s = e1 + e2 + e3
    inv = 1.0 / s
    return m + np.log(s), e1 * inv, e2 * inv, e3 * inv


def _terms_vjp(u: np.ndarray, w1: np.ndarray, w2: np.ndarray, w3: np.ndarray, theta: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradient of ``log(A/N^a + B/D^b + E)`` (in log space: ``a, b, e`` first) for upstream ``u``: a fresh
    ``(B, p)`` array with its first three columns filled, and the weighted upstreams ``u w1``, ``u w2`` that the
    exponents' gradients need."""
    g1, g2 = u * w1, u * w2
    out = np.empty_like(theta)
    out[:, 0] = g1.sum(1)
    out[:, 1] = g2.sum(1)
    out[:, 2] = (u * w3).sum(1)
    return out, g1, g2


class LawForm:
    """Base class of the law forms. Subclasses set the names and implement the four methods."""

    name: str = ""
    param_names: tuple[str, ...] = ()
    """Natural parameters, in order (what `predict` takes and fits report)."""
    log_names: tuple[str, ...] = ()
    """Log-space parameters used by the Huber fitter."""
    exponents: tuple[str, ...] = ()
    coefficients: tuple[str, ...] = ()
    """Natural parameters that must be positive for the law to make sense (diagnostics warn otherwise)."""
    needs_aspect_ratio: bool = False
    needs_arch: tuple[str, ...] = ()
    """`Architecture` fields the law reads (an architecture-conditional law)."""
    ls_starts: tuple[tuple[float, ...], ...] = ()
    """Extra least-squares starting points (natural), tried after the all-ones start of Bian et al.'s scripts."""

    def predict(self, params: np.ndarray, n_params, n_tokens, aspect_ratio=None, arch: Architecture | None = None
                ) -> np.ndarray:
        raise NotImplementedError

    def to_log(self, params: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def from_log(self, theta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_predict_vjp(self, theta: np.ndarray, x: Features) -> tuple[np.ndarray, Vjp]:
        """log L for a (B, p) batch of log-space parameters -> ((B, n) log-loss, vjp: (B, n) -> (B, p))."""
        raise NotImplementedError

    def huber_grid(self) -> np.ndarray:
        """(K, p) log-space starting points of the multi-start grid."""
        raise NotImplementedError

    def check_inputs(self, aspect_ratio, arch: Architecture | None = None) -> None:
        if self.needs_aspect_ratio and aspect_ratio is None:
            raise ValueError(f"law {self.name!r} needs the aspect ratio R = d_model / n_layers (columns d_model, n_layers)")
        missing = (arch or Architecture()).missing(self.needs_arch)
        if missing:
            raise ValueError(f"law {self.name!r} needs the {missing[0]} of every run (columns "
                             f"{ARCH_COLUMNS[missing[0]]})")
