"""`infscale.registry`: one Registry for every lookup; unknown names list the known ones; third parties register
through the ``infscale.plugins`` entry-point group (a real distribution on sys.path, loaded in a fresh process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from infscale.errors import InputError
from infscale.registry import Lazy, Registry


def test_lookup_lazy_entries_and_errors():
    reg: Registry[object] = Registry("widget", normalize=str.lower)
    reg.register("Alpha", 1)
    reg.register("beta", "math:pi")
    calls = []
    reg.register("gamma", Lazy(lambda: calls.append(1) or 42))

    @reg.register("delta")
    def delta() -> str:
        return "d"

    assert reg.get("ALPHA") == 1 and reg["beta"] == pytest.approx(3.14159265) and reg.get("delta") is delta
    assert reg.get("gamma") == 42 and reg.get("gamma") == 42 and calls == [1]  # loaded once
    assert reg.names() == ["alpha", "beta", "delta", "gamma"] and "Beta" in reg and "zeta" not in reg
    with pytest.raises(InputError, match=r"^unknown widget 'zeta'; known: alpha, beta, delta, gamma$"):
        reg.get("zeta")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    reg.unregister("alpha")
    assert "alpha" not in reg


def test_every_lookup_is_a_registry():
    from infscale.arch import PRESETS
    from infscale.data import DATASETS
    from infscale.latency.measure import BACKENDS
    from infscale.latency.model import HARDWARE
    from infscale.laws.fit import FITTERS
    from infscale.laws.forms import LAWS
    from infscale.plan.shapes import FAMILIES
    from infscale.train.downstream import DOWNSTREAM_TASKS
    from infscale.train.sweep import EXECUTORS
    from infscale.tts.core.aggregation import SCORE_AGGREGATIONS
    from infscale.tts.core.executors import TTS_EXECUTORS
    from infscale.tts.core.generation import GENERATORS
    from infscale.tts.core.rewards import REWARDS
    from infscale.tts.core.spec import STRATEGIES
    from infscale.tts.core.tasks import TASKS

    for reg in (PRESETS, DATASETS, BACKENDS, HARDWARE, FITTERS, LAWS, FAMILIES, DOWNSTREAM_TASKS, EXECUTORS,
                GENERATORS, REWARDS, SCORE_AGGREGATIONS, STRATEGIES, TASKS, TTS_EXECUTORS):
        assert isinstance(reg, Registry) and len(reg) >= 2, reg.kind
    assert {"bian2025", "chinchilla", "gadre", "sardana"} <= set(DATASETS)
    assert {"greedy", "sampling", "majority_vote", "best_of_n", "weighted_vote", "beam", "mcts", "rebase",
            "particle_filter"} <= set(STRATEGIES)


PLUGIN = '''
from infscale.latency.model import HARDWARE
from infscale.laws.forms import LAWS, get_law


def register():
    HARDWARE.register("my-npu", HARDWARE["a100-40gb"].with_(name="my-npu", memory_bandwidth_bytes_per_s=9e12))
    LAWS.register("my_chinchilla", get_law("chinchilla"))
'''


def _dist(tmp_path, value: str, module: str = PLUGIN):
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent(module))
    info = tmp_path / "my_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[infscale.plugins]\nmine = {value}\n")


def _py(tmp_path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_a_plugin_registers_a_hardware_profile_and_a_law(tmp_path):
    _dist(tmp_path, "my_plugin:register")
    res = _py(tmp_path, "from infscale.latency.io import get_profile, list_profiles\n"
                        "from infscale.laws.forms import get_law\n"
                        "print('my-npu' in list_profiles(), get_profile('my-npu').memory_bandwidth_bytes_per_s,"
                        " get_law('my_chinchilla').name)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "9000000000000.0", "chinchilla"]


def test_a_broken_plugin_is_one_line_naming_it(tmp_path):
    _dist(tmp_path, "my_plugin:register", module="def register():\n    raise RuntimeError('boom')\n")
    res = _py(tmp_path, "from infscale.errors import InputError\nfrom infscale.laws.forms import get_law\n"
                        "try:\n    get_law('chinchilla')\nexcept InputError as e:\n    print(e)")
    assert res.stdout.strip() == "plugin 'mine' (my_plugin:register): RuntimeError: boom"
