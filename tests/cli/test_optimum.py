"""`infscale optimum`: the compute-optimal N, D of a saved fit with bootstrap intervals from its replicates."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infscale.laws.io import load_fit, load_replicates


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_optimum_with_bootstrap_intervals(tmp_path):
    law = tmp_path / "chin.json"
    fit = run("fit", "--data", "chinchilla", "--law", "chinchilla", "--bootstrap", "40", "--save", str(law),
              "--out", str(tmp_path / "fit"))
    assert fit.returncode == 0, fit.stderr
    replicates, level = load_replicates(law)
    assert len(replicates) >= 35 and level == 0.95
    out = json.loads(run("optimum", "--law", str(law), "--flops", "5.76e23", "--json").stdout)
    ref = load_fit(law).allocate_compute(5.76e23)  # Hoffmann's closed form on the saved point estimate
    assert out["n_params"] == pytest.approx(ref.n_params, rel=1e-9)
    assert out["n_params"] * out["n_tokens"] * 6 == pytest.approx(5.76e23, rel=1e-9)
    assert 3e10 < out["n_params"] < 1.5e11  # Chinchilla's budget: about its 70B
    for key in ("n_params", "n_tokens", "tokens_per_param"):
        lo, hi = out["interval"][key]
        assert lo < out[key] < hi
    text = run("optimum", "--law", str(law), "--flops", "5.76e23").stdout
    assert "95% interval over" in text and "N_opt" in text


def test_optimum_without_replicates_says_so_and_bad_flags_are_one_line(tmp_path):
    from infscale.laws.fitted import FittedLaw
    from infscale.laws.io import save_fit

    law = save_fit(FittedLaw.from_dict("chinchilla", {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34,
                                                      "beta": 0.28}), tmp_path / "h.json")
    proc = run("optimum", "--law", str(law), "--flops", "1e22")
    assert proc.returncode == 0 and "carries no bootstrap replicates" in proc.stderr
    bad = run("optimum", "--law", str(law), "--flops", "-1")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--flops" in bad.stderr
