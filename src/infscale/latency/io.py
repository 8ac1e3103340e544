"""Files of the latency part: measurement records (JSONL), hardware profiles (JSON), sweep configs (YAML), measured
latencies for the planner (CSV or records) and Bian et al.'s published A100 latencies.

- Records go through `infscale.records` (one writer, fsynced lines, one torn-tail rule). A shape measured again
  appends a record with the same key, which supersedes the old one (`latest_records`).
- Profiles are looked up by name in `infscale.latency.model.HARDWARE`: the built-in presets, the calibrated profiles
  shipped in ``latency/data/profiles/`` (registered here) and any a plugin adds; a path to a ``.json`` file works too.
- Every file is read through `infscale.configio` (missing, directory, binary, wrong shape: one line naming it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infscale import records as store
from infscale.arch import TransformerShape
from infscale.configio import load_json, load_yaml, read_text, write_text
from infscale.errors import InputError
from infscale.latency.config import LatencySweepConfig
from infscale.latency.model import HARDWARE, HardwareProfile, Workload
from infscale.registry import Lazy

if TYPE_CHECKING:  # the calibrator needs scipy; measuring (e.g. in a vLLM-only environment) must not
    from infscale.latency.calibrate import LatencyCalibrator, LatencyObservation

__all__ = [
    "DATA_DIR",
    "PROFILE_DIR",
    "BIAN2025_CSV",
    "record_key",
    "read_measurements",
    "latest_records",
    "get_profile",
    "list_profiles",
    "save_profile",
    "load_profile_file",
    "load_sweep_config",
    "load_measured",
    "bian2025_observations",
    "calibrate_bian2025",
]

DATA_DIR = Path(__file__).parent / "data"
PROFILE_DIR = DATA_DIR / "profiles"
BIAN2025_CSV = DATA_DIR / "bian2025_a100_latency.csv"


def record_key(shape: TransformerShape, workload: Workload, backend: str, device: str) -> str:
    """Identity of a measurement: same shape, workload, backend and device = same key (for resuming)."""
    blob = json.dumps([shape.to_dict(), workload.to_dict(), backend, device], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def read_measurements(path: str | Path) -> list[dict[str, Any]]:
    """All measurement records of a JSONL file (each an object with a ``key``), in file order."""
    out = store.read_records(path)
    for i, record in enumerate(out, start=1):
        if "key" not in record:
            raise InputError(f"{path}: record {i}: a measurement record needs a 'key' field")
    return out


def latest_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per key, the last one appended (a re-measurement supersedes the earlier one)."""
    return store.latest(records, key=lambda r: r["key"])


def measurement_records(path: str | Path) -> list[dict[str, Any]]:
    """The latest record of every key in ``path``, for commands that need at least one (calibrate, plot)."""
    out = latest_records(read_measurements(path))
    if not out:
        raise InputError(f"{path}: no measurement records (run `infscale latency measure` into it first)")
    return out


# ---- hardware profiles --------------------------------------------------------------------------------------------
def load_profile_file(path: str | Path) -> HardwareProfile:
    data = load_json(path, what="hardware profile file")
    try:
        return HardwareProfile.from_dict(data.get("profile", data))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: bad hardware profile ({exc})") from None


def register_shipped_profiles() -> None:
    """Register the calibrated profiles shipped in ``latency/data/profiles`` (one file each). Called through the
    package's own ``infscale.plugins`` entry point, before the first lookup of any registry, so a shipped profile is
    found whatever was imported first."""
    for path in sorted(PROFILE_DIR.glob("*.json")):
        if path.stem not in HARDWARE:
            HARDWARE.register(path.stem, Lazy(partial(load_profile_file, path)))


def list_profiles() -> list[str]:
    """Names usable with `get_profile`: presets, shipped calibrated profiles and plugins' profiles."""
    return HARDWARE.names()


def get_profile(name: str) -> HardwareProfile:
    """A hardware profile by name or by path to a JSON file."""
    if name not in HARDWARE and (name.endswith(".json") or Path(name).exists()):
        return load_profile_file(name)
    try:
        return HARDWARE.get(name)
    except InputError as exc:
        raise InputError(f"{exc} (or a .json profile file)") from None


