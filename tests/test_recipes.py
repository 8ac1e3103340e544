"""Every shipped recipe, preset and profile loads through the loader its command uses (a recipe no test loads could
rot unnoticed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import infscale

PACKAGE = Path(infscale.__file__).parent
RECIPES = sorted((PACKAGE / "recipes").glob("*.yaml"))


def _loader(name: str):
    from infscale.train.config import load_sweep_config
    from infscale.tts.core.config import load_config
    from infscale.workflows.lifecycle import load_deploy
    from infscale.workflows.select import parse_select
    from infscale.workflows.tts_mini_config import load_mini_config

    def select(path: Path):
        from infscale.configio import load_yaml

        return parse_select(load_yaml(path), str(path))

    from infscale.workflows.shape_study_config import load_study

    return {"arch_study": load_study, "isoflop_own": load_sweep_config, "shape_study": load_study, "lifecycle_llm": load_deploy, "lifecycle_mini": load_deploy, "micro_sweep": load_sweep_config, "wu2025_mini": load_mini_config, "select_micro": select,
            "tts_arith_own": load_config, "tts_arith_pool": load_config, "tts_gsm_smollm2": load_config}[name]


def test_every_recipe_has_a_loader():
    assert [p.stem for p in RECIPES] == ["arch_study", "isoflop_own", "lifecycle_llm", "lifecycle_mini", "micro_sweep", "select_micro", "shape_study",
                                         "tts_arith_own", "tts_arith_pool", "tts_gsm_smollm2", "wu2025_mini"]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads(path):
    cfg = _loader(path.stem)(path)
    assert cfg is not None and type(cfg).model_config.get("extra") == "forbid"


def test_latency_sweep_recipe_and_every_hardware_profile_load():
    from infscale.latency.io import get_profile, list_profiles, load_sweep_config

    sweep = load_sweep_config(PACKAGE / "latency" / "data" / "cpu-sweep.yaml")
    assert len(sweep.build_shapes()) == len(sweep.shapes) >= 10
    shipped = {p.stem for p in (PACKAGE / "latency" / "data" / "profiles").glob("*.json")}
    names = list_profiles()
    assert shipped <= set(names) and {"a100-40gb", "a100-40gb-bian2025", "h100", "generic-cpu"} <= set(names)
    for name in names:
        profile = get_profile(name)
        assert profile.memory_bandwidth_bytes_per_s > 0 and profile.peak_flops_per_s, name


def test_every_shape_preset_and_family_builds():
    from infscale.arch import PRESETS
    from infscale.plan.shapes import FAMILIES, enumerate_shapes

    for name, shape in PRESETS.items():
        assert shape.n_params > 1e8, name
    for name, rules in FAMILIES.items():
        assert len(enumerate_shapes(rules, 5e8, 2e9)) > 10, name
