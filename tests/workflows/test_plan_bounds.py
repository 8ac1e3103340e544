"""`run_plan` says when its best shape sits on an end of the searched size range (not an optimum), and stays quiet
when a constraint holds it inside."""

from __future__ import annotations

import json
import warnings

import pytest

from infscale.workflows.plan import PlanRequest, run_plan

LAW = {"law": "inference_aware", "params": {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574,
                                             "eps": 0.00114621}}


def test_a_best_shape_at_the_top_of_the_range_is_reported(tmp_path):
    law = tmp_path / "law.json"
    law.write_text(json.dumps(LAW))
    with pytest.warns(UserWarning, match="sits at the top of the searched size range"):
        report = run_plan(PlanRequest(law=law, params=1e9, tokens=29e9, out=tmp_path / "a"))
    assert report.best["n_params"] >= 2e9 / 1.05
    # a latency limit that binds holds the best shape inside the range: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inside = run_plan(PlanRequest(law=law, params=1e9, tokens=29e9, hardware="a100-40gb-seed-a",
                                      max_latency_s=1.2, out=tmp_path / "b"))
    assert 0.5e9 * 1.05 < inside.best["n_params"] < 2e9 / 1.05
