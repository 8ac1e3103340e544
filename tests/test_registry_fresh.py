"""Every registry holds every entry whatever was imported first: in a fresh process that imports only the
registry's own module, its names are those seen after importing the whole package, and each entry loads (a shipped
hardware profile once needed `infscale.latency.io` imported first)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import infscale

REGISTRIES = [
    ("infscale.laws.fit", "FITTERS"), ("infscale.laws.downstream", "ACCURACY_LINKS"), ("infscale.laws.forms", "LAWS"),
    ("infscale.arch", "PRESETS"), ("infscale.tts.core.executors", "TTS_EXECUTORS"),
    ("infscale.tts.core.generation", "GENERATORS"), ("infscale.tts.core.spec", "STRATEGIES"),
    ("infscale.tts.core.aggregation", "SCORE_AGGREGATIONS"), ("infscale.tts.core.tasks", "TASKS"),
    ("infscale.tts.core.rewards", "REWARDS"), ("infscale.plan.shapes", "FAMILIES"),
    ("infscale.train.downstream", "DOWNSTREAM_TASKS"), ("infscale.train.sweep", "EXECUTORS"),
    ("infscale.data", "DATASETS"), ("infscale.latency.model", "HARDWARE"), ("infscale.latency.measure", "BACKENDS"),
]

_NAMES = "import importlib, json; r = getattr(importlib.import_module({mod!r}), {attr!r}); {load}print(json.dumps(r.names()))"


def _names(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def everything() -> dict[str, list[str]]:
    """Each registry's names after importing every module of the package (those whose optional dependencies are
    installed)."""
    mods = [m.name for m in pkgutil.walk_packages(infscale.__path__, "infscale.")]
    code = (f"import importlib, json\nfor m in {mods!r}:\n    try: importlib.import_module(m)\n    except ImportError: "
            f"pass\nregs = {REGISTRIES!r}\nprint(json.dumps({{a: getattr(importlib.import_module(m), a).names() "
            f"for m, a in regs}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_list_names_every_registry():
    found = set()
    for m in pkgutil.walk_packages(infscale.__path__, "infscale."):
        if m.ispkg:
            continue
        spec = m.module_finder.find_spec(m.name.rsplit(".", 1)[-1])
        text = open(spec.origin, encoding="utf-8").read() if spec and spec.origin else ""
        found |= {(m.name, line.split(":")[0].split("=")[0].strip()) for line in text.splitlines()
                  if "= Registry(" in line and not line.startswith(" ")}
    pkgs = {("infscale.data", "DATASETS")}  # registered in a package __init__
    assert found | pkgs == set(REGISTRIES)


@pytest.mark.parametrize("module, attr", REGISTRIES, ids=[a for _, a in REGISTRIES])
def test_a_fresh_process_sees_every_entry(module, attr, everything):
    load = "[r.get(n) for n in r.names()]; "
    assert _names(_NAMES.format(mod=module, attr=attr, load=load)) == everything[attr]
