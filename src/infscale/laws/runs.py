"""`Runs`: a validated table of training runs (N, D, loss; optional shape, tokens per param, group, downstream metrics).

Canonical columns: `N` (parameters), `D` (training tokens), `loss`; optional `d_model`, `n_layers`, `aspect_ratio`
(= d_model / n_layers, derived), `n_heads`, `n_kv_heads` (default n_heads), `d_ff` (a SwiGLU width; with d_model and
n_heads they give `ffn_ratio`, the MLP-to-attention parameter ratio, and `kv_group`, query heads per KV head), `tokens_per_param` (derived as D / N when absent), `group` (size group used for per-group
Spearman). Any other column (downstream metrics, flags such as `in_main_fit_set`) is kept as is. Reading files lives in
`infscale.laws.io`; this module only validates an in-memory frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from infscale.arch import ffn_attention_ratio
from infscale.errors import InputError
from infscale.laws.fitted import MAX_LOSS_NATS
from infscale.laws.forms import Architecture

REQUIRED = ("N", "D", "loss")
OPTIONAL_NUMERIC = ("d_model", "n_layers", "tokens_per_param", "n_heads", "n_kv_heads", "d_ff")

# canonical column -> accepted spellings (compared case-insensitively, after the exact canonical name)
ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("params_n_formula", "n_params", "params", "parameters", "num_params", "model size", "model_size", "n_total"),
    "D": ("tokens_d", "n_tokens", "tokens", "training_tokens", "train_tokens", "num_tokens"),
    "loss": ("smoothed loss", "smoothed_loss", "final_loss", "val_loss", "eval_loss", "train_loss"),
    "d_model": ("hidden_size", "width", "n_embd", "dim"),
    "n_layers": ("num_layers", "n_layer", "layers", "depth", "num_hidden_layers"),
    "tokens_per_param": ("tokens/params", "tokens_per_parameter", "tok_mult_m", "tpp"),
    "group": ("size_group", "size_class", "model name", "model_name"),
}


def canonicalise(frame: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Rename columns onto the canonical names: explicit `columns` first, then exact names, then aliases."""
    columns = dict(columns or {})
    rename: dict[str, str] = {}
    taken = set(frame.columns)
    lower = {str(c).strip().lower(): c for c in frame.columns}
    for canon, aliases in ALIASES.items():
        if canon in columns and columns[canon] in taken:
            src = columns[canon]
        elif canon in taken:
            continue
        else:
            src = next((lower[a] for a in aliases if a in lower and lower[a] not in rename), None)
            if src is None:
                continue
        if canon in taken and src != canon:
            frame = frame.rename(columns={canon: f"{canon}_original"})
        rename[src] = canon
    return frame.rename(columns=rename)


