"""`infscale fit --method isoflop|envelope`: Hoffmann's approaches 2 and 1 beside approach 3 on the same runs.

Reads the runs (a bundled dataset or a file), groups them into compute budgets (a ``C``/``FLOPs`` column where there
is one, else 6ND), fits approach 2 (`infscale.laws.isoflop`) with bootstrap intervals and approach 3 (the Huber fit
of the Chinchilla law, with its bootstrap), and compares their exponents and N_opt at one compute budget. Writes
``isoflop.json`` and the IsoFLOP figure. ``envelope`` reads the training curves of a directory of the trainer's runs
(``record.json`` + ``metrics.jsonl`` each, e.g. a sweep's or `infscale study`'s output), fits approach 1
(`infscale.laws.envelope`) and approach 3 on the runs' final losses, and writes ``envelope.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_number, check_output_dir, write_json
from infscale.errors import InputError
from infscale.laws.compute_optimal import ComputeOptimalFit
from infscale.laws.envelope import Curve, envelope_fit
from infscale.laws.isoflop import approach3_exponents, isoflop_fit
from infscale.records import read_records
from infscale.report.isoflop_plot import plot_isoflop

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
    from infscale.laws.io import load_runs  # lazy: pandas

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
    compare = [
        {**iso.comparison_row("2: IsoFLOP profiles", c_star), "budgets": len(iso.profiles)},
        approach3_row(runs, c_star, n_boot, seed, iso.level, "3: parametric (Huber)")]
    result = IsoFlopResult(source=runs.source, n_runs=len(runs), isoflop=iso, compare=compare, at_flops=c_star,
                           flops_from=flops_from)
    out.mkdir(parents=True, exist_ok=True)
    result.files["isoflop_json"] = str(write_json(out / "isoflop.json", result.to_dict()))
    if plot:
        c = flops if flops is not None else 6.0 * runs.n_params * runs.n_tokens
        result.files["plot"] = str(plot_isoflop(iso, runs.n_params, runs.loss, c, out / "isoflop.png",
                                                title=f"{runs.source}: IsoFLOP profiles (approach 2)"))
    return result


def approach3_row(runs: Any, c_star: float, n_boot: int, seed: int, level: float, label: str) -> dict[str, Any]:
    """Approach 3 on ``runs`` as a comparison row: the Huber fit of the Chinchilla law, its ``a = beta / (alpha +
    beta)``, ``b`` with bootstrap intervals, and N_opt, D_opt at ``c_star`` (Hoffmann's closed form)."""
    from infscale.laws.bootstrap import bootstrap  # lazy: pandas
    from infscale.laws.fit import HuberFitter  # lazy: pandas

    huber = HuberFitter("chinchilla").fit(runs)
    boot = bootstrap(huber, runs, n_boot, random_state=seed)
    p = huber.params_
    names = list(huber.form_.param_names)
    a_boot = [approach3_exponents(al, be)[0] for al, be in zip(boot.samples[:, names.index("alpha")],
                                                               boot.samples[:, names.index("beta")], strict=True)]
    q = (1 - level) / 2
    a3 = approach3_exponents(p["alpha"], p["beta"])[0]
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))  # N_opt = g (C / 6)^a
    law = ComputeOptimalFit(a=a3, a_low=float(np.quantile(a_boot, q)), a_high=float(np.quantile(a_boot, 1 - q)),
                            log_k_n=float(np.log(g) - a3 * np.log(6.0)), level=level)
    return {**law.comparison_row(label, c_star), "params": dict(p)}


def check_method(method: str) -> None:
    if method not in ("parametric", "isoflop", "envelope", "approaches"):
        raise InputError(f"--method {method!r}: expected parametric (approach 3), isoflop (approach 2), envelope "
                         "(approach 1) or approaches (all three on one directory of runs)")


