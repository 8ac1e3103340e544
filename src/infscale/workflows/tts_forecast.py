"""`infscale tts forecast RUN... --pilot M --to N`: test-time scaling forecast from a pilot, checked where measured.

Reads the records of one model's i.i.d. sampling strategy (the largest pool of its runs), takes a pilot of ``M``
samples per problem (a random subset keyed per problem), forecasts pass@n, majority vote and, with rewards, weighted
vote and best-of-n up to n = ``N`` (`infscale.tts.analysis.forecast`), prices each n with the run's FLOPs ledger
(prompt once, then decode and scoring per sample), finds the smallest n reaching ``--target``, and, wherever the pool
holds n samples, measures the same accuracy exactly on the whole pool and reports the forecast's error and its
interval's coverage. Writes ``forecast.json``, ``forecast.csv`` and ``forecast.png`` (bands, measured points).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_number, check_output_dir, write_csv, write_json
from infscale.errors import InputError
from infscale.report.tts_plots import plot_forecast
from infscale.tts.analysis.accuracy import accuracy_at_n
from infscale.tts.analysis.points import pools_from_records
from infscale.tts.core.records import SAMPLING_NAMES
from infscale.workflows.tts_analysis import read_runs

__all__ = ["SCORED_AGGREGATIONS", "ForecastReport", "PilotForecast", "flops_per_problem", "forecast_runs",
           "forecast_records", "pilot_forecast", "sampling_group"]

SCORED_AGGREGATIONS = ("weighted_vote", "best_of_n")
"""The aggregations that read reward scores (and pay for the reward model per sample)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastReport:
    source: str
    model: str
    strategy: str
    n_problems: int
    pool_size: int
    pilot: int
    n_max: int
    level: float
    aggregations: list[str]
    rows: list[dict[str, Any]]
    """One row per aggregation and n: forecast with interval, measured (where the pool allows) and FLOPs per problem."""
    validation: dict[str, dict[str, float]]
    """Per aggregation, over the n the pool holds: mean and max absolute error (points) and the interval's coverage."""
    targets: dict[str, dict[str, Any]]
    """Per aggregation: the smallest n reaching the target (forecast, interval, measured)."""
    limits: dict[str, float]
    prior: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def sampling_group(records: Sequence[Any], source: str) -> list[Any]:
    """The records of the one i.i.d. sampling (model, strategy, budget) with the largest pool; mixed tasks or models
    are refused in one line."""

    ok = [r for r in records if r.error is None and (r.iid if r.iid is not None else r.strategy in SAMPLING_NAMES)]
    if not ok:
        raise InputError(f"{source}: no i.i.d. sampling records (sampling, best_of_n or weighted_vote): a forecast "
                         "subsamples a pool of independent samples")
    models = sorted({r.model for r in ok})
    if len(models) > 1:
        raise InputError(f"{source}: records of {len(models)} models ({', '.join(models)}): forecast one model at "
                         "a time")
    tasks = sorted({r.problem_id.rsplit("-", 1)[0] for r in ok})
    if len({r.run for r in ok}) > 1 and len(tasks) > 1:
        raise InputError(f"{source}: records of different tasks ({', '.join(tasks[:3])}): forecast one task at a time")
    best = max({(r.strategy, r.budget) for r in ok}, key=lambda k: (k[1], k[0]))
    group = [r for r in ok if (r.strategy, r.budget) == best]
    seen: dict[str, Any] = {}
    for r in group:
        if r.problem_id in seen:
            raise InputError(f"{source}: problem {r.problem_id!r} appears twice for {best[0]} n={best[1]} (two runs "
                             "of the same problems?): give one run")
        seen[r.problem_id] = r
    return group


@dataclass(frozen=True, slots=True)
class PilotForecast:
    """One pool's forecast from a pilot, beside what the whole pool measures where it holds n samples."""

    forecast: Any
    """`infscale.tts.analysis.forecast.Forecast`: each aggregation's curve with its interval at ``ns``."""
    ns: np.ndarray
    held: np.ndarray
    """The n of ``ns`` the pool holds (measured exactly on the whole pool)."""
    measured: dict[str, Any]
    """Per aggregation: the whole pool's accuracy at ``held``."""
    flops: dict[str, np.ndarray]
    """FLOPs per problem at ``ns``: ``plain`` (policy) and ``scored`` (policy and reward model)."""


def pilot_forecast(group: Sequence[Any], pools: Any, pilot: int, n_max: int, aggregations: Sequence[str], *,
                   ns: np.ndarray | None = None, n_draws: int = 16, n_bootstrap: int = 400, level: float = 0.9,
                   measured_bootstrap: int = 200, seed: int = 0) -> PilotForecast:
    """The pipeline `tts forecast` and the life-cycle planner's pilots share: a pilot of ``pilot`` samples per problem
    (keyed by ``seed``), its forecast to ``n_max``, the whole pool's accuracy where it holds n, and the FLOPs per
    problem at each n (from ``group``'s ledgers). The callers check ``pilot`` against the pool in their own words."""
    from infscale.tts.analysis.forecast import forecast, pilot_pools  # lazy: scipy

    fc = forecast(pilot_pools(pools, pilot, random_state=seed), n_max, ns=ns, n_draws=n_draws,
                  n_bootstrap=n_bootstrap, level=level, random_state=seed)
    grid = fc.curves["pass"].ns
    held = grid[grid <= pools.pool_size]
    measured = accuracy_at_n(pools, held, aggregations=list(aggregations), n_bootstrap=measured_bootstrap,
                             random_state=seed) if held.size else {}
    return PilotForecast(forecast=fc, ns=grid, held=held, measured=measured,
                         flops=flops_per_problem(group, grid, pools.pool_size))


