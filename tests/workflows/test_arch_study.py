"""The architecture study (`infscale study arch_study`): its design (KV heads x FFN widths at three sizes), shape
specs that name KV heads and FFN widths, the bundled runs refitted with the architecture-conditional laws, and (slow)
the quick block end to end: train, time, fit, hold out, plan KV heads and FFN width, verify."""

from __future__ import annotations

import csv
import json

import pytest

from infscale.configio import resolve_recipe
from infscale.errors import InputError
from infscale.workflows.shape_study_config import (
    StudyRules,
    load_study,
    shape_entry,
    shape_label,
    study_sweep,
)

RECIPE = resolve_recipe("arch_study")


def test_the_full_recipe_spans_gqa_groups_and_ffn_ratios_at_three_sizes():
    from infscale.train.sweep import expand

    cfg = load_study(RECIPE)
    runs = expand(study_sweep(cfg), 512)
    assert len(cfg.groups) == 3 and cfg.held_out == max(cfg.groups, key=lambda g: g.n_params).name
    for g in cfg.groups:
        entries = [shape_entry(s, cfg.rules) for s in g.shapes]
        kv = {e.get("n_kv_heads", e["n_heads"]) for e in entries}
        ffn = {e["d_ff"] for e in entries}
        assert kv == {1, 2, 4, 8} and len(ffn) == 3 and len(entries) == 12, g.name
        assert len({(e.get("n_kv_heads"), e["d_ff"]) for e in entries}) == 12
    assert len(cfg.group(cfg.noise_group).seeds) >= 2
    ids = [rid for rid, _ in runs]
    assert len(ids) == len(set(ids)) == 48 and "a1-d64xL1h8kv2f72-m16" in ids and "a2-d64xL2h8-m16" in ids
    assert {"bian2025b", "arch_conditional", "inference_aware"} <= set(cfg.laws)
    assert cfg.verify.kv_heads and cfg.verify.ffn_multipliers and cfg.fit_with == "shape_study_runs.csv"


def test_shape_specs_name_kv_heads_and_ffn_width():
    rules = StudyRules()
    e = shape_entry("64x2kv2f72", rules)
    assert e == {"d_model": 64, "n_layers": 2, "n_heads": 8, "n_kv_heads": 2, "d_ff": 72, "tag": "kv2f72"}
    # the rules' width and full multi-head attention are the defaults: no tag, the shape study's labels unchanged
    assert shape_entry("64x2kv8f176", rules) == {"d_model": 64, "n_layers": 2, "n_heads": 8, "d_ff": 176}
    assert shape_label(64, 2, 8, 2, 72, rules) == "d64xL2kv2f72" and shape_label(64, 2, 8, 8, 176, rules) == "d64xL2"
    with pytest.raises(ValueError, match="3 KV heads do not divide the 8 query heads"):
        shape_entry("64x2kv3", rules)


def test_a_bad_shape_spec_names_the_form(tmp_path):
    import yaml

    data = yaml.safe_load(RECIPE.read_text())
    data["groups"][0]["shapes"][0] = "64x2kvf72"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"write <d_model>x<n_layers>\[kv<KV heads>\]\[f<FFN width>\]"):
        load_study(bad)


@pytest.mark.slow
def test_quick_arch_study_end_to_end_plans_kv_heads_and_ffn_width(tmp_path):
    """Minutes: 20 tiny runs, five laws fitted, the one that prices KV heads and FFN width planned with; the verify
    step trains and times the recommended shape (whatever KV heads and FFN width it picked) and an MHA baseline."""
    from infscale.workflows.shape_study import run_study
    from infscale.workflows.shape_study_config import parse_study

    data = load_study(RECIPE, quick=True).model_dump(mode="json")
    data["base"]["data"]["cache_dir"] = str(tmp_path / "tokens")
    cfg = parse_study(data, "test")
    r = run_study(cfg, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "runs.csv").open()))
    assert len(rows) == 20 and {row["n_kv_heads"] for row in rows} == {"1", "4"}
    assert {f["law"] for f in r.fits} >= {"bian2025b", "arch_conditional"}
    assert r.preferred_law == "arch_conditional"  # the only law pricing both searched variables
    law = json.loads((tmp_path / "out" / "law.json").read_text())
    assert set(law["meta"]["fit_range"]) >= {"ffn_ratio", "kv_group"}
    rec, base = r.verify["rows"]
    plan = r.verify["plan"]
    assert plan["baseline"]["n_kv_heads"] == plan["baseline"]["n_heads"]
    assert rec["shape"] == plan["recommended"]["shape"] and rec["measured_decode_s"] > 0
    assert abs(rec["loss_error"]) < 0.1


def test_the_bundled_runs_refit_to_the_documented_held_out_table():
    """docs/arch_study.md's table from the bundled runs alone (joint fit with the shape study, a3 held out): every
    law's held-out MSE, its bias, and ours the lowest once the bias is removed."""
    import numpy as np

    from infscale.laws.validate import predict_runs
    from infscale.workflows.shape_study import BUNDLED_RUNS, analyse, bundled, read_rows

    cfg = load_study(RECIPE).model_copy(update={"bootstrap": 0})
    frame = read_rows(bundled("arch_study_runs.csv"))
    assert len(frame) == 48 and cfg.fit_with == BUNDLED_RUNS
    result = analyse(frame, cfg)
    mse = {f["law"]: f["held_out"]["mse"]["value"] for f in result["fits"]}
    documented = {"chinchilla": 3.42e-3, "inference_aware": 4.05e-3, "aspect_optimum": 4.94e-3, "bian2025b": 6.89e-3,
                  "arch_conditional": 4.63e-3}
    for law, value in documented.items():
        assert mse[law] == pytest.approx(value, rel=0.01), law
    assert result["preferred_law"] == "arch_conditional"
    _, held = result["runs"].split(f"group != '{cfg.held_out}'")
    centred = {}
    for law, rep in result["reports"].items():
        resid = predict_runs(rep.law, held) - held.loss
        assert 0.04 < resid.mean() < 0.07, law  # every law over-predicts the held-out size
        centred[law] = float(np.mean((resid - resid.mean()) ** 2))
    assert min(centred, key=centred.get) == "arch_conditional"
    eta = result["reports"]["arch_conditional"].law.params_["eta"]
    assert 0 < eta < 0.01