def read_curves(path: Path) -> tuple[list[Any], Any]:
    """The training curves (``loss_smoothed`` against tokens seen) and the final points (N, D, validation loss) of
    every run under ``path`` (each a directory with ``record.json`` and ``metrics.jsonl``)."""

    import pandas as pd  # lazy: pandas

    from infscale.laws.runs import Runs  # lazy: pandas

    if not path.is_dir():
        raise InputError(f"{path}: approach 1 reads a directory of the trainer's runs (record.json + metrics.jsonl "
                         "each), e.g. a sweep's or `infscale study`'s output")
    curves, finals = [], []
    for rec_path in sorted(path.rglob("record.json")):
        try:
            rec = json.loads(rec_path.read_text(encoding="utf-8"))
            n, d, loss = float(rec["N"]), float(rec["D"]), float(rec["loss"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{rec_path}: not a run record ({exc.__class__.__name__}: {exc})") from None
        metrics = rec_path.parent / "metrics.jsonl"
        rows = [r for r in read_records(metrics) if "tokens" in r and "loss_smoothed" in r] if metrics.exists() else []
        if len(rows) < 2:
            continue
        curves.append(Curve(run_id=str(rec.get("run_id", rec_path.parent.name)), n_params=n,
                            tokens=np.array([r["tokens"] for r in rows], dtype=float),
                            loss=np.array([r["loss_smoothed"] for r in rows], dtype=float)))
        finals.append({"N": n, "D": d, "loss": loss})
    if not curves:
        raise InputError(f"{path}: no run with a training curve (record.json beside a metrics.jsonl of train lines)")
    return curves, Runs.from_frame(pd.DataFrame(finals), source=str(path))


def run_envelope(path: Path, out: Path, *, at_flops: float | None = None, n_boot: int = 200, seed: int = 0
                 ) -> dict[str, Any]:
    """Approach 1 on the training curves under ``path``, beside approach 3 on the runs' final losses."""

    check_number("--bootstrap", n_boot, low=2, inclusive=True, high=100_000)
    check_output_dir(out)
    curves, finals = read_curves(path)
    env = envelope_fit(curves, n_boot=n_boot, random_state=seed, source=str(path))
    c_star = float(at_flops if at_flops is not None else env.flops.max())
    compare = [env.comparison_row("1: training-curve envelope", c_star),
               approach3_row(finals, c_star, n_boot, seed, env.level, "3: parametric (Huber, final losses)")]
    result = {"data": str(path), "n_runs": len(curves), "at_flops": c_star, "approach1": env.to_dict(),
              "compare": compare}
    out.mkdir(parents=True, exist_ok=True)
    result["files"] = {"envelope_json": str(write_json(out / "envelope.json", result))}
    return result


def run_approaches(path: Path, out: Path, *, at_flops: float | None = None, rel_tol: float = 0.05, n_boot: int = 200,
                   seed: int = 0, plot: bool = True) -> dict[str, Any]:
    """Hoffmann's three approaches on one directory of the trainer's runs trained as IsoFLOP profiles (e.g. the
    bundled recipe ``isoflop_own``): approach 1 from their training curves, approach 2 from their final losses grouped
    into budgets (6ND within ``rel_tol``), approach 3 from the same final losses; one table at ``at_flops`` (default:
    the largest budget). Writes ``approaches.json`` and the IsoFLOP figure."""

    check_number("--bootstrap", n_boot, low=2, inclusive=True, high=100_000)
    check_number("--budget-tol", rel_tol, low=0.0, high=1.0)
    if at_flops is not None:
        check_number("--at-flops", at_flops, low=0.0)
    check_output_dir(out)
    curves, finals = read_curves(path)
    iso = isoflop_fit(finals.n_params, finals.n_tokens, finals.loss, None, rel_tol=rel_tol, n_boot=n_boot,
                      random_state=seed, source=str(path))
    env = envelope_fit(curves, n_boot=n_boot, random_state=seed, source=str(path))
    c_star = float(at_flops if at_flops is not None else max(p.flops for p in iso.profiles))
    compare = [env.comparison_row("1: training-curve envelope", c_star),
               {**iso.comparison_row("2: IsoFLOP profiles", c_star), "budgets": len(iso.profiles)},
               approach3_row(finals, c_star, n_boot, seed, iso.level, "3: parametric (Huber)")]
    result = {"data": str(path), "n_runs": len(curves), "at_flops": c_star, "approach1": env.to_dict(),
              "approach2": iso.to_dict(), "compare": compare}
    out.mkdir(parents=True, exist_ok=True)
    files = {"approaches_json": str(write_json(out / "approaches.json", result))}
    if plot:
        files["plot"] = str(plot_isoflop(iso, finals.n_params, finals.loss, 6.0 * finals.n_params * finals.n_tokens,
                                         out / "isoflop.png", title=f"{path}: IsoFLOP profiles (approach 2)"))
    result["files"] = files
    return result
