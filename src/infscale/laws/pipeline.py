"""The `infscale fit` job as a library call: split runs, fit a law, bootstrap, validate, diagnose (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infscale.extrapolation import FitRange
from infscale.laws.bootstrap import BootstrapResult, bootstrap
from infscale.laws.diagnostics import diagnose
from infscale.laws.fit import make_fitter
from infscale.laws.fitted import FittedLaw
from infscale.laws.forms import get_law
from infscale.laws.runs import Runs
from infscale.laws.validate import Validation, validate


@dataclass(frozen=True, slots=True)
class FitReport:
    law: FittedLaw
    fitter: str
    fit_on: str | None
    n_fit: int
    n_held_out: int
    objective: float
    validation: Validation
    boot: BootstrapResult | None
    warnings: tuple[str, ...]

    def to_dict(self) -> dict:
        v = self.validation

        def sc(s):
            return None if s is None else {"n_runs": s.n_runs, "mse": s.mse, "r2": s.r2, "spearman": s.spearman,
                                           "max_rel_err": s.max_rel_err}

        out = {
            "law": self.law.name, "fitter": self.fitter, "fit_on": self.fit_on, "n_fit": self.n_fit,
            "n_held_out": self.n_held_out, "objective": self.objective, "params": dict(self.law.params_),
            "validation": {"fit": sc(v.fit), "all": sc(v.all), "held_out": sc(v.held_out),
                           "per_group": [{"group": g.group, "n_runs": g.n_runs, "spearman": g.spearman, "mse": g.mse}
                                         for g in v.per_group]},
            "warnings": list(self.warnings),
        }
        if self.boot is not None:
            out["bootstrap"] = {"n_boot": int(self.boot.samples.shape[0]), "level": self.boot.level,
                                "low": self.boot.low, "high": self.boot.high}
        return out


def check_design(runs: Runs, law: str) -> None:
    """A fit needs at least as many distinct runs as the law has parameters: fewer (one or two runs, or runs that
    all sit at one point) leave the law undetermined and any parameters fit them (`ValueError` naming the counts)."""
    form = get_law(law)
    cols = [c for c in ("N", "D", "aspect_ratio", "ffn_ratio", "kv_group") if c in runs.frame.columns]
    distinct = len(runs.frame[cols].drop_duplicates())
    need = len(form.param_names)
    if distinct < need:
        at = "at one point" if distinct == 1 else f"at {distinct} distinct points ({', '.join(cols)})"
        raise ValueError(f"{len(runs)} run(s) {at}: the law has {len(form.param_names)} parameters, so a fit needs "
                         f"runs at {need} distinct points at least")


def run_fit(runs: Runs, law: str, fitter: str, fit_on: str | None = None, n_boot: int = 0,
            random_state: int | None = 0) -> FitReport:
    fit_runs, held_runs = runs.split(fit_on)
    check_design(fit_runs, law)
    est = make_fitter(fitter, law).fit(fit_runs)
    boot = bootstrap(est, fit_runs, n_boot, random_state=random_state) if n_boot >= 2 else None
    frame = fit_runs.frame
    def column(name: str) -> Any:
        return frame[name] if name in frame.columns else None

    fit_range = FitRange.from_arrays(frame["N"], frame["D"], frame["loss"], column("aspect_ratio"),
                                     column("ffn_ratio"), column("kv_group"))
    fitted = FittedLaw(est.law_.law, est.params_, {**est.law_.meta, "data": runs.source, "fit_on": fit_on,
                                                   "n_fit": len(fit_runs), "fit_range": fit_range.to_dict()})
    val = validate(fitted, fit_runs, held_runs)
    return FitReport(law=fitted, fitter=fitter, fit_on=fit_on, n_fit=len(fit_runs), n_held_out=len(held_runs),
                     objective=float(est.objective_), validation=val, boot=boot,
                     warnings=tuple(diagnose(fitted, fit_runs, boot)))
