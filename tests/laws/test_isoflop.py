"""Approach 2 (IsoFLOP profiles): a known answer recovered within its interval, data without IsoFLOP structure refused
in one line, the command end to end beside approach 3."""

import json

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.laws.isoflop import approach3_exponents, group_budgets, isoflop_fit

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def _isoflop_runs(noise: float = 0.002, seed: int = 1, sizes=(0.25, 4)):
    """Chinchilla-law losses on 6 IsoFLOP budgets, 9 sizes each (``sizes``: the span around the true optimum), with
    multiplicative noise."""
    rng = np.random.default_rng(seed)
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n, d, y = [], [], []
    for c in np.geomspace(1e18, 1e22, 6):
        n_opt = g * (c / 6) ** (BETA / (ALPHA + BETA))
        for f in np.geomspace(*sizes, 9):
            n.append(n_opt * f)
            d.append(c / (6 * n_opt * f))
            y.append((E + A * n[-1] ** -ALPHA + B * d[-1] ** -BETA) * np.exp(rng.normal(0, noise)))
    return np.array(n), np.array(d), np.array(y)


def test_known_answer_is_recovered_within_its_interval():
    n, d, y = _isoflop_runs()
    fit = isoflop_fit(n, d, y, n_boot=300)
    a_true, b_true = approach3_exponents(ALPHA, BETA)
    assert len(fit.profiles) == 6 and all(p.inside for p in fit.profiles)
    assert fit.a_low <= a_true <= fit.a_high and fit.b_low <= b_true <= fit.b_high
    assert fit.a_high - fit.a_low < 0.05 and fit.b == pytest.approx(1 - fit.a)
    # N_opt at a budget: the law's own optimum there, within a few percent (the parabola's bias in log N)
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    assert fit.n_opt(1e20) == pytest.approx(g * (1e20 / 6) ** a_true, rel=0.05)
    assert fit.d_opt(1e20) == pytest.approx(1e20 / (6 * fit.n_opt(1e20)))


def test_budgets_group_by_flops_within_the_tolerance():
    flops = np.array([1.0e18, 1.03e18, 0.99e18 * 1.0, 2e18, 2.05e18, 2.2e18, 5e18])
    n = np.array([1, 2, 3, 1, 2, 3, 4], dtype=float)
    groups = group_budgets(flops, n, rel_tol=0.05, min_runs=3)
    assert [sorted(g.tolist()) for g in groups] == [[0, 1, 2]]  # 2.2e18 is beyond 5% of 2e18: that budget has 2
    assert len(group_budgets(flops, n, rel_tol=0.15, min_runs=3)) == 2


def test_data_without_isoflop_structure_is_refused_in_one_line():
    n = np.geomspace(1e7, 1e9, 30)
    d = np.geomspace(1e9, 1e11, 30)  # every run its own compute, 37% above the one before
    with pytest.raises(InputError, match=r"mine: approach 2 \(IsoFLOP\) needs at least 2 compute budgets with >= 3 "
                                         r"runs of different N within 5% .* found 0"):
        isoflop_fit(n, d, E + A * n ** -ALPHA + B * d ** -BETA, source="mine")
    n, d, y = _isoflop_runs(noise=0.0, sizes=(3.0, 30.0))  # every run far above its budget's optimum
    with pytest.raises(InputError, match=r"whose runs bracket their minimum in N; 0 of"):
        isoflop_fit(n, d, y)


def test_isoflop_command_beside_approach3(tmp_path):
    from typer.testing import CliRunner

    from infscale.cli.main import app

    res = CliRunner().invoke(app, ["fit", "--data", "chinchilla", "--method", "isoflop", "--bootstrap", "50",
                                   "--out", str(tmp_path / "iso"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    two, three = out["compare"]
    assert two["approach"].startswith("2") and three["approach"].startswith("3")
    assert two["a_interval"][0] <= two["a"] <= two["a_interval"][1] and two["budgets"] >= 20
    assert 0.3 < two["a"] < 0.7 and abs(three["a"] - 0.5) < 0.05
    assert out["flops_from"] == "column 'C'" and (tmp_path / "iso" / "isoflop.png").is_file()
    res = CliRunner().invoke(app, ["fit", "--data", "gadre", "--method", "isoflop", "--out", str(tmp_path / "g")])
    assert "gadre: approach 2 (IsoFLOP) needs at least 2 compute budgets" in str(res.exception)
    assert not (tmp_path / "g").exists()
