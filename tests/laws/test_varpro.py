"""Variable projection for approach 3: on every bundled dataset its Huber objective is at most the 4,500-start grid's,
and its parameters fall inside the grid fit's bootstrap intervals; forms that are not linear in (E, A, B) once the
exponents are fixed are refused in one line. (Speed: benchmarks/bench_fit.py, never a timed test.)"""

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.laws.bootstrap import bootstrap
from infscale.laws.fit import HuberFitter, make_fitter
from infscale.laws.io import load_runs
from infscale.laws.varpro import VarProFitter, _nnls3


@pytest.mark.parametrize(("data", "law"), [("chinchilla", "chinchilla"), ("chinchilla", "chinchilla_tied"),
                                           ("gadre", "chinchilla"), ("sardana", "chinchilla"),
                                           ("bian2025", "chinchilla"), ("bian2025", "inference_aware"),
                                           ("bian2025", "inference_aware_free_gamma")])
def test_objective_at_most_the_grid_and_parameters_inside_its_intervals(data, law):
    runs = load_runs(data)
    grid = HuberFitter(law).fit(runs)
    vp = VarProFitter(law).fit(runs)
    assert vp.objective_ <= grid.objective_ * (1 + 1e-9), (vp.objective_, grid.objective_)
    boot = bootstrap(grid, runs, 100, random_state=0)
    for name, value in vp.params_.items():
        lo, hi = boot.low[name], boot.high[name]
        assert lo - 1e-6 * abs(lo) <= value <= hi + 1e-6 * abs(hi), (name, value, lo, hi)
    assert vp.law_.meta["fitter"] == "varpro" and vp.n_profiled_ > 0
    assert np.allclose(vp.predict(runs.n_params, runs.n_tokens, runs.aspect_ratio),
                       grid.predict(runs.n_params, runs.n_tokens, runs.aspect_ratio), rtol=1e-3)


def test_registered_and_refuses_other_forms():
    assert isinstance(make_fitter("varpro", "chinchilla"), VarProFitter)
    with pytest.raises(InputError, match=r"fitter 'varpro' needs a law linear in \(E, A, B\).*not 'kaplan'"):
        VarProFitter("kaplan").fit(load_runs("chinchilla"))


def test_nnls3_is_exact_on_a_known_answer():
    """The batched active-set solve equals the constrained optimum: an interior solution is the least-squares one, and
    a negative unconstrained coefficient is clamped to 0 with the rest re-solved."""
    from scipy.optimize import nnls

    rng = np.random.default_rng(0)
    z = rng.uniform(0.1, 2.0, size=(2, 40, 3))
    w = rng.uniform(0.5, 1.5, size=(2, 40))
    z[1, :, 2] = -z[1, :, 2]  # the third column pulls the wrong way: its coefficient must end at 0
    got = _nnls3(z, w)
    for g in range(2):
        sw = np.sqrt(w[g])
        want, _ = nnls(z[g] * sw[:, None], sw)
        assert got[g] == pytest.approx(want, abs=1e-8)
    assert got[1, 2] == 0.0
