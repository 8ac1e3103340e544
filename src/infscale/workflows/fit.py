"""`infscale fit` as a workflow: resolve the dataset's defaults (law, fitter, fit/held-out split, baseline), fit
each law with bootstrap intervals and held-out validation (`infscale.laws.run_fit`), and write ``fit.json``, the
``--save`` copy and the predicted-vs-actual plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infscale.configio import check_number, check_output_dir, check_output_file
from infscale.data import DATASETS
from infscale.errors import InputError

MAX_BOOTSTRAP = 100_000
"""Bootstrap refits beyond this change no reported digit and only cost time and memory."""

__all__ = ["FitRequest", "FitResult", "run_fit_request"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FitRequest:
    data: str = "bian2025"
    law: str | None = None
    fitter: str | None = None
    fit_on: str | None = None
    baseline: str | None = None
    n_boot: int = 200
    seed: int = 0
    out: Path = Path("infscale-out/fit")  # the CLI gives infscale-out/fit-<UTC time>
    save: Path | None = None
    plot: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    runs: Any
    """The `Runs` fitted."""
    reports: list[Any]
    """One `FitReport` per law: the main one first, then the baseline."""
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.runs.source, "n_runs": len(self.runs), "fits": [r.to_dict() for r in self.reports],
                "files": self.files}


def run_fit_request(req: FitRequest) -> FitResult:
    """Fit the requested law (and baseline) on the requested data; every bad flag is one `InputError` line."""
    from infscale.laws.fit import FITTERS  # lazy: numpy, pandas
    from infscale.laws.forms import get_law  # lazy: numpy
    from infscale.laws.io import load_runs, save_fit  # lazy: numpy, pandas
    from infscale.laws.pipeline import run_fit  # lazy: numpy, pandas

    info = DATASETS.get(req.data) if req.data in DATASETS else None
    law = req.law or (info.default_law if info else "chinchilla")
    fitter = req.fitter or ("least_squares" if req.data == "bian2025" else "huber")
    fit_on = info.default_fit_on if req.fit_on is None and info is not None else req.fit_on
    fit_on = None if fit_on == "all" else fit_on
    baseline = req.baseline
    if baseline is None:
        baseline = "chinchilla_tied" if req.data == "bian2025" and law != "chinchilla_tied" else "none"
    laws = [law] + ([] if baseline == "none" else [baseline])
    for name in laws:
        try:
            get_law(name)
        except InputError as exc:
            raise InputError(f"--law/--baseline: {exc}") from None
    if fitter not in FITTERS:
        raise InputError(f"--fitter {fitter!r}: expected {' or '.join(FITTERS.names())}")
    check_number("--bootstrap", req.n_boot, inclusive=True, high=MAX_BOOTSTRAP)
    check_number("--seed", req.seed, inclusive=True)
    check_output_dir(req.out)
    if req.save is not None:
        check_output_file(req.save, "--save")
    runs = load_runs(req.data)
    reports = []
    for name in laws:
        try:
            reports.append(run_fit(runs, name, fitter, fit_on, n_boot=req.n_boot, random_state=req.seed))
        except ValueError as exc:
            raise InputError(f"{runs.source}: law {name!r}: {exc}") from None
    files = {"fit_json": str(save_fit(reports[0].law, req.out / "fit.json", reports[0].warnings))}
    if req.save is not None:
        files["saved"] = str(save_fit(reports[0].law, req.save, reports[0].warnings, boot=reports[0].boot))
    if req.plot:
        from infscale.report.fit_plot import plot_predicted_vs_actual  # lazy: numpy, pandas

        files["plot"] = str(plot_predicted_vs_actual(reports, runs, req.out / "predicted_vs_actual.png",
                                                     title=f"{runs.source}: fit on {fit_on or 'all rows'}"))
    return FitResult(runs=runs, reports=reports, files=files)
