"""Files of the latency part: measurement records (JSONL), hardware profiles (JSON), sweep configs (YAML), shape specs.

- Records are appended one JSON object per line and never rewritten; `read_records` tolerates only a truncated
  last line (a run killed mid-write) and names the file and line of anything else that is broken. A shape measured
  again appends a record with the same key, which supersedes the old one (`latest_records`).
- Profiles are looked up by name: the built-in presets of `latency.model.HARDWARE_PRESETS`, then the calibrated
  profiles shipped in ``latency/data/profiles/``; a path to a ``.json`` file works too.
- Shape specs: ``d256x4`` (d_model 256, 4 layers), optionally followed by ``h4`` (heads), ``kv2`` (KV heads),
  ``f688`` (FFN width) and ``v4096`` (vocabulary), or a preset name of `infscale.arch.PRESETS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infscale.arch import PRESETS, TransformerShape
from infscale.errors import InputError
from infscale.latency.model import HARDWARE_PRESETS, HardwareProfile, Workload

__all__ = [
    "DATA_DIR",
    "PROFILE_DIR",
    "record_key",
    "append_record",
    "read_records",
    "latest_records",
    "parse_shape_spec",
    "get_profile",
    "list_profiles",
    "save_profile",
    "load_profile_file",
    "load_sweep_config",
]

DATA_DIR = Path(__file__).parent / "data"
PROFILE_DIR = DATA_DIR / "profiles"

_SPEC = re.compile(r"^d(\d+)x(\d+)(?:h(\d+))?(?:kv(\d+))?(?:f(\d+))?(?:v(\d+))?$")


def record_key(shape: TransformerShape, workload: Workload, backend: str, device: str) -> str:
    """Identity of a measurement: same shape, workload, backend and device = same key (for resuming)."""
    blob = json.dumps([shape.to_dict(), workload.to_dict(), backend, device], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _iter_lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete_last = text.endswith("\n")
    for i, line in enumerate(lines, start=1):
        is_last = i == len(lines) or (i == len(lines) - 1 and complete_last)
        yield i, line, is_last and not complete_last


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSONL file. A truncated final line (no newline, bad JSON) is skipped; any other bad line
    is an `InputError` naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such records file")
    out = []
    for lineno, line, unterminated in _iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if unterminated:
                continue  # a run killed while writing its last record
            raise InputError(f"{path}:{lineno}: not a JSON record ({exc.msg})") from None
        if not isinstance(record, dict) or "key" not in record:
            raise InputError(f"{path}:{lineno}: a record must be an object with a 'key' field")
        out.append(record)
    return out


def latest_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per key, the last one appended (a re-measurement supersedes the earlier record), in first-seen
    order."""
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        latest[r["key"]] = r
    return list(latest.values())


def parse_shape_spec(spec: str, *, vocab_size: int | None = None, context_length: int = 2048) -> TransformerShape:
    """A `TransformerShape` from ``d256x4[hN][kvN][fN][vN]`` or a preset name; bad specs are `InputError`s.

    Defaults: ``n_heads = max(1, d_model // 64)``, SwiGLU width by the open_lm rule, vocabulary 50432 (or
    ``vocab_size``).
    """
    text = spec.strip().lower()
    if text in PRESETS:
        shape = PRESETS[text]
        return shape if vocab_size is None else shape.with_(vocab_size=vocab_size)
    m = _SPEC.match(text)
    if not m:
        raise InputError(f"shape {spec!r}: expected dDxL[hH][kvK][fF][vV] (e.g. d256x4h4) or a preset "
                         f"({', '.join(sorted(PRESETS))})")
    d, layers, heads, kv, ff, vocab = (None if g is None else int(g) for g in m.groups())
    heads = heads if heads is not None else max(1, d // 64)
    vocab = vocab if vocab is not None else (vocab_size if vocab_size is not None else 50432)
    try:
        return TransformerShape(d_model=d, n_layers=layers, n_heads=heads, n_kv_heads=kv, d_ff=ff, vocab_size=vocab,
                                context_length=context_length)
    except ValueError as exc:
        raise InputError(f"shape {spec!r}: {exc}") from None


# ---- hardware profiles --------------------------------------------------------------------------------------------
def load_profile_file(path: str | Path) -> HardwareProfile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such profile file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        return HardwareProfile.from_dict(data.get("profile", data))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad hardware profile ({exc})") from None


def _shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.json"))} if PROFILE_DIR.exists() else {}


def list_profiles() -> list[str]:
    """Names usable with `get_profile`: presets and shipped calibrated profiles."""
    return sorted(set(HARDWARE_PRESETS) | set(_shipped()))


def get_profile(name: str) -> HardwareProfile:
    """A hardware profile by name (preset or shipped calibration) or by path to a JSON file."""
    key = name.strip().lower()
    if key in HARDWARE_PRESETS:
        return HARDWARE_PRESETS[key]
    shipped = _shipped()
    if key in shipped:
        return load_profile_file(shipped[key])
    if name.endswith(".json"):
        return load_profile_file(name)
    raise InputError(f"hardware: unknown name {name!r}; known: {', '.join(list_profiles())} (or a .json file)")


def save_profile(profile: HardwareProfile, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``{"profile": ..., "meta": ...}`` as JSON (meta: how it was calibrated, errors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"profile": profile.to_dict(), "meta": meta or {}}, indent=2, sort_keys=True) + "\n",
                    encoding="utf-8")
    return path


# ---- sweep configs ------------------------------------------------------------------------------------------------
def load_sweep_config(path: str | Path) -> Any:
    """Read and validate a measurement sweep YAML (see `SweepConfig` in latency/config.py)."""
    import yaml
    from pydantic import ValidationError

    from infscale.latency.config import SweepConfig

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such sweep config") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    try:
        return SweepConfig.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: field {where}: {err['msg']}") from None
