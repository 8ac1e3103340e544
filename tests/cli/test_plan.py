"""`infscale plan`, `infscale lifetime` and `infscale select` end to end through the console entry point.

The acceptance case: Bian et al.'s law fitted on the 27 main-fit points of its own data (least squares, as the paper's
scripts) and the A100 profile calibrated on Bian et al.'s published latencies recommend a 12-layer 1B shape under 2 s
(batch 1, 128 in / 256 out) and show the 24-layer Open-LM-1B baseline as dominated.
"""

import json
import subprocess
import sys

import pytest

from infscale.laws.fitted import FittedLaw
from infscale.laws.io import load_runs, save_fit
from infscale.laws.pipeline import run_fit


def run(*args, check=True, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture(scope="module")
def bian2025_law(tmp_path_factory):
    """Fit Bian et al.'s inference-aware law on the 27 main-fit points (the paper's procedure) and save it."""
    report = run_fit(load_runs("bian2025"), "inference_aware", "least_squares", fit_on="in_main_fit_set == 1")
    p = report.law.params_
    assert p["alpha"] == pytest.approx(0.614574, rel=1e-3) and p["eps"] == pytest.approx(0.00114621, rel=1e-3)
    return save_fit(report.law, tmp_path_factory.mktemp("law") / "bian2025.json")


def test_acceptance_morph_1b_decision(bian2025_law, tmp_path):
    out = tmp_path / "plan"
    proc = run("plan", "--law", str(bian2025_law), "--hardware", "a100-40gb-bian2025", "--params", "1e9",
               "--tokens", "29e9", "--max-latency", "2.0", "--baseline", "open-lm-1b", "--baseline", "morph-1b",
               "--out", str(out), "--json")
    plan = json.loads(proc.stdout)
    best = plan["best"]
    assert best["n_layers"] == 12
    assert best["latency_s"] <= 2.0 and 5e8 <= best["n_params"] <= 2e9
    base = plan["baselines"]["open-lm-1b"]
    assert base["n_layers"] == 24 and base["dominated"] and not base["on_frontier"]
    assert base["latency_s"] == pytest.approx(3.61, rel=0.05)  # the published 3.61 s
    # Morph-1B itself is feasible and within 0.01 nats of the recommendation
    morph = plan["baselines"]["morph-1b"]
    assert morph["feasible"] and morph["loss"] - best["loss"] < 0.01
    assert {f["label"] for f in plan["frontier"]} >= {best["label"]}
    assert (out / "frontier.png").stat().st_size > 10_000
    assert (out / "frontier.csv").read_text().startswith("label,")


def test_plan_table_output(bian2025_law, tmp_path):
    proc = run("plan", "--law", str(bian2025_law), "--hardware", "a100-40gb-bian2025", "--params", "1e9",
               "--tokens", "29e9", "--max-latency", "2.0", "--baseline", "open-lm-1b", "--out", str(tmp_path))
    assert "Recommended d" in proc.stdout and "x12 h16" in proc.stdout
    assert "dominated by" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("--max-latency", "0.2"), "binding constraint latency <= 0.2s (--max-latency); closest feasible point d"),
    (("--max-train-flops", "1e18"), "binding constraint training FLOPs <= 1e+18 (--max-train-flops)"),
    (("--family", "mystery"), "--family: unknown shape family 'mystery'"),
    (("--hardware", "tpu-v9"), "unknown hardware profile 'tpu-v9'"),
    (("--baseline", "gpt-17"), "--baseline: unknown shape preset 'gpt-17'"),
])
def test_bad_input_is_one_line_and_exit_2(bian2025_law, tmp_path, args, message):
    base = {"--hardware": "a100-40gb-bian2025"}
    extra = dict(zip(args[::2], args[1::2], strict=True))
    opts = {"--params": "1e9", "--tokens": "29e9", "--out": str(tmp_path), **base, **extra}
    flat = [x for kv in opts.items() for x in kv]
    proc = run("plan", "--law", str(bian2025_law), *flat, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_law_file(tmp_path):
    proc = run("plan", "--law", str(tmp_path / "nope.json"), "--params", "1e9", "--tokens", "1e10", check=False)
    assert proc.returncode == 2 and "nope.json" in proc.stderr


def test_lifetime_forward_and_inverse(tmp_path):
    law = save_fit(FittedLaw.from_dict("chinchilla", {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34,
                                                      "beta": 0.28}), tmp_path / "hoffmann.json")
    fwd = json.loads(run("lifetime", "--law", str(law), "--loss-target", "2.1", "--decode-tokens", "2e12",
                         "--json").stdout)
    opt, chin = fwd["optimal"], fwd["chinchilla_optimal"]
    assert opt["n_params"] < chin["n_params"] and opt["tokens_per_param"] > chin["tokens_per_param"]
    assert 0 < fwd["saving"] < 1
    inv = json.loads(run("lifetime", "--law", str(law), "--budget", str(opt["cost"]), "--decode-tokens", "2e12",
                         "--json").stdout)
    assert inv["optimal"]["loss"] == pytest.approx(2.1, abs=1e-5)
    usd = json.loads(run("lifetime", "--law", str(law), "--loss-target", "2.1", "--decode-tokens", "2e12",
                         "--usd-per-hour", "2.0", "--json").stdout)
    assert usd["optimal"]["unit"] == "USD" and usd["optimal"]["n_params"] < opt["n_params"]
    none = run("lifetime", "--law", str(law), "--loss-target", "2.1").stdout  # no demand: nothing to save
    assert "saving vs Chinchilla-optimal at equal loss: 0.0%" in none and "-0.0%" not in none
    bad = run("lifetime", "--law", str(law), "--loss-target", "1.6", check=False)
    assert bad.returncode == 2 and "binding constraint loss target" in bad.stderr


def test_measured_latency_overrides_prediction(bian2025_law, tmp_path):
    args = ("plan", "--law", str(bian2025_law), "--hardware", "a100-40gb-bian2025", "--params", "1e9", "--tokens", "29e9",
            "--max-latency", "2.0", "--out", str(tmp_path), "--json")
    best = json.loads(run(*args).stdout)["best"]
    # a measurement says the recommended shape is too slow: the next best is recommended instead
    csv_path = tmp_path / "measured.csv"
    csv_path.write_text(f"d_model,n_layers,n_heads,latency_s\n{best['d_model']},{best['n_layers']},16,2.3\n")
    plan = json.loads(run(*args, "--measured", str(csv_path)).stdout)
    assert plan["best"]["label"] != best["label"] and plan["best"]["loss"] > best["loss"]
    # the same through `infscale latency measure` records (JSONL); other workloads are ignored
    rec = {"key": "k1", "shape": {"d_model": best["d_model"], "n_layers": best["n_layers"], "n_heads": 16,
                                  "n_kv_heads": None}, "workload": {"batch": 1, "input_len": 128, "output_len": 256},
           "total_s": 2.3}
    other = {**rec, "key": "k2", "workload": {"batch": 8, "input_len": 128, "output_len": 256}, "total_s": 0.1}
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text(json.dumps(rec) + "\n" + json.dumps(other) + "\n")
    assert json.loads(run(*args, "--measured", str(jsonl)).stdout)["best"]["label"] == plan["best"]["label"]
    bad = tmp_path / "bad.csv"
    bad.write_text("d_model,n_layers,n_heads,latency_s\n3072,12,16,fast\n")
    proc = run(*args, "--measured", str(bad), check=False)
    assert proc.returncode == 2 and "bad.csv: row 2" in proc.stderr


def _select_yaml(tmp_path, **over):
    import yaml

    cfg = {
        "law": {"law": "inference_aware",
                "params": {"A": 54754.43, "B": 778345.5, "E": 2.44751, "alpha": 0.614574, "eps": 0.00114621}},
        "rules": {"head_dims": [16], "kv_heads": [], "d_model_multiple": 16, "d_model_min": 32, "d_model_max": 80,
                  "n_layers_min": 1, "n_layers_max": 4, "ffn_multiple": 16},
        "min_params": 9000, "max_params": 80000, "tokens": 8192, "workload": {"batch": 1, "input_len": 16,
                                                                              "output_len": 16},
        "max_latency_s": 0.016, "shortlist": 2, "model": {"context_length": 32},
        "downstream": {"cloze": {"examples": 20}, "next_line": {"examples": 20, "line_tokens": 8}},
        "choose_by": "next_line_acc",
        "train": {"batch_size": 8, "threads": 1, "eval_tokens": 2048, "checkpoint_every": 0, "progress": False,
                  "data": {"vocab_size": 320, "max_bytes": 300000, "val_fraction": 0.05,
                           "cache_dir": str(tmp_path / "cache")}},
    } | over
    path = tmp_path / "sel.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_select_reports_downstream_metrics(tmp_path):
    path = _select_yaml(tmp_path)
    payload = json.loads(run("select", str(path), "--out", str(tmp_path / "o"), "--json").stdout)
    assert payload["choose_by"] == "next_line_acc"
    assert set(payload["spearman_downstream"]) == {"cloze_acc", "cloze_logprob", "next_line_acc"}
    best = max(r["downstream"]["next_line_acc"] for r in payload["runs"])
    assert payload["chosen"]["downstream"]["next_line_acc"] == best
    # re-run (resumes, trains nothing): the table has a column per metric and both correlations
    out = run("select", str(path), "--out", str(tmp_path / "o")).stdout
    assert "cloze_acc" in out and "cloze_logprob" in out and "next_line_acc" in out
    assert f"chosen by next_line_acc: {payload['chosen']['run_id']}" in out
    rhos = out.split("Spearman predicted vs achieved order: ")[1]
    assert rhos.startswith("val loss") and "cloze_logprob" in rhos and "next_line_acc" in rhos


def test_select_unknown_task_is_one_line(tmp_path):
    proc = run("select", str(_select_yaml(tmp_path, downstream=["lambada"])), "--out", str(tmp_path / "o"),
               check=False)
    assert proc.returncode == 2
    assert "sel.yaml: field downstream:" in proc.stderr and "unknown downstream task 'lambada'; known: cloze, next_line" \
        in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_baselines_of_any_vocabulary_are_scored_with_their_own(bian2025_law, tmp_path):
    """`--baseline llama-2-7b --baseline llama-3-8b` on the llama family (32k vocabulary): Llama-3-8B (128k
    vocabulary, GQA) is scored as itself, with its exact 8,030,261,248 parameters, against the same candidates."""
    proc = run("plan", "--law", str(bian2025_law), "--hardware", "h100", "--params", "7e9", "--tokens", "2e12",
               "--family", "llama", "--baseline", "llama-2-7b", "--baseline", "llama-3-8b", "--out", str(tmp_path),
               "--json")
    plan = json.loads(proc.stdout)
    l2, l3 = plan["baselines"]["llama-2-7b"], plan["baselines"]["llama-3-8b"]
    assert l3["n_params"] == 8_030_261_248 and l3["vocab_size"] == 128256 and l3["n_kv_heads"] == 8
    assert l2["n_params"] == 6_738_415_616
    for b in (l2, l3):
        assert b["latency_s"] > 0 and "dominated" in b and b["n_tokens"] == 2e12
        # a 7B model from a law fitted on 78M-312M parameters, timed on a datasheet H100: both said beside it
        assert any(w.startswith("extrapolation: N = ") for w in b["warnings"])
        assert any(w.startswith("uncalibrated: profile 'h100'") for w in b["warnings"])


def test_out_of_range_plan_is_flagged_an_in_range_one_is_not(bian2025_law, tmp_path):
    far = run("plan", "--law", str(bian2025_law), "--hardware", "h100", "--params", "7e9", "--tokens", "1.4e12",
              "--out", str(tmp_path / "far"))
    assert far.stdout.splitlines()[0].startswith("Recommended")  # the result alone on stdout, warnings on stderr
    after = " ".join(far.stderr.splitlines())
    assert "warning: extrapolation: N = " in after and "above its largest (range 7.768e+07 to 3.12e+08 of the 27 " \
        "runs the law was fitted on)" in after and "warning: uncalibrated: profile 'h100'" in after
    plan = json.loads((tmp_path / "far" / "plan.json").read_text())
    assert [w.split(" =")[0] for w in plan["warnings"] if w.startswith("extrapolation")] == [
        "extrapolation: N", "extrapolation: D", "extrapolation: loss"]
    # inside the 27 runs' N, D, D/N, aspect ratio and loss, without a latency profile: nothing to flag
    near = run("plan", "--law", str(bian2025_law), "--params", "2e8", "--params-band", "1.3", "--tokens", "6e9",
               "--out", str(tmp_path / "near"), "--json")
    plan = json.loads(near.stdout)
    assert 1.5e8 < plan["best"]["n_params"] < 2.7e8
    assert [w for w in plan["warnings"] if not w.startswith("search bound: ")] == []  # on the band's edge: said
    quiet = run("plan", "--law", str(bian2025_law), "--params", "2e8", "--params-band", "1.3", "--tokens", "6e9",
                "--out", str(tmp_path / "near"))
    assert "extrapolation" not in quiet.stdout + quiet.stderr and "uncalibrated" not in quiet.stderr


def test_lifetime_and_optimum_flag_an_extrapolated_optimum(bian2025_law, tmp_path):
    life = json.loads(run("lifetime", "--law", str(bian2025_law), "--loss-target", "2.9", "--decode-tokens", "2e12",
                          "--aspect-ratio", "256", "--json").stdout)
    assert any(w.startswith("extrapolation: D = ") for w in life["warnings"])
    near = json.loads(run("optimum", "--law", str(bian2025_law), "--flops", "6e18", "--aspect-ratio", "64",
                          "--json").stdout)
    far = json.loads(run("optimum", "--law", str(bian2025_law), "--flops", "1e23", "--aspect-ratio", "64",
                         "--json").stdout)
    flags = [w for w in far["warnings"] if w.startswith("extrapolation")]
    assert [w.split(" =")[0] for w in flags] == ["extrapolation: N", "extrapolation: D", "extrapolation: loss"]
    assert not [w for w in near["warnings"] if w.startswith("extrapolation")], near
