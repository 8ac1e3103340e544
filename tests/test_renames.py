"""The papers are named as the field names them (Bian et al. 2025, Wu et al. 2025); every old "seed A/B" name
still works for one release, through `infscale.renames`, with one deprecation line per name."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infscale import renames
from infscale.configio import resolve_recipe
from infscale.data import DATASETS
from infscale.latency.model import HARDWARE
from infscale.plan.shapes import FAMILIES
from infscale.tts.core.records import ProblemRecord
from infscale.workflows.lifecycle_inputs import load_points
from infscale.workflows.tts_analysis import check_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_said(monkeypatch):
    monkeypatch.setattr(renames, "_said", set())


@pytest.mark.parametrize(("registry", "old"), [(DATASETS, "seed-a"), (FAMILIES, "seed-a"),
                                              (HARDWARE, "a100-40gb-seed-a")])
def test_old_registry_names_resolve_with_one_deprecation_line(registry, old, capsys):
    new = renames.RENAMED[old]
    assert old not in registry.names() and new in registry.names()
    assert registry.get(old) is registry.get(new) and old in registry
    registry.get(old)
    err = capsys.readouterr().err.splitlines()
    assert err == [f"deprecated: {old!r} is now {new!r}; the old name goes in infscale {renames.REMOVED_IN}"]


def test_old_names_outside_the_registry(capsys, tmp_path):
    assert check_settings("seed_b", 10) == "wu2025"
    old, new = load_points("seed-b-math500", tmp_path), load_points("wu2025-math500", tmp_path)
    assert old.accuracy == new.accuracy and old.flops == new.flops
    assert resolve_recipe("seed_b_mini") == resolve_recipe("wu2025_mini")
    assert resolve_recipe("wu2025_mini").name == "wu2025_mini.yaml"
    err = capsys.readouterr().err
    for name in ("seed_b", "seed-b-math500", "seed_b_mini"):
        assert f"deprecated: {name!r} is now" in err


def test_records_written_before_the_rename_are_read():
    record = {"run": "r", "model": "m", "n_params": 10, "strategy": "sampling", "budget": 1, "problem_id": "p0",
              "gold": "4", "candidates": [],
              "ledger": {"policy_prefill_flops": 1.0, "policy_decode_flops": 2.0, "seed_b_flops": 3.5}}
    rec = ProblemRecord.from_json(record)
    assert rec.ledger.wu2025_flops == 3.5


def test_an_old_flag_runs_under_its_new_name(tmp_path):
    out = subprocess.run([sys.executable, "-m", "infscale.cli.main", "tts", "analyze", "--seed-b", "--no-plot",
                          "--out", str(tmp_path / "a"), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "deprecated: '--seed-b' is now '--wu2025'" in out.stderr
    assert json.loads(out.stdout)["statements"]


OLD = re.compile(r"\bseed[-_ ]?[ABab]\b|seedb|SEED_[AB]\b")


def test_no_old_name_is_left_outside_the_rename_table():
    """Code, docs, recipes and bundled data name the papers as the field does; only the table (and the README line
    pointing at it) keeps the old names."""
    paths = [p for d in ("src", "docs", "benchmarks") for p in (ROOT / d).rglob("*")
             if p.is_file() and p.suffix in {".py", ".md", ".yaml", ".csv", ".json", ".txt"}
             and not any(part.endswith(".egg-info") for part in p.parts)]
    paths.append(ROOT / "README.md")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in paths if p.name != "renames.py"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if OLD.search(line) and "until 0.2" not in line]
    assert not found, found[:10]
