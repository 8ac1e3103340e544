"""FittedLaw: vectorised predict, compute-optimal allocation (closed form vs numeric), JSON round trip."""

import json

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.laws.fitted import FittedLaw, allocate_compute
from infscale.laws.io import load_fit, save_fit

HOFFMANN = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}


def test_predict_is_vectorised_and_matches_formula():
    law = FittedLaw.from_dict("chinchilla", HOFFMANN)
    n = np.array([[1e8], [1e9]])
    d = np.array([2e9, 2e10, 2e11])
    out = law.predict(n, d)
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(1.69 + 406.4 / 1e9 ** 0.34 + 410.7 / 2e11 ** 0.28)
    assert law.name == "chinchilla" and law.law.name == "chinchilla"


def test_closed_form_allocation_is_the_constrained_minimum():
    law = FittedLaw.from_dict("chinchilla", HOFFMANN)
    c = 5.76e23  # Gopher / Chinchilla budget
    a = allocate_compute(law, c)
    assert 6 * a.n_params * a.n_tokens == pytest.approx(c)
    # closed form: G (C/6)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))
    g = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62)
    assert a.n_params == pytest.approx(g * (c / 6) ** (0.28 / 0.62), rel=1e-12)
    # the constrained loss is minimal there: moving N either way along 6ND = C raises the loss
    for f in (0.9, 1.1):
        n = a.n_params * f
        assert law.predict(n, c / (6 * n)) > a.loss
    # numeric path (kaplan/gadre use it) agrees with the closed form
    gadre_equiv = FittedLaw.from_dict("gadre", {"E": 1.7, "a": 300.0, "b": 500.0, "eta": 0.15})
    a2 = gadre_equiv.allocate_compute(1e21)
    # same law written as E + A' N^-2eta + B' D^-2eta, closed form: A' = a 6^-eta, B' = b 6^-eta
    tied = FittedLaw.from_dict("chinchilla", {"A": 300 * 6 ** -0.15, "B": 500 * 6 ** -0.15, "E": 1.7,
                                              "alpha": 0.3, "beta": 0.3})
    assert a2.n_params == pytest.approx(tied.allocate_compute(1e21).n_params, rel=1e-6)


def test_shape_aware_allocation_needs_no_r_for_n_opt():
    law = FittedLaw.from_dict("inference_aware", {"A": 54754.43, "B": 778345.5, "E": 2.44751, "alpha": 0.614574,
                                                  "eps": 0.00114621})
    a64, a128 = law.allocate_compute(1e21, 64.0), law.allocate_compute(1e21, 128.0)
    assert a64.n_params == pytest.approx(a128.n_params) and a128.loss > a64.loss
    with pytest.raises(ValueError, match="aspect ratio"):
        law.predict(1e9, 2e10)


def test_save_load_round_trip(tmp_path):
    law = FittedLaw.from_dict("inference_aware_free_gamma", {"A": 50840.78, "B": 704729.0, "E": 2.4675, "alpha": 0.6096,
                                                             "eps": 2.358e-5, "gamma": 1.2561}, {"fitter": "ls"})
    path = save_fit(law, tmp_path / "sub" / "fit.json")
    back = load_fit(path)
    assert back.name == law.name and back.params_ == law.params_
    n, d, r = np.array([1e8, 1e9]), np.array([2e9, 2e10]), np.array([64.0, 128.0])
    np.testing.assert_array_equal(back.predict(n, d, r), law.predict(n, d, r))


def test_load_fit_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_fit(bad)
    bad.write_text(json.dumps({"law": "chinchilla", "params": {"A": 1.0}}))
    with pytest.raises(InputError, match="params"):
        load_fit(bad)


@pytest.mark.parametrize("change, needle", [
    ({"E": -5.0}, "field 'params.E': -5 <= 0"),
    ({"A": 0.0}, "field 'params.A': 0 <= 0"),
    ({"alpha": -0.5}, "field 'params.alpha': exponent -0.5 outside (0, 2)"),
    ({"alpha": 2.5}, "exponent 2.5 outside (0, 2)"),
    ({"B": float("nan")}, "not valid JSON (non-finite number NaN)"),
    ({"eps": True}, "field 'params.eps': True is not a finite number"),
    ({"E": "2.4"}, "field 'params.E': '2.4' is not a finite number"),
])
def test_a_saved_law_that_is_not_physical_is_refused(tmp_path, change, needle):
    import json

    good = {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574, "eps": 0.00114621}
    path = tmp_path / "law.json"
    path.write_text(json.dumps({"law": "inference_aware", "params": {**good, **change}}))
    with pytest.raises(InputError) as err:
        load_fit(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_a_saved_fit_carries_its_warnings_and_plan_repeats_them(tmp_path):
    import subprocess
    import sys

    from infscale.laws.io import save_fit

    law = FittedLaw.from_dict("inference_aware", {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574,
                                                  "eps": 0.00114621})
    save_fit(law, tmp_path / "law.json", warnings=["only 2 fit runs at >= 40 tokens/param"])
    assert load_fit(tmp_path / "law.json").meta["warnings"] == ["only 2 fit runs at >= 40 tokens/param"]
    res = subprocess.run([sys.executable, "-m", "infscale.cli.main", "plan", "--law", "law.json", "--params", "1e9",
                          "--tokens", "29e9", "--hardware", "a100-40gb-bian2025", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "warning: law.json: the fit was saved with a warning: only 2 fit runs at >= 40 tokens/param" in res.stderr
