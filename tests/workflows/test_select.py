"""Model selection: rank correlation, shortlist order, and the whole workflow through the real trainer (resumable)."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from infscale.errors import InputError
from infscale.extrapolation import law_warnings
from infscale.laws.fitted import FittedLaw
from infscale.laws.validate import spearman
from infscale.plan.optimum import PlanConstraints, plan_shapes
from infscale.plan.shapes import ShapeRules, enumerate_shapes
from infscale.workflows.select import parse_select, run_selection, shortlist

BIAN2025 = {"A": 54754.43, "B": 778345.5, "E": 2.44751, "alpha": 0.614574, "eps": 0.00114621}
BIAN2025_RANGE = {"n_runs": 27, "n_params": [77677440, 311975680], "n_tokens": [1610612736, 12884901888],
                "tokens_per_param": [19.565, 165.17], "aspect_ratio": [17.45, 384.0], "loss": [3.5904, 5.0774]}


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.integers(0, 5, 9).astype(float)
        b = a + rng.normal(0, 2, 9)
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1.0], [2.0]))


def test_shortlist_is_feasible_top_k_by_predicted_loss():
    grid = enumerate_shapes(ShapeRules(n_heads=(16,), head_dims=None, d_model_min=256, n_layers_min=2), 5e8, 2e9)
    law = FittedLaw.from_dict("inference_aware", BIAN2025)
    res = plan_shapes(grid, lambda n, d, r: law.predict(n, d, r), PlanConstraints(max_latency_s=2.0, n_tokens=29e9),
                      lambda g: 256 * (6.4e-13 * g.n_params + 0.55e-3 * g.n_layers))
    jobs = shortlist(res, 4)
    assert [j.rank for j in jobs] == [1, 2, 3, 4]
    losses = [j.predicted_loss for j in jobs]
    assert losses == sorted(losses) and losses[0] == res.loss[res.best]
    assert all(j.predicted_latency_s <= 2.0 for j in jobs)
    feasible_losses = np.sort(res.loss[res.feasible])[:4]
    assert np.allclose(losses, feasible_losses)


def _tiny_config(tmp_path, **over):
    data = {
        "law": {"law": "inference_aware", "params": BIAN2025},
        "family": "llama",
        "rules": {"head_dims": [16], "kv_heads": [], "d_model_multiple": 16, "d_model_min": 32, "d_model_max": 80,
                  "n_layers_min": 1, "n_layers_max": 4, "ffn_multiple": 16},
        "min_params": 9000, "max_params": 80000, "tokens": 8192,
        "hardware": "generic-cpu", "workload": {"batch": 1, "input_len": 16, "output_len": 16},
        "max_latency_s": 0.016, "shortlist": 3, "executor": "local",
        "model": {"context_length": 32, "tied_embeddings": True},
        "train": {"batch_size": 8, "threads": 1, "eval_tokens": 2048, "checkpoint_every": 0, "progress": False,
                  "data": {"vocab_size": 320, "max_bytes": 300000, "cache_dir": str(tmp_path / "cache")}},
    }
    data.update(over)
    return parse_select(data, "tiny.yaml")


def test_select_trains_the_shortlist_and_resumes(tmp_path, capsys, progress_lines):
    # Bian et al.'s law with the range of its 27 fit runs (78M-312M parameters): these 9k-80k candidates extrapolate
    law = FittedLaw.from_dict("inference_aware", BIAN2025, {"fit_range": BIAN2025_RANGE})
    out = tmp_path / "sel"
    # a first call trains the top candidate only
    first = run_selection(_tiny_config(tmp_path, shortlist=1), out, law=law)
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1 and first.chosen["rank"] == 1
    # the full selection reuses that run and trains only the two others
    capsys.readouterr()
    cfg = _tiny_config(tmp_path)
    report = run_selection(cfg, out, law=law)
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 3
    # off a terminal: one progress line per run of the shortlist (the kept one too), each with its ETA
    assert sorted(set(progress_lines(capsys.readouterr().err, "sweep sel"))) == [(1, 3), (2, 3), (3, 3)]
    assert report.runs[0]["achieved_loss"] == first.runs[0]["achieved_loss"]
    candidates = json.loads((out / "candidates.json").read_text())
    assert [r["rank"] for r in report.runs] == [1, 2, 3]
    assert [r["label"] for r in candidates[:3]] == [f"d{r['d_model']}x{r['n_layers']} h{r['n_heads']}"
                                                   for r in report.runs]
    assert all(r["predicted_latency_s"] <= 0.016 for r in report.runs)
    assert all(r["latency_s"] <= 0.016 for r in candidates) and len(candidates) == report.n_feasible
    achieved = [r["achieved_loss"] for r in report.runs]
    assert report.chosen["achieved_loss"] == min(achieved)
    assert sorted(r["achieved_rank"] for r in report.runs) == [1, 2, 3]
    assert report.spearman == pytest.approx(spearman([r["predicted_loss"] for r in report.runs], achieved))
    for r in report.runs:
        # the trainer's N equals the planner's N (same vocabulary and tying); D is rounded up to whole steps
        assert r["n_params"] == r["planned_n_params"] and 8192 <= r["n_tokens"] < 8192 + 8 * 32
        assert np.isfinite(r["achieved_loss"]) and r["achieved_loss"] < np.log(320) + 0.5
    # every prediction of the shortlist extrapolates (N, D, D/N, R and loss far outside the fit), on a datasheet CPU
    assert report.warnings[0].startswith("extrapolation: the predictions of 3 of 3 shortlisted runs leave the law's "
                                         "fitted range in N, D")
    assert any(w.startswith("uncalibrated: profile 'generic-cpu'") for w in report.warnings)
    for r in report.runs:
        assert any(w.startswith("extrapolation: N = ") and "below its smallest" in w for w in r["warnings"])
    # the same shortlist under a law fitted on runs like these: no extrapolation left to flag
    near = {"n_runs": 3, "n_params": [9e3, 8e4], "n_tokens": [8e3, 9e3], "tokens_per_param": [0.1, 1.0],
            "aspect_ratio": [8, 80], "loss": [1.0, 1e4]}
    in_range = run_selection(cfg, out, law=FittedLaw.from_dict("inference_aware", BIAN2025, {"fit_range": near}))
    assert not [w for r in in_range.runs for w in r["warnings"] if w.startswith("extrapolation")], in_range.warnings
    # a third call trains nothing and gives the same report
    again = run_selection(cfg, out, law=law)
    assert (out / "records.jsonl").read_text().splitlines() == lines
    assert again.chosen == report.chosen
    assert json.loads((out / "report.json").read_text())["chosen"]["run_id"] == report.chosen["run_id"]


def test_a_bad_inline_fit_range_is_named_not_hidden_behind_the_path_branch(tmp_path):
    """``law`` is a path or an inline law: an error inside the inline law is reported, not "should be a string"."""
    bad = {"law": "inference_aware", "params": BIAN2025, "fit_range": {**BIAN2025_RANGE, "n_params": [3e8, 7e7]}}
    with pytest.raises(InputError) as err:
        _tiny_config(tmp_path, law=bad)
    assert str(err.value) == ("tiny.yaml: field law.InlineLaw.fit_range: fit_range.n_params: expected finite low <= "
                              "high, got [300000000.0, 70000000.0]")
    assert _tiny_config(tmp_path, law={**bad, "fit_range": BIAN2025_RANGE}).law.fit_range["n_runs"] == 27


def test_select_config_errors_name_the_field(tmp_path):
    with pytest.raises(InputError, match="tiny.yaml: field shortlst"):
        _tiny_config(tmp_path, shortlst=2)
    with pytest.raises(InputError, match="train.tokens is set by the selection"):
        _tiny_config(tmp_path, train={"tokens": 5})
    cfg = _tiny_config(tmp_path, executor="slurm")
    with pytest.raises(InputError, match="field executor: unknown 'slurm'; known: local, ray"):
        run_selection(cfg, tmp_path / "x", law=FittedLaw.from_dict("inference_aware", BIAN2025))
    cfg = _tiny_config(tmp_path, rules={"head_dim": [16]})
    with pytest.raises(InputError, match="field rules"):
        run_selection(cfg, tmp_path / "y", law=FittedLaw.from_dict("inference_aware", BIAN2025))


def test_select_with_measured_latency_times_candidates_in_rank_order(tmp_path):
    """Bian et al.'s variant: latencies measured on this machine, lazily, until the shortlist is full."""
    law = FittedLaw.from_dict("inference_aware", BIAN2025)
    cfg = _tiny_config(tmp_path, shortlist=2, latency_source="measured", max_latency_s=10.0,
                       measure={"warmup": 0, "repeats": 1, "threads": 1, "device": "cpu"})
    report = run_selection(cfg, tmp_path / "m", law=law)
    # the inline law has no fitted range: whether the shortlist extrapolates is said to be unknown
    assert all(r["warnings"] == [law_warnings({})[0]] for r in report.runs)
    timed = [json.loads(line) for line in (tmp_path / "m" / "latency.jsonl").read_text().splitlines()]
    # a generous limit: exactly the top two by predicted loss were timed, and their measurements are the latencies
    assert len(timed) == 2
    assert [r["label"] for r in timed] == [f"d{r['d_model']}x{r['n_layers']}" for r in report.runs]
    assert [r["predicted_latency_s"] for r in report.runs] == [r["total_s"] for r in timed]
    # a limit between the two measurements drops the slower one and times the next candidate (resuming the file)
    cut = (timed[0]["total_s"] + timed[1]["total_s"]) / 2
    slow = max(timed, key=lambda r: r["total_s"])["label"]
    cfg2 = _tiny_config(tmp_path, shortlist=2, latency_source="measured", max_latency_s=cut,
                        measure={"warmup": 0, "repeats": 1, "threads": 1, "device": "cpu"})
    report2 = run_selection(cfg2, tmp_path / "m", law=law)
    labels = [f"d{r['d_model']}x{r['n_layers']}" for r in report2.runs]
    assert slow not in labels and labels[0] in {r["label"] for r in timed}
    assert all(r["predicted_latency_s"] <= cut for r in report2.runs)


