"""Inputs of the life-cycle planner read from files: the loss law, the loss -> accuracy link fitted on runs with a
downstream metric, and operating points (`tts analyze` / `tts mini` points.csv, Wu et al.'s tables, the bundled mini
study) turned into the planner's strategy names. Every bad file or column is one `InputError` naming it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from infscale.errors import InputError
from infscale.laws.fitted import FittedLaw, physical_problems
from infscale.renames import current_name
from infscale.workflows.wu2025_tables import load_wu2025_points

__all__ = ["MINI_POINTS", "Points", "canonical_strategy", "fit_link", "load_law", "load_points"]

MINI_POINTS = "tts_mini_points.csv"
"""The project's own mini study (three policy sizes), bundled in infscale/data (see data/SOURCE.md)."""

# Wu et al.'s table labels, in the analysis's strategy+aggregation form
_WU2025 = {"sampling+mv": "sampling+majority_vote", "sampling+bon": "sampling+best_of_n",
           "sampling+wv": "sampling+weighted_vote", "rebase+wv": "rebase+weighted_vote",
           "sampling": "sampling+weighted_vote", "rebase": "rebase+weighted_vote", "greedy": "greedy+greedy"}


def canonical_strategy(label: str) -> str:
    """The planner's name for an operating point's strategy label (`infscale.tts.core.spec.planner_name`: every
    registered strategy, plugins included); others, e.g. ``rebase+majority_vote`` or ``beam+weighted_vote``, keep
    their label: measured points of them can be chosen, not trained for."""
    from infscale.tts.core.spec import planner_name  # lazy: pydantic

    key = str(label).strip().lower()
    return planner_name(_WU2025.get(key, key))


