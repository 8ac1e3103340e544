"""What a shape study's runs say about its laws: the seed-to-seed noise floor, and held-out scores with bootstrap
intervals (MSE, R^2, max relative error, and Bian et al.'s per-size Spearman of predicted vs measured loss across shapes at
equal D).

The intervals come from the fit's bootstrap replicates (the runs resampled, the law refitted): each replicate law scores
the held-out runs again. For the Spearman, each replicate also draws the measured losses anew around their values with
the measured seed-to-seed spread, so a rank order that the noise could flip shows up as a wide interval.
Pure: numpy and pandas (through `Runs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infscale.laws.fitted import FittedLaw
from infscale.laws.runs import Runs
from infscale.laws.validate import predict_runs, scores, spearman

__all__ = ["NoiseFloor", "Interval", "SizeRanking", "HeldOutScores", "noise_floor", "size_rankings",
           "held_out_scores"]


@dataclass(frozen=True, slots=True)
class NoiseFloor:
    """Seed-to-seed spread of the final validation loss: the same shape and D trained with different seeds."""

    group: str
    n_shapes: int
    n_seeds: int
    seed_std: float
    """Pooled standard deviation across seeds (the root mean of the per-shape variances), nats."""
    seed_rel_std: float
    """``seed_std`` over the mean loss."""
    per_shape: dict[str, dict[str, float]] = field(default_factory=dict)
    """Shape label -> ``mean``, ``std``, ``min``, ``max`` over its seeds."""
    val_se: float = float("nan")
    """Median standard error of one validation pass (the held-out token set's own sampling error), nats."""


def noise_floor(frame, group: str) -> NoiseFloor:
    """The noise floor of ``group`` from a runs table with columns ``group``, ``shape``, ``seed``, ``loss``
    (``loss_se`` optional); the runs of a shape must share D."""
    rows = frame[frame["group"] == group]
    per_shape: dict[str, dict[str, float]] = {}
    variances = []
    n_seeds = 0
    for shape, sub in rows.groupby("shape", sort=False):
        if sub["D"].nunique() > 1:
            sub = sub[sub["D"] == sub["D"].min()]
        losses = sub["loss"].to_numpy(dtype=float)
        if losses.size < 2:
            continue
        n_seeds = max(n_seeds, int(losses.size))
        variances.append(float(np.var(losses, ddof=1)))
        per_shape[str(shape)] = {"mean": float(losses.mean()), "std": float(np.std(losses, ddof=1)),
                                 "min": float(losses.min()), "max": float(losses.max())}
    if not variances:
        raise ValueError(f"noise floor: group {group!r} has no shape trained with two or more seeds")
    std = float(np.sqrt(np.mean(variances)))
    mean = float(np.mean([v["mean"] for v in per_shape.values()]))
    val_se = float(np.median(rows["loss_se"])) if "loss_se" in rows.columns else float("nan")
    return NoiseFloor(group=group, n_shapes=len(per_shape), n_seeds=n_seeds, seed_std=std, seed_rel_std=std / mean,
                      per_shape=per_shape, val_se=val_se)


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _interval(value: float, samples: np.ndarray, level: float) -> Interval:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return Interval(value, float("nan"), float("nan"))
    q = 50.0 * (1.0 - level)
    return Interval(value, float(np.percentile(samples, q)), float(np.percentile(samples, 100.0 - q)))


@dataclass(frozen=True, slots=True)
class SizeRanking:
    """Bian et al.'s per-size check: across the shapes of one size at equal D, does the law order them as measured?"""

    group: str
    n_params: float
    """Median N of the group's shapes."""
    n_shapes: int
    spearman: Interval
    spread: float
    """Measured loss of the worst shape minus the best, nats."""
    spread_over_noise: float
    """``spread`` over the seed-to-seed standard deviation (NaN without a noise floor)."""
    held_out: bool


def _replicate_laws(law: FittedLaw, samples: np.ndarray | None) -> list[FittedLaw]:
    if samples is None:
        return []
    return [FittedLaw(law.law, dict(zip(law.law.param_names, map(float, row), strict=True)), law.meta)
            for row in samples if np.all(np.isfinite(row))]


def size_rankings(law: FittedLaw, runs: Runs, held_out: set[str], *, samples: np.ndarray | None = None,
                  seed_std: float | None = None, level: float = 0.95, random_state: int = 0) -> list[SizeRanking]:
    """Per group, the Spearman of predicted vs measured loss over its shapes at its smallest D (the equal-D set),
    with an interval from the bootstrap replicate laws ``samples`` ((K, p) natural parameters) and, when
    ``seed_std`` is given, measured losses redrawn with that spread."""
    rng = np.random.default_rng(random_state)
    reps = _replicate_laws(law, samples)
    out = []
    frame = runs.frame
    for group in sorted(set(frame["group"]), key=lambda g: float(frame.loc[frame["group"] == g, "N"].median())):
        mask = (frame["group"] == group).to_numpy()
        d = frame.loc[mask, "D"].to_numpy(dtype=float)
        sub = runs.take(mask & (frame["D"].to_numpy(dtype=float) == d.min()))
        measured = sub.loss
        value = spearman(predict_runs(law, sub), measured)
        draws = []
        for rep in reps:
            noisy = measured + (rng.normal(0.0, seed_std, measured.size) if seed_std else 0.0)
            draws.append(spearman(predict_runs(rep, sub), noisy))
        spread = float(measured.max() - measured.min())
        out.append(SizeRanking(group=str(group), n_params=float(np.median(sub.n_params)), n_shapes=len(sub),
                               spearman=_interval(value, np.array(draws, dtype=float), level), spread=spread,
                               spread_over_noise=spread / seed_std if seed_std else float("nan"),
                               held_out=str(group) in held_out))
    return out


@dataclass(frozen=True, slots=True)
class HeldOutScores:
    n_runs: int
    mse: Interval
    r2: Interval
    max_rel_err: Interval


def held_out_scores(law: FittedLaw, held: Runs, *, samples: np.ndarray | None = None,
                    level: float = 0.95) -> HeldOutScores:
    """MSE, R^2 and max relative error of ``law`` on the held-out runs, each with the interval of the replicate laws."""
    base = scores(held.loss, predict_runs(law, held))
    reps = [scores(held.loss, predict_runs(r, held)) for r in _replicate_laws(law, samples)]

    def iv(name: str) -> Interval:
        return _interval(float(getattr(base, name)), np.array([getattr(r, name) for r in reps], dtype=float), level)

    return HeldOutScores(n_runs=len(held), mse=iv("mse"), r2=iv("r2"), max_rel_err=iv("max_rel_err"))
