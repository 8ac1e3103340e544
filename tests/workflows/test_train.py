"""`infscale.workflows.train`: `runs` lists a directory's finished runs and those in progress as a typed listing the
CLI prints without reading files; tts directories are named for the command that reads them."""

from __future__ import annotations

import json

import pytest
import yaml

from infscale.errors import InputError
from infscale.workflows.train import RunsListing, list_runs


def test_finished_and_in_progress_runs_are_listed(tmp_path):
    (tmp_path / "records.jsonl").write_text(json.dumps({"run_id": "a", "N": 1, "D": 2, "loss": 3.0}) + "\n")
    run = tmp_path / "runs" / "b"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"resolved": {"steps": 40}}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 10, "loss_smoothed": 4.2}) + "\n")
    listing = list_runs(tmp_path)
    assert isinstance(listing, RunsListing) and [r["run_id"] for r in listing.records] == ["a"]
    (p,) = listing.in_progress
    assert (p["run_id"], p["step"], p["steps"], p["loss_smoothed"], p["checkpoint"]) == ("b", 10, 40, 4.2, False)


def test_a_tts_study_directory_is_named_for_tts_analyze(tmp_path):
    run = tmp_path / "runs" / "m"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("run: m\n")
    (run / "records.jsonl").write_text(json.dumps({"problem_id": "p-1", "run": "m"}) + "\n")
    with pytest.raises(InputError, match="runs/ holds tts runs .*`infscale tts analyze`"):
        list_runs(tmp_path)
