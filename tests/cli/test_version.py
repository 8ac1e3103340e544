"""`infscale --version`: the installed version, the package's `__version__` and pyproject's agree."""

import subprocess
import sys
from pathlib import Path

import tomllib

import infscale


def test_version_flag_prints_the_version():
    proc = subprocess.run([sys.executable, "-m", "infscale.cli.main", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"infscale {infscale.__version__}"
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert project["version"] == infscale.__version__