def flops_per_problem(records: Sequence[Any], ns: np.ndarray, pool: int) -> dict[str, np.ndarray]:
    """FLOPs per problem at each n from the ledger: the prompt once, decode per sample, the reward per sample for the
    scored aggregations."""
    prefill = float(np.mean([r.ledger.policy_prefill_flops for r in records]))
    decode = float(np.mean([r.ledger.policy_decode_flops for r in records])) / pool
    reward = float(np.mean([r.ledger.reward_flops for r in records])) / pool
    plain = prefill + decode * ns
    return {"plain": plain, "scored": plain + reward * ns}


def forecast_records(records: Sequence[Any], out: Path, *, pilot: int, n_max: int, target: float | None = None,
                     aggregations: Sequence[str] | None = None, level: float = 0.9, n_draws: int = 16,
                     n_bootstrap: int = 400, seed: int = 0, source: str = "<records>", plot: bool = True
                     ) -> ForecastReport:
    from infscale.tts.analysis.forecast import FORECAST_AGGREGATIONS, smallest_n  # lazy: scipy

    check_number("--pilot", pilot, low=1, inclusive=True)
    check_number("--to", n_max, low=1, inclusive=True)
    check_number("--level", level, low=0.0, high=1.0)
    if target is not None:
        check_number("--target", target, low=0.0, high=1.0)
    group = sampling_group(records, source)
    pools = pools_from_records(group)
    if pilot > pools.pool_size:
        raise InputError(f"--pilot {pilot}: the runs hold {pools.pool_size} samples per problem "
                         f"({group[0].strategy} n={group[0].budget}); a pilot cannot be larger than the pool")
    wanted = list(aggregations) if aggregations else [a for a in FORECAST_AGGREGATIONS
                                                      if a not in SCORED_AGGREGATIONS or pools.has_scores]
    unknown = [a for a in wanted if a not in FORECAST_AGGREGATIONS]
    if unknown:
        raise InputError(f"--aggregation {unknown[0]!r}: expected one of {', '.join(FORECAST_AGGREGATIONS)}")
    if any(a in SCORED_AGGREGATIONS for a in wanted) and not pools.has_scores:
        raise InputError(f"{source}: --aggregation {next(a for a in wanted if a in SCORED_AGGREGATIONS)} needs reward scores and "
                         f"the records of {group[0].strategy} n={group[0].budget} carry none: run with a reward")
    check_output_dir(out)
    pf = pilot_forecast(group, pools, pilot, n_max, wanted, n_draws=n_draws, n_bootstrap=n_bootstrap, level=level,
                        seed=seed)
    fc, ns, held, measured, flops = pf.forecast, pf.ns, pf.held, pf.measured, pf.flops
    rows, validation, targets = [], {}, {}
    for agg in wanted:
        c = fc.curves[agg]
        meas = measured.get(agg)
        lookup = dict(zip(held.tolist(), meas.accuracy.tolist(), strict=True)) if meas is not None else {}
        cost = flops["scored" if agg in SCORED_AGGREGATIONS else "plain"]
        for j, n in enumerate(ns.tolist()):
            rows.append({"aggregation": agg, "n": n, "forecast": float(c.accuracy[j]), "low": float(c.low[j]),
                         "high": float(c.high[j]), "measured": lookup.get(n), "flops_per_problem": float(cost[j])})
        if meas is not None:
            idx = np.searchsorted(ns, held)
            err = 100 * np.abs(c.accuracy[idx] - meas.accuracy)
            inside = (meas.accuracy >= c.low[idx]) & (meas.accuracy <= c.high[idx])
            validation[agg] = {"n_points": int(held.size), "mae_points": float(err.mean()),
                               "max_points": float(err.max()), "coverage": float(inside.mean())}
        if target is not None:
            n_hat, lo, hi = smallest_n(c, target)
            hit = [n for n, acc in lookup.items() if acc >= target]
            targets[agg] = {"target": target, "n": n_hat, "low": lo, "high": hi,
                            "measured_n": min(hit) if hit else None,
                            "flops_per_problem": None if n_hat is None else float(
                                cost[int(np.searchsorted(ns, n_hat))])}
    report = ForecastReport(
        source=source, model=group[0].model, strategy=group[0].strategy, n_problems=pools.n_problems,
        pool_size=pools.pool_size, pilot=pilot, n_max=n_max, level=level, aggregations=wanted, rows=rows,
        validation=validation, targets=targets, limits=dict(fc.limits),
        prior={"a": fc.prior.a, "b": fc.prior.b, "mean": fc.prior.mean}, warnings=list(fc.warnings))
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(write_json(out / "forecast.json", report.to_dict())),
             "csv": write_csv(out / "forecast.csv", rows)}
    if plot:
        files["png"] = str(plot_forecast(rows, out / "forecast.png", title=f"{report.model}: forecast from "
                                         f"{pilot} samples per problem ({report.n_problems} problems)"))
    report.files.update(files)
    return report


def forecast_runs(runs: Sequence[Path], out: Path, **kwargs: Any) -> ForecastReport:
    """`forecast_records` on the records of run directories or JSONL files."""

    return forecast_records(read_runs(runs), out, source=", ".join(str(r) for r in runs), **kwargs)
