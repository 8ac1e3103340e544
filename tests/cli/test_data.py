"""`infscale data list`."""

import json
import os
import subprocess
import sys


def test_data_list_json():
    res = subprocess.run([sys.executable, "-m", "infscale.cli.main", "data", "list", "--json"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert {k: rows[k]["rows"] for k in ("bian2025", "chinchilla", "gadre", "sardana")} == {
        "bian2025": 76, "chinchilla": 234, "gadre": 104, "sardana": 47}
    assert rows["chinchilla"]["licence"] == "Apache-2.0" and rows["bian2025"]["licence"] == "MIT"
    assert rows["gadre"]["columns"] == 94


def test_data_list_table_names_sources():
    res = subprocess.run([sys.executable, "-m", "infscale.cli.main", "data", "list"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "kyo-takano/chinchilla" in res.stdout and "Apache-2.0" in res.stdout