def save_profile(profile: HardwareProfile, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``{"profile": ..., "meta": ...}`` as JSON (meta: how it was calibrated, errors)."""
    text = json.dumps({"profile": profile.to_dict(), "meta": meta or {}}, indent=2, sort_keys=True) + "\n"
    return write_text(path, text)


# ---- sweep configs ------------------------------------------------------------------------------------------------
def load_sweep_config(path: str | Path) -> Any:
    """Read and validate a measurement sweep YAML (see `LatencySweepConfig` in latency/config.py)."""

    return load_yaml(path, LatencySweepConfig, what="sweep config")


# ---- measured latencies for the planner ---------------------------------------------------------------------------
ShapeKey = tuple[int, int, int, int]


def _measured_from_records(path: Path, workload: tuple[int, int, int] | None) -> dict[ShapeKey, float]:
    found: dict[ShapeKey, float] = {}
    for no, rec in enumerate(latest_records(read_measurements(path)), start=1):
        try:
            shape, wl = rec["shape"], rec["workload"]
            if workload is not None and (wl["batch"], wl["input_len"], wl["output_len"]) != workload:
                continue
            heads = int(shape["n_heads"])
            kv = int(shape["n_kv_heads"]) if shape.get("n_kv_heads") else heads
            found[(int(shape["d_model"]), int(shape["n_layers"]), heads, kv)] = float(rec["total_s"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: record {no}: needs shape, workload and total_s fields") from None
    return found


def load_measured(path: str | Path, workload: tuple[int, int, int] | None = None) -> dict[ShapeKey, float]:
    """Measured latencies per shape ``(d_model, n_layers, n_heads, n_kv_heads)``: a CSV with d_model, n_layers,
    n_heads, latency_s (optional n_kv_heads), or the JSONL records of `infscale latency measure` (``total_s`` of the
    records whose workload is ``(batch, input_len, output_len)``)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return _measured_from_records(path, workload)
    reader = csv.DictReader(io.StringIO(read_text(path, "measured-latency file"), newline=""))
    missing = {"d_model", "n_layers", "n_heads", "latency_s"} - set(reader.fieldnames or [])
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    out: dict[ShapeKey, float] = {}
    for row_no, row in enumerate(reader, start=2):
        try:
            d, layers, heads = int(row["d_model"]), int(row["n_layers"]), int(row["n_heads"])
            kv = int(row["n_kv_heads"]) if row.get("n_kv_heads") else heads
            lat = float(row["latency_s"])
        except (TypeError, ValueError):
            raise InputError(f"{path}: row {row_no}: d_model/n_layers/n_heads/n_kv_heads must be integers and "
                             "latency_s a number") from None
        if not 0 < lat < float("inf"):
            raise InputError(f"{path}: row {row_no}: field latency_s must be a positive finite number, got {lat}")
        for name, value in (("d_model", d), ("n_layers", layers), ("n_heads", heads), ("n_kv_heads", kv)):
            if value <= 0:
                raise InputError(f"{path}: row {row_no}: field {name} must be positive, got {value}")
        if heads % kv or d % heads:
            raise InputError(f"{path}: row {row_no}: field {'n_kv_heads' if heads % kv else 'n_heads'}: "
                             f"{kv if heads % kv else heads} does not divide {'n_heads' if heads % kv else 'd_model'}")
        if (d, layers, heads, kv) in out:
            raise InputError(f"{path}: row {row_no}: shape d{d}x{layers} h{heads} kv{kv} measured twice")
        out[(d, layers, heads, kv)] = lat
    return out


# ---- Bian et al.'s published A100 latencies ----------------------------------------------------------------------------
def bian2025_observations(models: Iterable[str] | None = None) -> list[LatencyObservation]:
    """Bian et al.'s published A100 generate latencies (bundled CSV) as observations (``total_s``)."""
    # calibrate's module body looks up presets, which loads the plugins (this module registers the shipped profiles)
    # lazy: so a module-level import would be circular
    from infscale.latency.calibrate import BIAN2025_SHAPES, BIAN2025_WORKLOAD, LatencyObservation

    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(read_text(BIAN2025_CSV)))}
    names = list(BIAN2025_SHAPES) if models is None else list(models)
    out = []
    for name in names:
        if name not in BIAN2025_SHAPES or name not in rows:
            raise InputError(f"{BIAN2025_CSV.name}: no published latency for model {name!r}; known {sorted(BIAN2025_SHAPES)}")
        shape, group = BIAN2025_SHAPES[name]
        out.append(LatencyObservation(shape=shape, workload=BIAN2025_WORKLOAD, total_s=float(rows[name]["latency_s"]),
                                      group=group, label=name))
    return out


def calibrate_bian2025(models: Iterable[str] | None = None, base: HardwareProfile | None = None,
                       name: str = "a100-40gb-bian2025") -> LatencyCalibrator:
    """The A100 calibrated on Bian et al.'s published latencies (see `infscale.latency.calibrate.bian2025_calibrator`)."""
    from infscale.latency.calibrate import bian2025_calibrator  # lazy: circular at module level, as above

    obs = bian2025_observations(models)
    return bian2025_calibrator(obs, base, name).fit(obs)
