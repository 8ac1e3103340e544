"""`infscale fit`: the main job's figures, JSON output, plot, saved fit, and bad input -> one line + exit 2."""

import json
import subprocess
import sys

import pytest

from infscale.laws.io import load_fit


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("fit")
    res = _cli("fit", "--json", "--bootstrap", "20", "--save", "law.json", cwd=cwd)
    assert res.returncode == 0, res.stderr
    return cwd, json.loads(res.stdout)


def test_default_fit_is_bian2025_main_fit_with_baseline(main_job):
    cwd, out = main_job
    ours, base = out["fits"]
    assert (ours["law"], base["law"]) == ("inference_aware", "chinchilla_tied")
    assert ours["n_fit"] == 27 and ours["n_held_out"] == 49
    assert round(ours["params"]["alpha"], 4) == 0.6146
    assert round(ours["validation"]["all"]["mse"], 6) == 0.000554
    assert round(ours["validation"]["held_out"]["r2"], 5) == 0.99753
    one_b = {g["group"]: g["spearman"] for g in ours["validation"]["per_group"]}["1B"]
    assert one_b == pytest.approx(1.0)
    assert round(base["validation"]["all"]["mse"], 6) == 0.003296
    assert {g["group"]: g["spearman"] for g in base["validation"]["per_group"]}["1B"] == pytest.approx(-0.4)
    assert ours["bootstrap"]["n_boot"] == 20
    assert ours["bootstrap"]["low"]["alpha"] <= ours["params"]["alpha"] <= ours["bootstrap"]["high"]["alpha"]


def test_default_fit_writes_plot_and_loadable_fit(main_job):
    cwd, out = main_job
    png = cwd / out["files"]["plot"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    law = load_fit(cwd / "law.json")
    assert law.name == "inference_aware"
    p = out["fits"][0]["params"]
    n, d, r = 1.669e9, 20 * 1.669e9, 256.0  # Morph-1B: N by Bian et al.'s formula, 20 tokens/param, R = 3072/12
    expected = (p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["alpha"]) * (1 + p["eps"] * r ** p["alpha"])
    assert float(law.predict(n, d, r)) == pytest.approx(expected, rel=1e-12)
    (fit_dir,) = (cwd / "infscale-out").glob("fit-*")  # the default output: infscale-out/fit-<UTC time>/
    assert (fit_dir / "fit.json").exists() and str(png).startswith(str(fit_dir))
    assert json.loads((fit_dir / "fit.json").read_text())["meta"]["fit_range"]["n_runs"] == 27


def test_fit_trainer_records_with_fit_on(tmp_path):
    recs = []
    for i, (n, d) in enumerate([(1e6, 2e7), (2e6, 4e7), (4e6, 8e7), (1e6, 8e7), (2e6, 1.6e8), (8e6, 1.6e8), (4e6, 3.2e8)]):
        loss = 1.8 + 400 / n ** 0.34 + 400 / d ** 0.28
        recs.append({"N": n, "D": d, "loss": loss, "d_model": 64, "n_layers": 4, "group": f"{n:.0e}", "run": i})
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = _cli("fit", "--data", "records.jsonl", "--law", "chinchilla", "--fit-on", "N < 8e6", "--bootstrap", "0",
               "--no-plot", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    assert fit["n_fit"] == 6 and fit["n_held_out"] == 1
    assert fit["validation"]["held_out"]["mse"] < 1e-8


@pytest.mark.parametrize("content,needle", [
    ("N,D\n1e8,2e9\n", "missing column 'loss'"),
    ("N,D,loss\n1e8,2e9,3.0\n1e8,-2e9,3.0\n", "row 2, field 'D'"),
    ("N,D,loss\n1e8,2e9,nan\n", "row 1, field 'loss'"),
    ("", "empty file"),
    ("N;D;loss\n1e8;2e9;3.0\n", "wrong delimiter"),
])
def test_bad_input_one_line_exit_2(tmp_path, content, needle):
    (tmp_path / "runs.csv").write_text(content)
    res = _cli("fit", "--data", "runs.csv", "--no-plot", cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "runs.csv" in lines[0]


def test_bad_options_exit_2(tmp_path):
    res = _cli("fit", "--law", "nope", "--no-plot", cwd=tmp_path)
    assert res.returncode == 2 and "unknown law" in res.stderr
    res = _cli("fit", "--fit-on", "no_such_col > 1", "--no-plot", cwd=tmp_path)
    assert res.returncode == 2 and "--fit-on" in res.stderr


def test_huber_fit_json_is_strict_and_matches_library(tmp_path):
    from infscale.laws.fit import HuberFitter
    from infscale.laws.io import load_runs

    res = _cli("fit", "--data", "chinchilla", "--bootstrap", "0", "--no-plot", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    fit = out["fits"][0]
    assert fit["law"] == "chinchilla" and fit["fitter"] == "huber" and fit["n_fit"] == 234
    ref = HuberFitter("chinchilla").fit(load_runs("chinchilla"))
    for k, v in ref.params_.items():
        assert fit["params"][k] == pytest.approx(v, rel=1e-6)