def test_shipped_select_recipes_load_and_plan():
    from pathlib import Path

    import yaml

    import infscale
    from infscale.latency.model import Workload
    from infscale.plan.adapters import latency_from_profile, loss_from_law
    from infscale.workflows.select import _rules

    recipes = sorted((Path(infscale.__file__).parent / "recipes").glob("select_*.yaml"))
    assert recipes
    for path in recipes:
        cfg = parse_select(yaml.safe_load(path.read_text()), str(path))
        grid = enumerate_shapes(_rules(cfg), cfg.min_params, cfg.max_params)
        law = FittedLaw.from_dict(cfg.law.law, cfg.law.params)
        w = cfg.workload
        lat = latency_from_profile(cfg.hardware, Workload(batch=w.batch, input_len=w.input_len,
                                                          output_len=w.output_len, dtype=w.dtype))
        res = plan_shapes(grid, loss_from_law(law), PlanConstraints(max_latency_s=cfg.max_latency_s,
                                                                   n_tokens=cfg.tokens), lat)
        assert len(shortlist(res, cfg.shortlist)) == cfg.shortlist, path.name


TASKS_SMALL = {"cloze": {"examples": 30}, "next_line": {"examples": 30, "line_tokens": 8}}


def _with_tasks(tmp_path, **over):
    """The tiny selection with a 5% validation split (room for 30 examples of each task)."""
    base = _tiny_config(tmp_path).train
    train = base | {"data": base["data"] | {"val_fraction": 0.05}}
    return _tiny_config(tmp_path, **({"shortlist": 3, "downstream": TASKS_SMALL, "train": train} | over))


