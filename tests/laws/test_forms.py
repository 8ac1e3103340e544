"""Law forms: log-space prediction equals the natural formula; analytic vector-Jacobian products equal finite differences."""

import numpy as np
import pytest

from infscale.laws.forms import LAWS, Architecture, Features, get_law

RNG = np.random.default_rng(1)
N = np.exp(RNG.uniform(np.log(5e7), np.log(2e10), 30))
D = np.exp(RNG.uniform(np.log(1e9), np.log(5e11), 30))
R = RNG.uniform(20.0, 250.0, 30)
ARCH = Architecture(d_model=RNG.uniform(512.0, 8192.0, 30), ffn_ratio=np.exp(RNG.uniform(-0.5, 2.0, 30)),
                    kv_group=2.0 ** RNG.integers(0, 4, 30))
X = Features.of(N, D, R, ARCH)


def _theta(name):
    grid = get_law(name).huber_grid()
    mid = grid[len(grid) // 2]
    return mid + RNG.normal(0, 0.05, size=mid.shape)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_log_prediction_matches_natural_formula(name):
    form = get_law(name)
    theta = _theta(name)
    lp, _ = form.log_predict_vjp(theta[None, :], X)
    natural = form.predict(form.from_log(theta), N, D, R, ARCH)
    np.testing.assert_allclose(np.exp(lp[0]), natural, rtol=1e-10)
    np.testing.assert_allclose(form.to_log(form.from_log(theta)), theta, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_vjp_matches_finite_differences(name):
    form = get_law(name)
    theta = np.stack([_theta(name), _theta(name)])
    u = RNG.normal(size=(2, N.size))
    _, vjp = form.log_predict_vjp(theta, X)
    g = vjp(u)
    h = 1e-6
    for j in range(theta.shape[1]):
        tp, tm = theta.copy(), theta.copy()
        tp[:, j] += h
        tm[:, j] -= h
        fd = ((form.log_predict_vjp(tp, X)[0] - form.log_predict_vjp(tm, X)[0]) / (2 * h) * u).sum(axis=1)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-5, atol=1e-7)


def test_chinchilla_grid_is_the_4500_start_grid():
    grid = get_law("chinchilla").huber_grid()
    assert grid.shape == (4500, 5)
    assert set(grid[:, 3]) == {0.0, 0.5, 1.0, 1.5, 2.0} and set(grid[:, 0]) == {0.0, 5.0, 10.0, 15.0, 20.0, 25.0}


def test_hoffmann_published_law_values():
    # Hoffmann et al. approach 3: E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28
    form = get_law("chinchilla")
    p = np.array([406.4, 410.7, 1.69, 0.34, 0.28])
    n, d = 70e9, 1.4e12
    assert form.predict(p, n, d) == pytest.approx(1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28, rel=1e-14)
    # the shape factor multiplies: eps = 0 reduces the inference-aware law to the tied Chinchilla law
    tied = get_law("chinchilla_tied").predict(np.array([406.4, 410.7, 1.69, 0.34]), n, d)
    shaped = get_law("inference_aware").predict(np.array([406.4, 410.7, 1.69, 0.34, 0.0]), n, d, 64.0)
    assert shaped == pytest.approx(tied, rel=1e-14)


def test_gadre_law_is_chinchilla_with_tied_exponent():
    # E + (a M^eta + b M^-eta) C^-eta, C = 6ND, M = D/N  ==  E + a 6^-eta / N^(2 eta) + b 6^-eta / D^(2 eta)
    e, a, b, eta = 1.8, 300.0, 500.0, 0.15
    n, d = 4e8, 1.6e10
    g = get_law("gadre").predict(np.array([e, a, b, eta]), n, d)
    c = 6 * n * d
    expected = e + a * 6 ** -eta / n ** (2 * eta) + b * 6 ** -eta / d ** (2 * eta)
    assert g == pytest.approx(expected, rel=1e-12)
    assert g == pytest.approx(e + (a * (d / n) ** eta + b * (d / n) ** -eta) * c ** -eta, rel=1e-12)


@pytest.mark.parametrize("name", ["bian2025b", "arch_conditional"])
def test_conditional_laws_name_the_missing_architecture_column(name):
    form = get_law(name)
    p = form.from_log(_theta(name))
    with pytest.raises(ValueError, match="(d_model|ffn_ratio) of every run"):
        form.predict(p, N, D, R)
    with pytest.raises(ValueError, match="d_model|ffn_ratio"):
        form.log_predict_vjp(_theta(name)[None, :], Features.of(N, D, R))


def test_arch_conditional_prices_kv_sharing_and_ffn_ratio():
    form = get_law("arch_conditional")
    # A, B, E, alpha, kappa, R0, kappa_f, r0, eta
    p = np.array([400.0, 400.0, 1.7, 0.3, 0.01, 50.0, 0.05, 2.0, 0.01])
    base = form.predict(p, 1e9, 2e10, 50.0, Architecture(ffn_ratio=np.array(2.0), kv_group=np.array(1.0)))
    gqa = form.predict(p, 1e9, 2e10, 50.0, Architecture(ffn_ratio=np.array(2.0), kv_group=np.array(8.0)))
    wide_ffn = form.predict(p, 1e9, 2e10, 50.0, Architecture(ffn_ratio=np.array(8.0), kv_group=np.array(1.0)))
    assert gqa == pytest.approx(base * 8.0 ** 0.01)
    assert wide_ffn == pytest.approx(base * (1 + 0.05 * np.log(4.0) ** 2))
