"""The shape study's statistics: the seed-to-seed noise floor, per-size Spearman with intervals, held-out scores, and
the aspect-optimum law that can follow a bowl in loss against aspect ratio where Bian et al.'s monotone factor cannot."""

import numpy as np
import pandas as pd
import pytest

from infscale.laws.fit import HuberFitter
from infscale.laws.fitted import FittedLaw
from infscale.laws.forms import get_law
from infscale.laws.pipeline import run_fit
from infscale.laws.runs import Runs
from infscale.laws.study import held_out_scores, noise_floor, size_rankings

BOWL = {"A": 40.0, "B": 60.0, "E": 1.5, "alpha": 0.3, "kappa": 0.01, "R0": 8.0}


def _grid_runs(params=BOWL, noise=0.0, seed=0):
    """Five sizes x five aspect ratios at 20 tokens/param, two sizes also at 80, from the aspect-optimum law."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, n in enumerate([3e4, 6e4, 1e5, 1.7e5, 3e5]):
        for m in ([20, 80] if g < 2 else [20]):
            for r in [0.5, 2.0, 8.0, 20.0, 100.0]:
                d_model = 32.0
                loss = float(get_law("aspect_optimum").predict(np.array(list(params.values())), n, m * n, r))
                rows.append({"group": f"g{g + 1}", "N": n, "D": m * n, "d_model": d_model, "n_layers": d_model / r,
                             "loss": loss * (1 + rng.normal(0, noise))})
    return Runs.from_frame(pd.DataFrame(rows))


def test_aspect_optimum_recovers_its_bowl_and_beats_the_monotone_shape_term_on_the_held_out_size():
    runs = _grid_runs()
    own = run_fit(runs, "aspect_optimum", "huber", "group != 'g5'")
    assert own.law.params_["R0"] == pytest.approx(8.0, rel=1e-3)
    assert own.law.params_["kappa"] == pytest.approx(0.01, rel=1e-3)
    bian2025 = run_fit(runs, "inference_aware", "huber", "group != 'g5'")
    assert own.validation.held_out.mse < 1e-10 < bian2025.validation.held_out.mse
    ranks = {s.group: s for s in size_rankings(own.law, runs, {"g5"})}
    assert all(s.spearman.value == pytest.approx(1.0) for s in ranks.values()) and ranks["g5"].held_out


def test_noise_floor_pools_the_per_shape_variances():
    frame = pd.DataFrame({"group": ["g"] * 6 + ["h"], "shape": ["a", "a", "a", "b", "b", "b", "a"],
                          "seed": [0, 1, 2, 0, 1, 2, 0], "D": [100] * 7,
                          "loss": [3.0, 3.1, 3.2, 2.0, 2.0, 2.3, 9.0], "loss_se": [0.01] * 7})
    nf = noise_floor(frame, "g")
    assert nf.n_shapes == 2 and nf.n_seeds == 3
    assert nf.seed_std == pytest.approx(np.sqrt((0.01 + 0.03) / 2))
    assert nf.per_shape["b"]["max"] == 2.3 and nf.val_se == pytest.approx(0.01)
    with pytest.raises(ValueError, match="two or more seeds"):
        noise_floor(frame, "h")


def test_intervals_come_from_the_bootstrap_replicates_and_the_noise():
    runs = _grid_runs(noise=0.003, seed=1)
    fit_runs, held = runs.split("group != 'g5'")
    est = HuberFitter("aspect_optimum").fit(fit_runs)
    from infscale.laws.bootstrap import bootstrap

    boot = bootstrap(est, fit_runs, 30, random_state=0)
    scores = held_out_scores(est.law_, held, samples=boot.samples)
    assert scores.n_runs == 5 and scores.mse.low <= scores.mse.value <= scores.mse.high
    # a noise far above the shape effect scrambles the ranks: the interval widens to include -1..1
    wide = size_rankings(est.law_, runs, {"g5"}, samples=boot.samples, seed_std=1.0)
    narrow = size_rankings(est.law_, runs, {"g5"}, samples=boot.samples, seed_std=1e-6)
    assert wide[-1].spearman.low < 0 < narrow[-1].spearman.low
    assert narrow[-1].spread_over_noise > 1e3 > wide[-1].spread_over_noise


def test_replicates_with_nan_rows_are_skipped():
    law = FittedLaw(get_law("aspect_optimum"), BOWL, {})
    runs = _grid_runs()
    samples = np.array([list(BOWL.values()), [np.nan] * 6])
    scores = held_out_scores(law, runs, samples=samples)
    assert scores.mse.low == pytest.approx(0.0, abs=1e-20) and np.isfinite(scores.mse.high)