@dataclass(frozen=True, slots=True)
class Runs:
    """A validated table of runs. `frame` holds canonical columns plus any extra columns of the source."""

    frame: pd.DataFrame
    source: str = "<memory>"

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "<memory>",
                   columns: dict[str, str] | None = None) -> Runs:
        """Validate `frame`: required columns present, N, D, loss positive finite numbers. Errors name source/row/field."""
        if frame.shape[0] == 0:
            raise InputError(f"{source}: empty file: no data rows")
        frame = canonicalise(frame.copy(), columns)
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            found = ", ".join(map(str, frame.columns[:8]))
            hint = ""
            if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in (";", "\t", "|", " ")):
                hint = " (wrong delimiter? expected ',')"
            raise InputError(f"{source}: missing column {missing[0]!r}{hint}; found columns: {found}")
        for col in REQUIRED + OPTIONAL_NUMERIC:
            if col not in frame.columns:
                continue
            flags = frame[col].map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
            if flags.any():  # JSON true/false would read as 1/0
                i = int(np.flatnonzero(flags)[0])
                raise InputError(f"{source}: row {i + 1}, field {col!r}: {frame[col].iloc[i]} is a boolean, not a "
                                 "number")
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)) | (values <= 0)
            if col == "loss" and not bad.any() and (values >= MAX_LOSS_NATS).any():
                i = int(np.flatnonzero((values >= MAX_LOSS_NATS).to_numpy())[0])
                raise InputError(f"{source}: row {i + 1}, field 'loss': {values.iloc[i]:g} nats is not a language "
                                 f"model's loss (at most {MAX_LOSS_NATS:g}: the entropy of a uniform vocabulary "
                                 "of 10^43 tokens)")
            if col not in REQUIRED:
                bad = bad & frame[col].notna()  # optional columns may be blank
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raw = frame[col].iloc[i]
                shown = repr(raw) if isinstance(raw, str) else str(raw)  # numpy scalars print bare, text quoted
                raise InputError(f"{source}: row {i + 1}, field {col!r}: {shown} is not a positive finite number")
            frame[col] = values.astype(float)
        if "d_model" in frame.columns and "n_layers" in frame.columns:
            frame["aspect_ratio"] = frame["d_model"] / frame["n_layers"]
        if {"d_model", "n_heads", "d_ff"} <= set(frame.columns):
            kv = frame["n_kv_heads"].fillna(frame["n_heads"]) if "n_kv_heads" in frame.columns else frame["n_heads"]
            if (frame["n_heads"] % kv).fillna(0).any():
                i = int(np.flatnonzero((frame["n_heads"] % kv).fillna(0).to_numpy())[0])
                raise InputError(f"{source}: row {i + 1}, field 'n_kv_heads': {kv.iloc[i]:g} does not divide "
                                 f"n_heads {frame['n_heads'].iloc[i]:g}")
            frame["kv_group"] = frame["n_heads"] / kv
            frame["ffn_ratio"] = ffn_attention_ratio(frame["n_heads"], kv, frame["d_model"] / frame["n_heads"],
                                                     frame["d_ff"])
        if "tokens_per_param" not in frame.columns:
            frame["tokens_per_param"] = frame["D"] / frame["N"]
        if "group" not in frame.columns:
            frame["group"] = [_size_label(n) for n in frame["N"]]
        frame["group"] = frame["group"].astype(str)
        return cls(frame.reset_index(drop=True), source)

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def n_params(self) -> np.ndarray:
        return self.frame["N"].to_numpy(dtype=float)

    @property
    def n_tokens(self) -> np.ndarray:
        return self.frame["D"].to_numpy(dtype=float)

    @property
    def loss(self) -> np.ndarray:
        return self.frame["loss"].to_numpy(dtype=float)

    @property
    def aspect_ratio(self) -> np.ndarray | None:
        if "aspect_ratio" not in self.frame.columns or self.frame["aspect_ratio"].isna().any():
            return None
        return self.frame["aspect_ratio"].to_numpy(dtype=float)

    @property
    def arch(self) -> Architecture:
        """The `Architecture` variables the table has (a field is None where a column is missing or blank)."""
        def col(name: str) -> np.ndarray | None:
            if name not in self.frame.columns or self.frame[name].isna().any():
                return None
            return self.frame[name].to_numpy(dtype=float)

        return Architecture(d_model=col("d_model"), ffn_ratio=col("ffn_ratio"), kv_group=col("kv_group"))

    @property
    def group(self) -> np.ndarray:
        return self.frame["group"].to_numpy()

    def take(self, index: np.ndarray) -> Runs:
        """Rows at positional `index` (a boolean mask or integer positions; repeats allowed, for the bootstrap)."""
        return Runs(self.frame.iloc[np.asarray(index)].reset_index(drop=True), self.source)

    def split(self, expr: str | None) -> tuple[Runs, Runs]:
        """(fit, held-out) by a pandas-query expression; `None` fits on all rows and holds out none."""
        if not expr:
            return self, self.take(np.zeros(len(self), dtype=bool))
        # the canonical columns also answer to the names the toolkit writes elsewhere (n_params, n_tokens, ...)
        names = {alias: self.frame[canon] for canon in ("N", "D") for alias in ALIASES[canon]
                 if alias.isidentifier() and alias not in self.frame.columns}
        try:
            mask = self.frame.eval(expr, resolvers=[names])
        except Exception as exc:  # pandas raises many types for a bad expression
            raise InputError(f"--fit-on {expr!r}: cannot evaluate on {self.source}: {exc}") from None
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(self),):
            raise InputError(f"--fit-on {expr!r}: not a row filter (got {mask.dtype} of shape {mask.shape})")
        if not mask.any():
            raise InputError(f"--fit-on {expr!r}: selects no rows of {self.source}")
        return self.take(mask), self.take(~mask)


def _size_label(n_params: float) -> str:
    """A readable size label (e.g. 1.3B, 350M) used as the default group."""
    if n_params >= 1e9:
        return f"{n_params / 1e9:.2g}B"
    return f"{n_params / 1e6:.3g}M"
