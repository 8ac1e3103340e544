"""Approach 1 (the training-curve envelope): a known answer recovered within its interval, too little data refused
in one line, and the command reading a directory of the trainer's run files beside approach 3."""

import json

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.laws.envelope import Curve, envelope_fit

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def _curves(sizes=np.geomspace(1e7, 1e10, 13)):
    """Chinchilla-law losses along each size's training (the law read at every token count, as a run with a
    schedule tuned for each length would reach)."""
    t = np.geomspace(1e8, 1e12, 200)
    return [Curve(run_id=f"n{i}", n_params=float(n), tokens=t, loss=E + A * n ** -ALPHA + B * t ** -BETA)
            for i, n in enumerate(sizes)]


def test_known_answer_is_recovered_within_its_interval():
    fit = envelope_fit(_curves(), min_fraction=0.0)
    a_true = BETA / (ALPHA + BETA)
    assert fit.a == pytest.approx(a_true, abs=0.01) and fit.a_low <= a_true <= fit.a_high
    assert fit.b == pytest.approx(1 - fit.a) and len(np.unique(fit.bin_n_opt)) >= 6


def test_too_little_data_is_refused_in_one_line():
    with pytest.raises(InputError, match=r"mine: approach 1 .* needs curves of at least 2 model sizes; found 1"):
        envelope_fit(_curves([1e8, 1e8]), source="mine")
    apart = [Curve(run_id="small", n_params=1e7, tokens=np.geomspace(1e8, 1e9, 50), loss=np.linspace(4, 3, 50)),
             Curve(run_id="big", n_params=1e10, tokens=np.geomspace(1e11, 1e12, 50), loss=np.linspace(3, 2, 50))]
    with pytest.raises(InputError, match=r"needs the envelope to change model size over at least 3 compute bins "
                                         r"reached by 2\+ sizes; 0 bins"):
        envelope_fit(apart)  # their compute never overlaps


def test_envelope_command_reads_the_trainers_run_files(tmp_path):
    from typer.testing import CliRunner

    from infscale.cli.main import app

    for n in np.geomspace(1e7, 1e10, 9):  # every size at four token budgets, as Hoffmann's approach 1 trains them
        for mult in (5, 20, 80, 320):
            run = tmp_path / "runs" / f"n{n:.0e}-m{mult}"
            run.mkdir(parents=True)
            t = np.geomspace(1e6, mult * n, 30)
            y = E + A * n ** -ALPHA + B * t ** -BETA
            (run / "record.json").write_text(json.dumps({"run_id": run.name, "N": n, "D": t[-1], "loss": y[-1]}))
            (run / "metrics.jsonl").write_text("".join(
                json.dumps({"step": i, "tokens": float(a), "loss": float(b), "loss_smoothed": float(b)}) + "\n"
                for i, (a, b) in enumerate(zip(t, y, strict=True))))
    res = CliRunner().invoke(app, ["fit", "--data", str(tmp_path / "runs"), "--method", "envelope", "--bootstrap",
                                   "50", "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    one, three = out["compare"]
    assert one["approach"].startswith("1") and three["approach"].startswith("3") and out["n_runs"] == 36
    assert one["a_interval"][0] <= BETA / (ALPHA + BETA) <= one["a_interval"][1]
    assert three["a"] == pytest.approx(BETA / (ALPHA + BETA), abs=0.01)
    assert (tmp_path / "out" / "envelope.json").is_file()
    res = CliRunner().invoke(app, ["fit", "--data", str(tmp_path / "nothing"), "--method", "envelope",
                                   "--out", str(tmp_path / "o2")])
    assert "approach 1 reads a directory of the trainer's runs" in str(res.exception)


def test_all_three_approaches_on_one_directory_of_isoflop_runs(tmp_path):
    """`fit --method approaches`: runs trained as IsoFLOP profiles (5 budgets x 7 sizes, D = C / 6N, each with its
    curve) give approach 1 from the curves, 2 from the budgets' parabolas and 3 from the final losses, one table at
    one compute; each recovers the known a within its interval."""
    from typer.testing import CliRunner

    from infscale.cli.main import app

    a_true = BETA / (ALPHA + BETA)
    for c in np.geomspace(1e19, 1e21, 5):
        n_opt = 0.6 * (c / 6) ** a_true  # the law's optimum is near here: the sizes bracket it
        for n in n_opt * np.geomspace(0.2, 5.0, 7):
            run = tmp_path / "runs" / f"c{c:.1e}-n{n:.2e}"
            run.mkdir(parents=True)
            t = np.geomspace(1e6, c / (6 * n), 40)
            y = E + A * n ** -ALPHA + B * t ** -BETA
            (run / "record.json").write_text(json.dumps({"run_id": run.name, "N": n, "D": t[-1], "loss": y[-1]}))
            (run / "metrics.jsonl").write_text("".join(
                json.dumps({"step": i, "tokens": float(a), "loss_smoothed": float(b)}) + "\n"
                for i, (a, b) in enumerate(zip(t, y, strict=True))))
    res = CliRunner().invoke(app, ["fit", "--data", str(tmp_path / "runs"), "--method", "approaches", "--bootstrap",
                                   "50", "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [row["approach"][0] for row in out["compare"]] == ["1", "2", "3"] and out["n_runs"] == 35
    for row in out["compare"]:
        assert row["a_interval"][0] - 0.01 <= a_true <= row["a_interval"][1] + 0.01, row["approach"]
        assert row["n_opt"] > 0
    assert (tmp_path / "out" / "approaches.json").is_file() and (tmp_path / "out" / "isoflop.png").is_file()