def resolve(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def load_law(spec: Any, base: Path) -> Any:
    """The loss law of a `LawSource`: a saved fit, one fitted now, or given by its parameters."""
    from infscale.laws.io import load_fit  # lazy: pandas, pydantic

    if spec.path is not None:
        return load_fit(resolve(spec.path, base))
    if spec.fit is not None:
        from infscale.laws.io import load_runs  # lazy: pandas, pydantic
        from infscale.laws.pipeline import run_fit  # lazy: pandas

        data = spec.fit.data
        source = str(resolve(data, base)) if Path(data).suffix else data
        return run_fit(load_runs(source), spec.fit.law, spec.fit.fitter, spec.fit.fit_on).law
    problems = physical_problems(spec.params)
    if problems:
        raise InputError(f"law.params: {problems[0]}")
    try:
        return FittedLaw.from_dict(spec.law, spec.params, {"data": "given in the deployment file"})
    except (ValueError, KeyError) as exc:
        raise InputError(f"law: {exc}") from None


def fit_link(spec: Any, base: Path) -> tuple[Any, dict[str, Any]]:
    """The loss -> error link of an `AccuracySpec` and its validation (held-out error on the larger-compute runs)."""
    from infscale.laws.downstream import ACCURACY_LINKS, heldout_error  # lazy: scipy

    cls = ACCURACY_LINKS.get(spec.form)
    if spec.params is not None:
        if spec.loss_range is None:
            raise InputError("accuracy: given params need loss_range (the losses they were fitted on)")
        try:
            return cls.from_params(spec.params, spec.loss_range), {"source": "given", "form": spec.form}
        except KeyError as exc:
            raise InputError(f"accuracy.params: missing {exc} for form {spec.form}") from None
    from infscale.laws.io import load_runs  # lazy: pandas, pydantic

    source = str(resolve(spec.data, base)) if Path(spec.data).suffix else spec.data
    frame = load_runs(source).frame
    where = f"accuracy.data {spec.data}"
    if spec.loss_column not in frame.columns:
        raise InputError(f"{where}: no column {spec.loss_column!r} (accuracy.loss_column)")
    if spec.accuracy_column is not None:
        if spec.accuracy_column not in frame.columns:
            raise InputError(f"{where}: no column {spec.accuracy_column!r} (accuracy.accuracy_column)")
        err = 1.0 - frame[spec.accuracy_column].to_numpy(dtype=float)
        metric = spec.accuracy_column
    else:
        cols = [c for c in frame.columns if c == spec.error_columns or str(c).startswith(spec.error_columns)]
        if not cols:
            raise InputError(f"{where}: no column named or starting with {spec.error_columns!r} "
                             "(accuracy.error_columns)")
        err = frame[cols].to_numpy(dtype=float).mean(axis=1)
        metric = f"mean of {len(cols)} {spec.error_columns}* columns"
    loss = frame[spec.loss_column].to_numpy(dtype=float)
    compute = 6.0 * frame["N"].to_numpy(dtype=float) * frame["D"].to_numpy(dtype=float)
    try:
        link = cls().fit(loss, err)
        held = heldout_error(spec.form, loss, err, compute, spec.heldout_fraction)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    info = {"source": spec.data, "metric": metric, "loss_column": spec.loss_column, "n_runs": int(np.isfinite(
        loss).sum()), "rmse_points": 100 * link.rmse_, "heldout": held.to_dict(), **link.to_dict()}
    return link, info


@dataclass(frozen=True, slots=True, kw_only=True)
class Points:
    """Operating points in the planner's terms (one row per model x strategy x n)."""

    model: list[str]
    n_params: list[float]
    strategy: list[str]
    n: list[int]
    accuracy: list[float]
    flops: list[float]
    source: str

    def base_accuracy(self) -> dict[str, float]:
        """Greedy accuracy of every model (a model without a greedy point is an error)."""
        base = {m: a for m, s, a in zip(self.model, self.strategy, self.accuracy, strict=True) if s == "greedy"}
        missing = sorted(set(self.model) - set(base))
        if missing:
            raise InputError(f"{self.source}: model {missing[0]!r} has no greedy point (its base accuracy)")
        return base


def _wu2025(dataset: str) -> Points:
    rows = [(p.model, float(p.n_params), canonical_strategy(p.strategy), int(p.n), float(p.accuracy),
             float(p.wu2025_flops)) for p in load_wu2025_points(dataset)]
    return _points(rows, f"Wu et al. tables ({dataset})")


def _points(rows: list[tuple], source: str) -> Points:
    seen: dict[tuple[str, str, int], tuple] = {}
    for r in rows:
        seen.setdefault((r[0], r[2], r[3]), r)  # one point per model x strategy x n (the first table's)
    cols = list(zip(*seen.values(), strict=True)) if seen else [[]] * 6
    return Points(model=list(cols[0]), n_params=list(cols[1]), strategy=list(cols[2]), n=list(cols[3]),
                  accuracy=list(cols[4]), flops=list(cols[5]), source=source)


def _csv(path: Path, source: str) -> Points:
    from infscale.configio import read_text  # lazy: pydantic

    text = read_text(path, what="points file")
    reader = csv.DictReader(text.splitlines())
    need = {"model", "n_params", "strategy", "n", "accuracy", "flops"}
    missing = sorted(need - set(reader.fieldnames or ()))
    if missing:
        raise InputError(f"{path}: points file lacks column {missing[0]!r} (needs {', '.join(sorted(need))})")
    rows = []
    for i, row in enumerate(reader, start=2):
        s = canonical_strategy(row["strategy"])
        try:
            rows.append((row["model"], float(row["n_params"]), s, int(float(row["n"])), float(row["accuracy"]),
                         float(row["flops"])))
        except ValueError:
            raise InputError(f"{path} row {i}: n_params, n, accuracy and flops must be numbers") from None
        if not 0.0 <= rows[-1][4] <= 1.0:
            raise InputError(f"{path} row {i}: accuracy {rows[-1][4]} is not a fraction in [0, 1]")
    if not rows:
        raise InputError(f"{path}: no operating point")
    return _points(rows, source)


def load_points(name: str, base: Path) -> Points:
    """``mini`` (bundled), ``wu2025-math500`` / ``wu2025-gsm8k``, or a points.csv path."""
    key = current_name(name.strip().lower())
    if key == "mini":
        ref = resources.files("infscale.data").joinpath(MINI_POINTS)
        with resources.as_file(ref) as path:
            return _csv(Path(path), "bundled mini study (infscale/data/tts_mini_points.csv)")
    if key in ("wu2025-math500", "wu2025-gsm8k"):
        return _wu2025("MATH500" if key.endswith("math500") else "GSM8K")
    return _csv(resolve(name, base), name)
