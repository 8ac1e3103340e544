"""Test-time curves for the life-cycle planner from pilots: each model's majority vote, weighted vote and best-of-n
curves forecast from a pilot of a few samples per problem (`infscale.tts.analysis.forecast`), with their intervals,
instead of measured points at every n.

``testtime: {pilots: DIR, pilot: 8}`` names sampling records of several models (a run directory, or a directory of
run directories such as a `tts mini` study's ``runs/``): per model its greedy accuracy (the curves' base) and one i.i.d. sampling pool. The planner
fits its curves across sizes on the forecasts (and on their lower and upper bounds, which carry the interval into
the plan's accuracy); where the pool holds n samples the whole pool's accuracy is measured too, so each model's own
forecast error and the leave-one-size-out error (a size predicted from the other sizes' forecasts, against its
measured accuracy) are reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infscale.errors import InputError
from infscale.tts.analysis.points import pools_from_records
from infscale.tts.core.record_files import record_files
from infscale.workflows.lifecycle_inputs import Points, canonical_strategy, resolve
from infscale.workflows.tts_analysis import read_runs
from infscale.workflows.tts_forecast import SCORED_AGGREGATIONS, pilot_forecast, sampling_group

__all__ = ["PilotPoints", "pilot_points"]

_AGGREGATIONS = ("majority_vote", "weighted_vote", "best_of_n")


@dataclass(frozen=True, slots=True, kw_only=True)
class PilotPoints:
    """Per model: greedy (the base) and each aggregation's forecast at n = 1, 2, 4, ... up to the largest n asked."""

    forecast: Points
    low: Points
    """The same rows at the forecast interval's lower bound (greedy rows unchanged)."""
    high: Points
    measured: np.ndarray
    """Per row of ``forecast``: the whole pool's accuracy where the pool holds n samples (NaN elsewhere)."""
    pilot: int
    pool_size: dict[str, int]
    own_error_points: dict[str, float]
    """Per model: mean absolute error of its own forecast against its measured rows, in points."""


def _points(rows: list[tuple], source: str) -> Points:
    cols = list(zip(*rows, strict=True))
    return Points(model=list(cols[0]), n_params=list(cols[1]), strategy=list(cols[2]), n=list(cols[3]),
                  accuracy=list(cols[4]), flops=list(cols[5]), source=source)


def _greedy(records: list[Any], model: str, source: str) -> tuple[float, float]:
    """The model's greedy accuracy and FLOPs per problem."""
    got = [r for r in records if r.model == model and r.strategy == "greedy" and r.error is None]
    if not got:
        raise InputError(f"{source}: model {model!r} has no greedy records (the base accuracy its curves start "
                         "from): run greedy beside the sampling pool")
    acc = float(np.mean([bool(r.correct.get("greedy")) for r in got]))
    return acc, float(np.mean([r.ledger.policy_prefill_flops + r.ledger.policy_decode_flops for r in got]))


def _run_dirs(root: Path, source: str) -> list[Path]:
    """A records file or run directory, or a directory of run directories (a `tts mini` study's ``runs/``)."""
    if not root.is_dir() or record_files(root):
        return [root]
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and record_files(d))
    if not dirs:
        raise InputError(f"testtime.pilots {source}: no records (records.jsonl) in it or in its subdirectories")
    return dirs


def pilot_points(path: str, base: Path, *, pilot: int, n_max: int, seed: int = 0) -> PilotPoints:
    """Forecast every model of the records under ``path`` from a pilot of ``pilot`` samples to ``n_max``."""
    source = str(path)
    records = read_runs(_run_dirs(resolve(path, base), source))
    models = sorted({r.model for r in records})
    ns = np.unique(np.concatenate([2 ** np.arange(int(np.log2(max(n_max, 1))) + 1), [n_max]])).astype(np.int64)
    rows: dict[str, list[tuple]] = {"mean": [], "low": [], "high": []}
    measured: list[float] = []
    pool_size, own_error = {}, {}
    for model in models:
        group = sampling_group([r for r in records if r.model == model], f"{source} (model {model})")
        pools = pools_from_records(group)
        if pilot > pools.pool_size:
            raise InputError(f"testtime.pilot: {pilot} samples, but model {model!r} in {source} has "
                             f"{pools.pool_size} per problem")
        aggs = [a for a in _AGGREGATIONS if a not in SCORED_AGGREGATIONS or pools.has_scores]
        pf = pilot_forecast(group, pools, pilot, n_max, aggs, ns=ns, measured_bootstrap=1, seed=seed)
        f, held, truth, flops = pf.forecast, pf.held, pf.measured, pf.flops
        n_params = float(group[0].n_params)
        g_acc, g_flops = _greedy(records, model, source)
        for key in rows:
            rows[key].append((model, n_params, "greedy", 1, g_acc, g_flops))
        measured.append(g_acc)
        errs = []
        for a in aggs:
            curve = f.curves[a]
            name = canonical_strategy(f"sampling+{a}")
            cost = flops["scored" if a in SCORED_AGGREGATIONS else "plain"]
            for key, values in (("mean", curve.accuracy), ("low", curve.low), ("high", curve.high)):
                rows[key] += [(model, n_params, name, int(n), float(v), float(c))
                              for n, v, c in zip(ns, values, cost, strict=True)]
            got = np.full(ns.size, np.nan)
            got[: held.size] = truth[a].accuracy
            measured += got.tolist()
            errs += np.abs(curve.accuracy[: held.size] - truth[a].accuracy).tolist()
        pool_size[model] = pools.pool_size
        own_error[model] = 100.0 * float(np.mean(errs)) if errs else float("nan")
    label = f"forecasts from pilots of {pilot} ({source})"
    return PilotPoints(forecast=_points(rows["mean"], label), low=_points(rows["low"], label),
                       high=_points(rows["high"], label), measured=np.asarray(measured), pilot=pilot,
                       pool_size=pool_size, own_error_points=own_error)
