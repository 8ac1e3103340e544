"""`infscale.extrapolation`: fitted ranges (round trip, the checks with their margin), laws without a range, and the
provenance of hardware profiles; the chinchilla_tied interval that crosses zero is flagged by the fit."""

from __future__ import annotations

import pytest

from infscale.extrapolation import (
    SLACK,
    FitRange,
    law_quantities,
    law_warnings,
    outside,
    point_warnings,
    profile_warnings,
)
from infscale.latency.io import get_profile

RANGE = FitRange.from_arrays([1e8, 3e8, 2e8], [2e9, 6e9, 8e9], [3.6, 3.9, 5.0], aspect_ratio=[20.0, 100.0, 300.0])


def test_range_of_the_runs_and_round_trip():
    assert RANGE.n_runs == 3 and RANGE.n_params == (1e8, 3e8) and RANGE.n_tokens == (2e9, 8e9)
    assert RANGE.tokens_per_param == (20.0, 40.0) and RANGE.loss == (3.6, 5.0) and RANGE.aspect_ratio == (20.0, 300.0)
    assert FitRange.from_dict(RANGE.to_dict()) == RANGE
    with pytest.raises(ValueError, match=r"fit_range.loss: expected finite low <= high"):
        FitRange.from_dict({**RANGE.to_dict(), "loss": [5.0, 3.0]})
    with pytest.raises(ValueError, match=r"fit_range.n_tokens: missing"):
        FitRange.from_dict({"n_runs": 1, "n_params": [1, 2], "tokens_per_param": [1, 2], "loss": [1, 2]})


def test_inside_the_range_no_warning_outside_one_line_each_with_how_far():
    assert RANGE.warnings(n_params=2e8, n_tokens=6e9, aspect_ratio=50.0, loss=4.0) == []
    # the margin: an edge point, or one a few percent beyond it, is not an extrapolation
    assert RANGE.warnings(n_params=3e8 * (1 + SLACK / 2), n_tokens=8e9) == []
    lines = RANGE.warnings(n_params=7e9, n_tokens=1.4e12, loss=2.5)
    assert lines == [
        "extrapolation: N = 7e+09 is 23.3x above its largest (range 1e+08 to 3e+08 of the 3 runs the law was fitted on)",
        "extrapolation: D = 1.4e+12 is 175x above its largest (range 2e+09 to 8e+09 of the 3 runs the law was fitted "
        "on)",
        "extrapolation: D/N = 200 is 5x above its largest (range 20 to 40 of the 3 runs the law was fitted on)",
        "extrapolation: loss = 2.5 is 1.44x below its smallest (range 3.6 to 5 of the 3 runs the law was fitted on)",
    ]
    assert outside("R", 5.0, 20.0, 300.0, "x") == "extrapolation: R = 5 is 4x below its smallest (range 20 to 300 x)"


def test_a_law_without_a_range_is_said_to_be_unchecked():
    assert law_warnings({"fit_range": RANGE.to_dict()}, n_params=2e8) == []
    (line,) = law_warnings({"source": "inline"}, n_params=2e8)
    assert line.startswith("unchecked: the law carries no fitted range")
    # the aspect ratio counts only for a law that reads it
    row = {"n_params": 2e8, "n_tokens": 6e9, "loss": 4.0, "aspect_ratio": 1000.0}
    assert point_warnings({"fit_range": RANGE.to_dict()}, row, shape_aware=False) == []
    assert "d_model/n_layers = 1000" in point_warnings({"fit_range": RANGE.to_dict()}, row)[0]


def test_profiles_say_whether_and_on_what_they_were_calibrated():
    (line,) = profile_warnings(get_profile("h100"), 7e9)
    assert line.startswith("uncalibrated: profile 'h100' is a datasheet preset")
    bian2025 = get_profile("a100-40gb-bian2025")
    assert "Bian et al.'s published" in bian2025.calibrated_on and bian2025.calibrated_n_params == (1.315723264e9, 1.668885504e9)
    assert profile_warnings(bian2025, 1.4e9) == [] and profile_warnings(bian2025, None) == []
    (far,) = profile_warnings(bian2025, 7.9e7)
    assert far.startswith("extrapolation: N = 7.9e+07 is 16.7x below its smallest") and "a100-40gb-bian2025" in far
    own = get_profile("cpu-2core-own")  # the shipped profile calibrated on this project's CPU measurements
    assert own.calibrated_on.startswith("5 measured latencies") and profile_warnings(own, 1e7) == []


def test_calibration_records_what_it_was_fitted_on():
    from infscale.latency.io import calibrate_bian2025

    profile = calibrate_bian2025().profile_
    assert profile.calibrated_on.startswith("7 measured latencies (Morph-1B")
    assert profile.calibrated_n_params == get_profile("a100-40gb-bian2025").calibrated_n_params
    assert type(profile).from_dict(profile.to_dict()) == profile  # survives a save as JSON


def test_fit_keeps_its_range_and_flags_an_interval_crossing_zero():
    from infscale.laws.io import load_runs
    from infscale.laws.pipeline import run_fit

    runs = load_runs("bian2025")
    main = run_fit(runs, "inference_aware", "least_squares", fit_on="in_main_fit_set == 1", n_boot=30)
    rng = FitRange.from_dict(main.law.meta["fit_range"])
    assert rng.n_runs == 27 and rng.n_params == (77677440.0, 311975680.0) and rng.loss == (3.5904, 5.0774)
    tied = run_fit(runs, "chinchilla_tied", "least_squares", fit_on="in_main_fit_set == 1", n_boot=30)
    low, high = tied.boot.low["A"], tied.boot.high["A"]
    assert low < 0 < high  # Bian et al.'s 27 points do not pin A of the tied law down
    assert any(w.startswith("degenerate: A: bootstrap interval") and "crosses zero" in w for w in tied.warnings)
    assert not any("crosses zero" in w for w in main.warnings)


def test_law_quantities_name_what_a_point_extrapolates_and_leave_the_profiles_lines_out():
    lines = RANGE.warnings(n_params=7e9, n_tokens=1.4e12) + profile_warnings(get_profile("a100-40gb-bian2025"), 7e9)
    assert len(lines) == 4 and law_quantities(lines) == ["N", "D", "D/N"]
    assert law_quantities(lines + RANGE.warnings(n_params=7e9)) == ["N", "D", "D/N"]  # each once
    assert law_quantities(profile_warnings(get_profile("h100"))) == []
