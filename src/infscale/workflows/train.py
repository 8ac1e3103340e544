"""The workflows behind `infscale train`, `infscale sweep` and `infscale runs`: each resolves its config (a YAML
path or a bundled recipe), owns its output directory (``runs/<run_id>/`` and ``records.jsonl``), runs or reads the
runs and returns a typed result the CLI prints without reading any file."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infscale.configio import check_number, check_output_dir, default_out, resolve_recipe
from infscale.errors import InputError

__all__ = ["RunsListing", "SweepResult", "TrainResult", "list_runs", "run_sweep_config", "run_train_config"]


@dataclass(frozen=True, slots=True)
class TrainResult:
    out: Path
    run_id: str
    record: dict[str, Any] | None
    """The run's record; None on a non-main rank of a distributed run (rank 0 writes it)."""


@dataclass(frozen=True, slots=True)
class SweepResult:
    out: Path
    records: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RunsListing:
    path: Path
    records: list[dict[str, Any]]
    """Finished runs, one record each."""
    in_progress: list[dict[str, Any]] = field(default_factory=list)
    """Started runs without a record: ``run_id``, ``step``, ``steps``, ``loss_smoothed``, ``checkpoint``,
    ``active``."""


def run_train_config(config: str | Path, out: Path | None = None) -> TrainResult:
    """Train the model of ``config`` into ``out`` (default ``infscale-out/train-<name>``, so a rerun resumes from its
    checkpoint) and append its record to ``out/records.jsonl`` once."""
    from infscale.train.config import load_train_config  # lazy: numpy
    from infscale.train.data import prepare_data  # lazy: numpy
    from infscale.train.sweep import append_record  # lazy: numpy
    from infscale.train.trainer import default_run_id, plan_tokens, resolve_shape, train  # lazy: numpy

    path = resolve_recipe(config)
    out = out or default_out("train", path.stem)
    check_output_dir(out)
    cfg = load_train_config(path)
    d = cfg.data
    data = prepare_data(d.corpus, d.vocab_size, d.val_fraction, d.cache_dir, d.max_bytes)
    shape = resolve_shape(cfg, data.vocab_size)
    _, n_tokens = plan_tokens(cfg, shape.n_params, int(os.environ.get("WORLD_SIZE", "1")))
    run_id = cfg.run_id or default_run_id(shape, n_tokens, cfg.group)
    record = train(cfg, out / run_id, data=data)
    if record is None or int(os.environ.get("RANK", "0")) != 0:
        return TrainResult(out=out, run_id=run_id, record=None)
    append_record(out / "records.jsonl", record)
    return TrainResult(out=out, run_id=run_id, record=record)


def run_sweep_config(config: str | Path, out: Path | None = None, *, executor: str | None = None,
                     workers: int | None = None,
                     on_record: Callable[[dict[str, Any], bool], None] | None = None) -> SweepResult:
    """Run the sweep grid of ``config`` into ``out`` (default ``infscale-out/sweep-<name>``): finished runs are kept,
    interrupted ones resume; ``on_record(record, new)`` hears of each run as it ends."""
    from infscale.train.config import load_sweep_config  # lazy: numpy
    from infscale.train.sweep import run_sweep  # lazy: numpy

    check_number("--workers", workers, low=1, inclusive=True)
    path = resolve_recipe(config)
    out = out or default_out("sweep", path.stem)
    sweep = load_sweep_config(path)
    records = run_sweep(sweep, out, executor=executor, workers=workers, source=str(path), on_record=on_record)
    return SweepResult(out=out, records=records)


def list_runs(directory: Path) -> RunsListing:
    """The finished runs (``records.jsonl``) and those in progress of a train or sweep directory, also while a sweep
    runs; a directory of tts runs (or a tts records file) is one line naming the command that reads it."""
    from infscale.train.sweep import read_run_records, runs_in_progress  # lazy: numpy

    path = directory if directory.suffix == ".jsonl" else directory / "records.jsonl"
    if not path.exists() and not (path.parent / "runs").is_dir():
        raise InputError(f"{path}: no records file and no runs/ (run `infscale sweep` or `infscale train` first)")
    records = read_run_records(path)
    partial = runs_in_progress(path.parent, {r["run_id"] for r in records})
    tts_runs = sorted((path.parent / "runs").glob("*/records.jsonl"))
    if not records and not partial and tts_runs:
        raise InputError(f"{path.parent}: no training runs here; runs/ holds tts runs ({tts_runs[0].parent.name}, ...): "
                         "`infscale tts analyze` reads them")
    return RunsListing(path=path, records=records, in_progress=partial)
