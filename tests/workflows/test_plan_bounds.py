"""`run_plan` says when its best shape sits on an end of the searched size range (not an optimum), and stays quiet
when a constraint holds it inside."""

from __future__ import annotations

import json
import warnings

import pytest

from infscale.notices import notice_kind
from infscale.workflows.plan import PlanRequest, run_plan

LAW = {"law": "inference_aware", "params": {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574,
                                             "eps": 0.00114621}}


def test_a_best_shape_at_the_top_of_the_range_is_reported(tmp_path):
    law = tmp_path / "law.json"
    law.write_text(json.dumps(LAW))
    report = run_plan(PlanRequest(law=law, params=1e9, tokens=29e9, out=tmp_path / "a"))
    assert report.best["n_params"] >= 2e9 / 1.05
    (bound,) = [w for w in report.warnings if notice_kind(w) == "search bound"]  # a notice of the report, typed
    assert "sits at the top of the searched size range" in bound and bound.range == (0.5e9, 2e9)
    # a latency limit that binds holds the best shape inside the range: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inside = run_plan(PlanRequest(law=law, params=1e9, tokens=29e9, hardware="a100-40gb-bian2025",
                                      max_latency_s=1.2, out=tmp_path / "b"))
    assert 0.5e9 * 1.05 < inside.best["n_params"] < 2e9 / 1.05
    assert not any(notice_kind(w) == "search bound" for w in inside.warnings)


def test_the_search_space_is_explicit_and_a_cap_is_named(tmp_path):
    """The family's caps are printed with the plan (``search_space``); a recommendation on the depth cap says so, with
    how many frontier rows share it; raising the cap moves the recommendation off it; a band no shape of the family
    reaches is one line naming the family's N span and the flags that widen it."""
    from infscale.errors import InputError

    law = tmp_path / "law.json"
    law.write_text(json.dumps(LAW))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        capped = run_plan(PlanRequest(law=law, params=7e9, tokens=1.4e11, hardware="h100", out=tmp_path / "a"))
        deeper = run_plan(PlanRequest(law=law, params=7e9, tokens=1.4e11, hardware="h100", max_layers=96,
                                      out=tmp_path / "b"))
    sp = capped.search_space
    assert sp["family"] == "bian2025" and sp["n_layers"] == [2, 48] and sp["d_model"] == [256, 8192]
    assert json.loads((tmp_path / "a" / "plan.json").read_text())["search_space"]["n_layers"] == [2, 48]
    assert capped.best["n_layers"] == 48
    cap = [w for w in capped.warnings if w.startswith("cap:")]
    assert cap and "n_layers = 48, the family's most layers (--max-layers): deeper shapes were not considered" in cap[0]
    assert deeper.search_space["n_layers"] == [2, 96] and deeper.best["n_layers"] > 48
    with pytest.raises(InputError, match=r"no candidate shapes: family 'bian2025' \(d_model 256-8192, n_layers 2-48\) "
                                         r"gives N from .* to 3.97e\+10, none within N \[7e\+10, 2.8e\+11\]: raise "
                                         r"--max-d-model / --max-layers"):
        run_plan(PlanRequest(law=law, params=1.4e11, tokens=1.4e12, out=tmp_path / "c"))
    with pytest.raises(InputError, match=r"--max-layers 0: must be a whole number >= 1"):
        run_plan(PlanRequest(law=law, params=7e9, tokens=1.4e11, max_layers=0, out=tmp_path / "d"))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
