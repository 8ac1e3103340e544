"""Bootstrap: seeded, resampling counts sum to n, intervals cover the truth on synthetic data."""

import numpy as np
import pandas as pd

from infscale.laws.bootstrap import bootstrap, bootstrap_weights
from infscale.laws.fit import HuberFitter, LeastSquaresFitter
from infscale.laws.io import load_runs
from infscale.laws.runs import Runs


def test_weights_are_seeded_resamples():
    w = bootstrap_weights(27, 50, random_state=3)
    assert w.shape == (50, 27) and (w.sum(axis=1) == 27).all()
    np.testing.assert_array_equal(w, bootstrap_weights(27, 50, random_state=3))
    assert not np.array_equal(w, bootstrap_weights(27, 50, random_state=4))


def test_huber_bootstrap_covers_truth_and_is_reproducible():
    rng = np.random.default_rng(11)
    n = np.exp(rng.uniform(np.log(7e7), np.log(1e10), 150))
    d = n * np.exp(rng.uniform(np.log(5), np.log(100), 150))
    truth = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    loss = (1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * np.exp(rng.normal(0, 0.01, n.size))
    runs = Runs.from_frame(pd.DataFrame({"N": n, "D": d, "loss": loss}))
    fitter = HuberFitter("chinchilla").fit(runs)
    b1 = bootstrap(fitter, runs, 200, random_state=0)
    b2 = bootstrap(fitter, runs, 200, random_state=0)
    np.testing.assert_array_equal(b1.samples, b2.samples)
    for k in ("E", "alpha", "beta"):
        assert b1.low[k] <= truth[k] <= b1.high[k], (k, b1.low[k], b1.high[k])
        assert b1.low[k] <= fitter.params_[k] <= b1.high[k]


def test_least_squares_bootstrap_on_bian2025_brackets_the_fit():
    runs, _ = load_runs("bian2025").split("in_main_fit_set == 1")
    fitter = LeastSquaresFitter("inference_aware").fit(runs)
    b = bootstrap(fitter, runs, 40, random_state=0)
    assert b.samples.shape == (40, 5)
    for k, v in fitter.params_.items():
        assert b.low[k] <= v <= b.high[k]
