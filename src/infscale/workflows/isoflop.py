"""`infscale fit --method isoflop`: Hoffmann's approach 2 beside approach 3 on the same runs.

Reads the runs (a bundled dataset or a file), groups them into compute budgets (a ``C``/``FLOPs`` column where there
is one, else 6ND), fits approach 2 (`infscale.laws.isoflop`) with bootstrap intervals and approach 3 (the Huber fit
of the Chinchilla law, with its bootstrap), and compares their exponents and N_opt at one compute budget. Writes
``isoflop.json`` and the IsoFLOP figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_number, check_output_dir, write_json
from infscale.errors import InputError

FLOPS_COLUMNS = ("C", "flops", "FLOPs", "compute")


@dataclass(frozen=True, slots=True, kw_only=True)
class IsoFlopResult:
    source: str
    n_runs: int
    isoflop: Any
    """`infscale.laws.isoflop.IsoFlopFit`."""
    compare: list[dict[str, Any]]
    """One row per approach: a, b with intervals, N_opt and D_opt at ``at_flops``."""
    at_flops: float
    flops_from: str
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.source, "n_runs": self.n_runs, "flops_from": self.flops_from, "at_flops": self.at_flops,
                "approach2": self.isoflop.to_dict(), "compare": self.compare, "files": self.files}


def _flops(frame: Any) -> tuple[np.ndarray | None, str]:
    for col in FLOPS_COLUMNS:
        if col in frame.columns:
            return frame[col].to_numpy(dtype=float), f"column {col!r}"
    return None, "6 N D"


def run_isoflop(data: str, out: Path, *, at_flops: float | None = None, rel_tol: float = 0.05, n_boot: int = 200,
                seed: int = 0, plot: bool = True) -> IsoFlopResult:
    """Approach 2 and approach 3 on ``data``, compared at ``at_flops`` (default: the largest budget)."""
    from infscale.laws import HuberFitter, bootstrap, load_runs
    from infscale.laws.isoflop import approach3_exponents, isoflop_fit

    check_number("--bootstrap", n_boot, low=2, inclusive=True, high=100_000)
    check_number("--budget-tol", rel_tol, low=0.0, high=1.0)
    if at_flops is not None:
        check_number("--at-flops", at_flops, low=0.0)
    check_output_dir(out)
    runs = load_runs(data)
    flops, flops_from = _flops(runs.frame)
    iso = isoflop_fit(runs.n_params, runs.n_tokens, runs.loss, flops, rel_tol=rel_tol, n_boot=n_boot,
                      random_state=seed, source=runs.source)
    c_star = float(at_flops if at_flops is not None else max(p.flops for p in iso.profiles))
    huber = HuberFitter("chinchilla").fit(runs)
    boot = bootstrap(huber, runs, n_boot, random_state=seed)
    p = huber.params_
    a3, b3 = approach3_exponents(p["alpha"], p["beta"])
    exps = np.array([approach3_exponents(al, be) for al, be in zip(boot.samples[:, 3], boot.samples[:, 4],
                                                                    strict=True)])
    q = (1 - iso.level) / 2
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    n3 = g * (c_star / 6) ** a3
    compare = [
        {"approach": "2: IsoFLOP profiles", "a": iso.a, "a_interval": [iso.a_low, iso.a_high], "b": iso.b,
         "b_interval": [iso.b_low, iso.b_high], "n_opt": float(iso.n_opt(c_star)), "d_opt": float(iso.d_opt(c_star)),
         "budgets": len(iso.profiles)},
        {"approach": "3: parametric (Huber)", "a": a3, "a_interval": [float(np.quantile(exps[:, 0], q)),
                                                                      float(np.quantile(exps[:, 0], 1 - q))],
         "b": b3, "b_interval": [float(np.quantile(exps[:, 1], q)), float(np.quantile(exps[:, 1], 1 - q))],
         "n_opt": float(n3), "d_opt": float(c_star / (6 * n3)), "params": dict(p)},
    ]
    result = IsoFlopResult(source=runs.source, n_runs=len(runs), isoflop=iso, compare=compare, at_flops=c_star,
                           flops_from=flops_from)
    out.mkdir(parents=True, exist_ok=True)
    result.files["isoflop_json"] = str(write_json(out / "isoflop.json", result.to_dict()))
    if plot:
        from infscale.report.isoflop_plot import plot_isoflop

        c = flops if flops is not None else 6.0 * runs.n_params * runs.n_tokens
        result.files["plot"] = str(plot_isoflop(iso, runs.n_params, runs.loss, c, out / "isoflop.png",
                                                title=f"{runs.source}: IsoFLOP profiles (approach 2)"))
    return result


def check_method(method: str) -> None:
    if method not in ("parametric", "isoflop"):
        raise InputError(f"--method {method!r}: expected parametric (approach 3) or isoflop (approach 2)")
