"""`infscale plan` searching KV heads and FFN widths: with a law that prices them (arch_conditional) the plan picks
them and checks them against the law's fitted range; a law without the term refuses an explicit search in one line
and warns about a family that searches KV heads by default; the lifecycle planner does the same."""

from __future__ import annotations

import json
import warnings

import pytest

from infscale.errors import InputError
from infscale.workflows.plan import PlanRequest, run_plan

BIAN2025 = {"law": "inference_aware", "params": {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574,
                                                "eps": 0.00114621}}
# arch_conditional with a loss cost of KV sharing (eta > 0) and an FFN optimum near r = 2; fitted range given so
# that the plan's extrapolation check covers the new variables
ARCH = {"law": "arch_conditional",
        "params": {"A": 400.0, "B": 410.0, "E": 1.7, "alpha": 0.3, "kappa": 0.002, "R0": 60.0, "kappa_f": 0.02,
                   "r0": 2.0, "eta": 0.004},
        "meta": {"fit_range": {"n_runs": 40, "n_params": [1e8, 3e9], "n_tokens": [2e9, 6e10],
                               "tokens_per_param": [10, 40], "loss": [2.0, 3.5], "aspect_ratio": [20, 200],
                               "ffn_ratio": [0.8, 5.0], "kv_group": [1, 4]}}}


def _law(tmp_path, data, name="law.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_a_law_that_prices_kv_heads_and_ffn_width_plans_them(tmp_path):
    law = _law(tmp_path, ARCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = run_plan(PlanRequest(law=law, params=1e9, tokens=2e10, family="llama", hardware="h100",
                                    kv_heads=(1, 2, 4, 8), ffn_multipliers=(1.5, 2.67, 4.0, 5.33),
                                    out=tmp_path / "a"))
        fast = run_plan(PlanRequest(law=law, params=1e9, tokens=2e10, family="llama", hardware="h100",
                                    kv_heads=(1, 2, 4, 8), ffn_multipliers=(1.5, 2.67, 4.0, 5.33),
                                    max_latency_s=free.best["latency_s"] * 0.8, out=tmp_path / "b"))
    # without a latency limit the lowest-loss shape: multi-head attention (eta > 0 charges sharing) and an FFN near
    # the law's optimum ratio; the labels name the FFN width (the grid searched several)
    assert free.best["n_kv_heads"] == free.best["n_heads"]
    assert abs(free.best["ffn_ratio"] - 2.0) < 1.0 and f"f{free.best['d_ff']}" in free.best["label"]
    # a latency limit buys speed with KV sharing or a different FFN width: the law prices the loss it costs
    assert fast.best["latency_s"] <= free.best["latency_s"] * 0.8
    assert fast.best["loss"] > free.best["loss"]
    sp = fast.search_space
    assert "1.5/2.67/4/5.33 x d_model" in sp["ffn"] and sp["kv_heads"] == [1, 2, 4, 8, "all"]
    assert not any(w.startswith("unpriced") for w in fast.warnings)
    row = json.loads((tmp_path / "b" / "plan.json").read_text())["best"]
    assert {"ffn_ratio", "kv_group", "n_kv_heads", "d_ff"} <= set(row)


def test_the_extrapolation_check_covers_kv_heads_and_ffn_ratio(tmp_path):
    law = _law(tmp_path, ARCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = run_plan(PlanRequest(law=law, params=1e9, tokens=2e10, family="llama", hardware="h100",
                                      kv_heads=(1,), ffn_multipliers=(8.0,), out=tmp_path / "a"))
    assert report.best["kv_group"] > 4 or report.best["n_kv_heads"] == report.best["n_heads"]
    text = "\n".join(report.warnings)
    assert "extrapolation: MLP/attention ratio" in text
    if report.best["kv_group"] > 4:
        assert "extrapolation: query heads per KV head" in text


def test_a_law_without_the_term_refuses_an_explicit_search_and_warns_about_a_family_default(tmp_path):
    law = _law(tmp_path, BIAN2025)
    for flag, kw in (("--kv-heads", {"kv_heads": (1, 2)}), ("--ffn-multipliers", {"ffn_multipliers": (2.0, 4.0)})):
        with pytest.raises(InputError, match=rf"^{flag}: law 'inference_aware' has no term for"):
            run_plan(PlanRequest(law=law, params=1e9, tokens=2e10, family="llama", out=tmp_path / flag, **kw))
        assert not (tmp_path / flag).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = run_plan(PlanRequest(law=law, params=1e9, tokens=2e10, family="llama", hardware="h100",
                                      out=tmp_path / "c"))
    assert any(w.startswith("unpriced: family searches KV heads [1, 2, 4, 8] but law 'inference_aware'")
               for w in report.warnings)


def test_lifecycle_prices_or_flags_kv_heads(tmp_path):
    import yaml

    from infscale.configio import resolve_recipe
    from infscale.workflows.lifecycle import load_deploy, plan_lifecycle

    recipe = resolve_recipe("lifecycle_llm")
    data = yaml.safe_load(recipe.read_text())
    data["crossover"] = {"queries": [1e4, 1e6], "points": 3}

    def parse_deploy(data, name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_deploy(path)

    base = recipe.parent
    report = plan_lifecycle(parse_deploy(data, "llm"), base)
    assert any(w.startswith("unpriced: family 'llama' searches KV heads") for w in report.warnings)
    data["candidates"]["kv_heads"] = [1, 2]
    with pytest.raises(InputError, match=r"^candidates.kv_heads: law '.*' has no term for KV heads"):
        plan_lifecycle(parse_deploy(data, "llm"), base)
    data["candidates"]["kv_heads"] = []  # multi-head attention only: nothing unpriced is searched
    report = plan_lifecycle(parse_deploy(data, "llm"), base)
    assert not any(w.startswith("unpriced") for w in report.warnings)
    assert "kv" not in report.best["model"]


def test_optimum_and_lifetime_refuse_a_law_that_needs_the_architecture(tmp_path):
    from infscale.plan import FLOPS_COST
    from infscale.workflows.optimum import run_optimum
    from infscale.workflows.plan import run_lifetime

    law = _law(tmp_path, ARCH)
    with pytest.raises(InputError, match=r"reads ffn_ratio, kv_group besides N, D and R: .* `infscale plan --law"):
        run_optimum(law, 1e21, aspect_ratio=100.0)
    with pytest.raises(InputError, match=r"reads ffn_ratio, kv_group besides N, D and R"):
        run_lifetime(law, loss_target=2.5, budget=None, prefill_tokens=0.0, decode_tokens=1e12, aspect_ratio=100.0,
                     cost=FLOPS_COST)
