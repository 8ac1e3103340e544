"""Structural rules: the pure core imports no torch, typer, yaml, transformers or matplotlib."""

import subprocess
import sys

PURE = ["infscale.arch", "infscale.laws", "infscale.plan", "infscale.latency.model"]
FORBIDDEN = ["torch", "typer", "yaml", "transformers", "matplotlib", "ray", "vllm"]


def test_pure_core_imports_no_heavy_modules():
    code = (
        "import importlib, sys\n"
        f"for m in {PURE!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if not e.name.startswith('infscale'): raise\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"pure core imported: {out.stdout.strip()}"


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from infscale.cli import main\n"
        "print('torch' in sys.modules, 'scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