def test_select_config_with_downstream_tasks(tmp_path):
    cfg = _tiny_config(tmp_path, downstream=["cloze"], choose_by="cloze_acc")
    assert set(cfg.downstream) == {"cloze"} and cfg.downstream["cloze"]["examples"] == 200
    assert _tiny_config(tmp_path).choose_by == "val_loss" and _tiny_config(tmp_path).downstream == {}
    with pytest.raises(InputError, match=r"^tiny.yaml: field downstream: .*unknown downstream task 'lambada'; known: cloze, "
                                         r"next_line$"):
        _tiny_config(tmp_path, downstream=["lambada"])
    with pytest.raises(InputError, match=r"^tiny.yaml: field choose_by: .*unknown metric 'next_line_acc'; with these "
                                         r"downstream tasks: val_loss, cloze_acc, cloze_logprob$"):
        _tiny_config(tmp_path, downstream=["cloze"], choose_by="next_line_acc")
    with pytest.raises(InputError, match="train.downstream: name the tasks in the top-level 'downstream' field"):
        _tiny_config(tmp_path, train={"downstream": ["cloze"]})


def test_select_with_downstream_tasks_chooses_by_the_named_metric(tmp_path):
    law = FittedLaw.from_dict("inference_aware", BIAN2025)
    out = tmp_path / "sel"
    cfg = _with_tasks(tmp_path, choose_by="cloze_logprob")
    report = run_selection(cfg, out, law=law)
    records = {r["run_id"]: r for r in map(json.loads, (out / "records.jsonl").read_text().splitlines())}
    metrics = ["cloze_acc", "cloze_logprob", "next_line_acc"]
    predicted = [r["predicted_loss"] for r in report.runs]
    for r in report.runs:
        assert r["downstream"] == {m: records[r["run_id"]]["downstream"][m] for m in metrics}
        assert records[r["run_id"]]["downstream_examples"] == {"cloze": 30, "next_line": 30}
    logprob = [r["downstream"]["cloze_logprob"] for r in report.runs]
    assert len(set(logprob)) == 3  # three different models score differently
    assert report.choose_by == "cloze_logprob" and report.chosen["downstream"]["cloze_logprob"] == max(logprob)
    # ranks: 1 = best (highest) on each metric; correlations read +1 when the predicted order is the achieved one
    assert [r["downstream_rank"]["cloze_logprob"] for r in report.runs] == \
        [1 + sum(o > v for o in logprob) for v in logprob]
    for m in metrics:
        values = [r["downstream"][m] for r in report.runs]
        expected = spearman(predicted, [-v for v in values])
        got = report.spearman_downstream[m]
        assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected)
    assert report.spearman_downstream["cloze_logprob"] == pytest.approx(-spearman(predicted, logprob))
    saved = json.loads((out / "report.json").read_text())
    assert saved["choose_by"] == "cloze_logprob" and set(saved["spearman_downstream"]) == set(metrics)
    assert saved["chosen"]["run_id"] == report.chosen["run_id"]
    # the same runs chosen by validation loss: no retraining, the choice follows the other metric
    by_loss = run_selection(_with_tasks(tmp_path), out, law=law)
    assert len((out / "records.jsonl").read_text().splitlines()) == 3
    assert by_loss.chosen["achieved_loss"] == min(r["achieved_loss"] for r in report.runs)
    assert by_loss.spearman_downstream["cloze_logprob"] == report.spearman_downstream["cloze_logprob"]
    # other task settings would compare metrics on other examples: refused, nothing retrained
    with pytest.raises(InputError, match=r"was scored with other downstream tasks or settings \(cloze_acc, "
                                         r"cloze_logprob, next_line_acc; its record predates this config\)"):
        run_selection(_with_tasks(tmp_path, downstream={"cloze": {"examples": 10}}), out, law=law)


def test_select_refuses_runs_trained_without_the_tasks(tmp_path):
    law = FittedLaw.from_dict("inference_aware", BIAN2025)
    out = tmp_path / "old"
    run_selection(_tiny_config(tmp_path, shortlist=1), out, law=law)
    with pytest.raises(InputError, match=r"run r1-\S+ was scored with other downstream tasks or settings \(no "
                                         r"downstream metrics; its record predates this config\): use another --out"):
        run_selection(_tiny_config(tmp_path, shortlist=1, downstream=["cloze"]), out, law=law)
