"""`infscale.notices`: a warning line that code reads by its fields, never by its text."""

from __future__ import annotations

import pickle

from infscale.extrapolation import FitRange, law_quantities, outside, profile_warnings
from infscale.notices import Notice, notice_kind


def test_a_notice_reads_as_its_line_and_keeps_its_fields():
    n = outside("N", 7e9, 7.8e7, 3.1e8, "of the 27 runs the law was fitted on")
    assert isinstance(n, Notice) and n.startswith("extrapolation: N = 7e+09 is 22.6x above its largest")
    assert (n.kind, n.quantity, n.value, n.range, n.source) == ("extrapolation", "N", 7e9, (7.8e7, 3.1e8), "law")
    said = n.about("d512x8")
    assert said == "extrapolation: d512x8: " + n.text and said.quantity == "N"
    assert pickle.loads(pickle.dumps(n)).to_dict() == n.to_dict()  # survives a process pool


def test_summaries_read_fields_not_text():
    rng = FitRange.from_arrays([1e8, 3e8], [2e9, 6e9], [3.0, 3.5])
    lines = rng.warnings(n_params=1e10, n_tokens=1e12, loss=2.0)
    assert law_quantities(lines) == ["N", "D", "D/N", "loss"]
    assert law_quantities([str(line) for line in lines]) == []  # the same text, untyped: not parsed
    (uncal,) = profile_warnings(type("P", (), {"name": "h100", "calibrated_on": ""})())
    assert notice_kind(uncal) == "uncalibrated" and uncal.source == "profile" and notice_kind("plain") is None
