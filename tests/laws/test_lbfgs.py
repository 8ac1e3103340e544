"""Batched L-BFGS: many independent problems with known minima, solved at once."""

import numpy as np

from infscale.laws.lbfgs import batched_lbfgs


def test_batched_rosenbrock_and_quadratics():
    # member k minimises a shifted Rosenbrock with its own minimum at (c_k, c_k^2)
    c = np.linspace(-1.5, 2.0, 40)

    def fg(x, rows):
        ck = c[rows]
        u, v = x[:, 0] - ck, x[:, 1] - ck ** 2 - 2 * ck * (x[:, 0] - ck) - (x[:, 0] - ck) ** 2
        f = u ** 2 + 100 * v ** 2
        dv_dx0 = -2 * ck - 2 * (x[:, 0] - ck)
        g = np.stack([2 * u + 200 * v * dv_dx0, 200 * v], axis=1)
        return f, g

    x0 = np.column_stack([c - 1.2, c ** 2 + 1.0])
    res = batched_lbfgs(fg, x0, max_iter=500, gtol=1e-12, ftol=0.0)
    np.testing.assert_allclose(res.x[:, 0], c, atol=1e-6)
    np.testing.assert_allclose(res.x[:, 1], c ** 2, atol=1e-5)
    assert res.converged.all()


def test_ill_conditioned_quadratic_batch():
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-3, 3, size=(25, 6))
    target = rng.normal(size=(25, 6))

    def fg(x, rows):
        d = x - target[rows]
        return 0.5 * np.sum(scales[rows] * d * d, axis=1), scales[rows] * d

    res = batched_lbfgs(fg, np.zeros((25, 6)), max_iter=1000, gtol=1e-10, ftol=0.0)
    np.testing.assert_allclose(res.x, target, atol=1e-6)
