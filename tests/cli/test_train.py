"""CLI smoke tests: `infscale train`, `infscale sweep`, `infscale runs`, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from infscale.cli.main import app
from infscale.train.data import _kjv_documents


def _corpus(tmp_path):
    root = tmp_path / "corpus"
    if root.exists():
        return root
    root.mkdir()
    for i, doc in zip(range(2), _kjv_documents(), strict=False):
        (root / f"b{i}.txt").write_text(doc.text[:30_000])
    return root


def _base(tmp_path):
    return {
        "data": {"corpus": str(_corpus(tmp_path)), "vocab_size": 300, "val_fraction": 0.05,
                 "cache_dir": str(tmp_path / "cache")},
        "batch_size": 4, "eval_tokens": 512, "threads": 1, "progress": False,
    }


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_train_then_runs(tmp_path):
    cfg = _base(tmp_path) | {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 16},
                             "tokens": 4 * 16 * 12, "run_id": "tiny"}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output.strip().splitlines()[-1])
    assert rec["run_id"] == "tiny" and rec["D"] == 4 * 16 * 12
    assert (out / "tiny" / "record.json").exists()
    res = CliRunner().invoke(app, ["runs", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["N"] == rec["N"]
    res = CliRunner().invoke(app, ["runs", str(out)])
    assert res.exit_code == 0 and "1 finished" in res.output


def test_sweep_cli_and_table(tmp_path):
    sweep = {"base": _base(tmp_path) | {"model": {"context_length": 16}},
             "groups": [{"name": "g", "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2}],
                         "tokens_per_param": [0.2]}]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    res = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "g-d32xL1h2-m0.2" in res.output


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cfg = _base(tmp_path) | {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2}, "tokens": 100}
    cfg["data"]["corpus"] = str(empty)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = _cli("train", str(path), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "empty" in res.stderr

    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"base": _base(tmp_path), "groups": [
        {"name": "g", "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2}], "tokens_per_param": [1]}]}))
    res = _cli("sweep", str(sweep), "--executor", "slurm", "--out", str(tmp_path / "o2"))
    assert res.returncode == 2 and "unknown executor 'slurm'" in res.stderr and res.stderr.count("\n") == 1

    big = _base(tmp_path) | {"model": {"d_model": 16384, "n_layers": 120, "n_heads": 128}, "tokens": 100}
    path.write_text(yaml.safe_dump(big))
    res = _cli("train", str(path), "--out", str(tmp_path / "o3"))
    assert res.returncode == 2 and "GB available" in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "o3").exists()

    res = _cli("runs", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "no records file" in res.stderr


def test_recipe_name_wins_over_a_directory_of_that_name(tmp_path, monkeypatch):
    from infscale.configio import resolve_recipe
    from infscale.train.config import load_yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "micro_sweep").mkdir()  # e.g. a sweep output directory named after the recipe
    resolved = resolve_recipe("micro_sweep")
    assert resolved.is_file() and resolved.parent.name == "recipes"
    assert "groups" in load_yaml(resolved)
    (tmp_path / "outdir").mkdir()
    res = subprocess.run([sys.executable, "-m", "infscale.cli.main", "sweep", "outdir"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 2
    assert "is a directory" in res.stderr + res.stdout
