"""File input/output of the laws package: reading `Runs` (CSV, TSV, Parquet, JSON, JSONL) and bundled datasets by name.

Every error is an `InputError` naming the file, the 1-based data row and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infscale.configio import load_json, load_jsonl
from infscale.data import DATASETS, get_dataset
from infscale.errors import InputError
from infscale.laws.diagnostics import DEGENERATE, degenerate
from infscale.laws.fitted import FittedLaw, loss_problems, physical_problems
from infscale.laws.runs import Runs
from infscale.notices import Notice

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}


def load_runs(source: str | Path, columns: dict[str, str] | None = None) -> Runs:
    """A bundled dataset by name (`bian2025`, `chinchilla`, `gadre`, `sardana`) or a file path."""
    if isinstance(source, str) and source in DATASETS:
        info = get_dataset(source)
        return Runs.from_frame(_read(info.path), source=info.name, columns={**info.columns, **(columns or {})})
    path = Path(source)
    if not path.exists():
        known = ", ".join(sorted(DATASETS))
        raise InputError(f"{path}: no such file, and not a bundled dataset name ({known})")
    return Runs.from_frame(_read(path), source=str(path), columns=columns)


def _read(path: Path) -> pd.DataFrame:
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; expected one of {', '.join(sorted(READERS))}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file: no data rows")
    try:
        if kind in ("csv", "tsv"):
            return pd.read_csv(path, sep="," if kind == "csv" else "\t")
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "json":
            return _read_json(path)
        return _read_jsonl(path)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file: no data rows") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot parse as {kind}: {str(exc).splitlines()[0]}") from None


def _read_json(path: Path) -> pd.DataFrame:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = data.get("runs", data.get("records", data))
    if isinstance(data, dict):  # column-oriented {"N": [...], "D": [...]}
        return pd.DataFrame(data)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of records or a {{column: values}} object")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise InputError(f"{path}: row {i + 1}: not a JSON object")
    return pd.json_normalize(data, sep=".")


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line (the trainer's run records). Blank lines are skipped; a torn last line is an error."""
    return pd.json_normalize([rec for _, rec in load_jsonl(path, what="runs file")], sep=".")


def save_fit(law: FittedLaw, path: str | Path, warnings: list[str] | tuple[str, ...] = (),
             boot: object | None = None) -> Path:
    """Write a fitted law as JSON (law name, parameters, provenance, and the fit's warnings, which every command
    that plans with the law repeats; with ``boot``, a `BootstrapResult`, its replicates, so that `infscale optimum`
    can give intervals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = law.to_dict()
    data["meta"] = {**data.get("meta", {}), "warnings": list(warnings),
                    "notices": [w.to_dict() for w in warnings if isinstance(w, Notice)]}
    if boot is not None:
        data["bootstrap"] = {"param_names": list(boot.param_names), "level": float(boot.level),
                             "samples": [[float(v) for v in row] for row in boot.samples]}
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    return path


def load_fit(path: str | Path) -> FittedLaw:
    """Read a fitted law written by `save_fit` (or `infscale fit --save`)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: law file not found (write one with `infscale fit ... --save FIT.json`)")
    data = load_json(path, what="saved fit")
    if "law" not in data or "params" not in data or not isinstance(data["params"], dict):
        raise InputError(f"{path}: not a saved fit: expected keys 'law' and 'params' (a mapping)")
    problems = physical_problems(data["params"])
    if problems:
        raise InputError(f"{path}: {problems[0]}")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    warnings = saved_warnings(meta)
    bad = degenerate(warnings)
    if bad:
        raise InputError(f"{path}: the fit is degenerate and is not planned with: {bad[0].text} "
                         "(refit on more runs or sizes, or with another law form)")
    if meta:
        data["meta"] = {**meta, "warnings": warnings}
    try:
        law = FittedLaw.from_dict(data["law"], data["params"], data.get("meta"))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: field 'params': {exc}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        implausible = loss_problems(law)
    if implausible:
        raise InputError(f"{path}: {implausible[0]}")
    return law


def saved_warnings(meta: dict[str, Any]) -> list[str]:
    """A saved fit's warnings with their notices typed again (`save_fit` writes each notice's fields beside the
    lines). A law saved before the notices were written (0.1) carries its degenerate lines as text with the kind as
    their prefix; those are typed from it, the one place a warning's text is read."""
    typed: dict[str, Notice] = {}
    for entry in meta.get("notices", []) if isinstance(meta.get("notices"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("kind"), str) and isinstance(entry.get("text"), str):
            rng = entry.get("range")
            notice = Notice(entry["kind"], entry["text"], quantity=entry.get("quantity"), value=entry.get("value"),
                            range=tuple(rng) if isinstance(rng, list) and len(rng) == 2 else None,
                            source=entry.get("source"))
            typed[str(notice)] = notice
    out: list[str] = []
    for line in meta.get("warnings", []) if isinstance(meta.get("warnings"), list) else []:
        if not isinstance(line, str):
            continue
        if line in typed:
            out.append(typed[line])
        elif "notices" not in meta and line.startswith(f"{DEGENERATE}: "):
            out.append(Notice(DEGENERATE, line.removeprefix(f"{DEGENERATE}: ")))
        else:
            out.append(line)
    return out


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def load_replicates(path: str | Path) -> tuple[list[FittedLaw], float | None]:
    """The bootstrap replicates a saved fit carries (as laws; non-finite or non-physical ones dropped) and their
    interval level; ``([], None)`` when it was saved without them."""
    data = load_json(Path(path), what="saved fit")
    boot = data.get("bootstrap")
    if not boot:
        return [], None
    try:
        names, samples, level = list(boot["param_names"]), boot["samples"], float(boot["level"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: field bootstrap: expected param_names, samples and level") from None
    laws = []
    for row in samples:
        params = dict(zip(names, row, strict=False))
        if len(params) != len(names) or physical_problems(params):
            continue
        try:
            laws.append(FittedLaw.from_dict(data["law"], params))
        except (KeyError, ValueError):
            continue
    return laws, level
