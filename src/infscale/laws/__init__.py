"""infscale.laws: scaling-law forms, fitters (Huber/L-BFGS multi-start, least squares), bootstrap, validation,
diagnostics and compute-optimal allocation. Pure numpy/scipy/pandas; file reading lives in `infscale.laws.io`.

    from infscale.laws import load_runs, HuberFitter, load_fit
    law = HuberFitter("chinchilla").fit(load_runs("chinchilla")).law_
    law.predict(n_params, n_tokens); law.allocate_compute(1e21)
"""

from infscale.laws.bootstrap import BootstrapResult, bootstrap
from infscale.laws.fit import HuberFitter, LeastSquaresFitter, make_fitter
from infscale.laws.fitted import Allocation, FittedLaw
from infscale.laws.forms import LAWS, LawForm, get_law
from infscale.laws.io import load_fit, load_runs, save_fit
from infscale.laws.pipeline import FitReport, run_fit
from infscale.laws.runs import Runs
from infscale.laws.validate import Validation, validate


def allocate_compute(law: FittedLaw, train_flops: float, aspect_ratio: float | None = None) -> Allocation:
    """Compute-optimal (N, D) for C = 6ND training FLOPs; see `FittedLaw.allocate_compute`."""
    return law.allocate_compute(train_flops, aspect_ratio)


__all__ = [
    "Allocation", "BootstrapResult", "FitReport", "FittedLaw", "HuberFitter", "LAWS", "LawForm", "LeastSquaresFitter",
    "Runs", "Validation", "allocate_compute", "bootstrap", "get_law", "load_fit", "load_runs", "make_fitter", "run_fit",
    "save_fit", "validate",
]
