"""Runs loading: bundled datasets, aliases, the trainer's JSONL records, and one-line errors naming file, row and field."""

import json

import numpy as np
import pandas as pd
import pytest

from infscale.errors import InputError
from infscale.laws.io import load_runs
from infscale.laws.runs import Runs


@pytest.mark.parametrize("name,rows", [("bian2025", 76), ("chinchilla", 234), ("gadre", 104), ("sardana", 47)])
def test_bundled_datasets_load_with_canonical_columns(name, rows):
    runs = load_runs(name)
    assert len(runs) == rows
    assert (runs.n_params > 0).all() and (runs.n_tokens > 0).all() and (runs.loss > 0).all()


def test_bian2025_columns_and_split():
    runs = load_runs("bian2025")
    # Morph/open_lm 80M_v1: d=512, 8 layers -> N by Bian et al.'s formula, R = 64
    row = runs.frame.iloc[0]
    d, n_layers, v = 512, 8, 50432
    h = 256 * int(np.ceil(8 * d / 3 / 256))
    assert row["N"] == 2 * v * d + n_layers * (4 * d * d + 3 * d * h + 2 * d) + d
    assert row["aspect_ratio"] == 64.0
    fit, held = runs.split("in_main_fit_set == 1")
    assert (len(fit), len(held)) == (27, 49)
    small, big = runs.split("N < 2e8")
    assert small.n_params.max() < 2e8 <= big.n_params.min()


def test_aliases_csv_and_parquet(tmp_path):
    df = pd.DataFrame({"Parameters": [1e8, 2e8], "Tokens": [2e9, 4e9], "Smoothed Loss": [3.1, 2.9], "mmlu": [0.25, 0.27]})
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_parquet(tmp_path / "a.parquet")
    for f in ("a.csv", "a.parquet"):
        runs = load_runs(tmp_path / f)
        assert runs.n_params.tolist() == [1e8, 2e8]
        assert runs.loss.tolist() == [3.1, 2.9]
        assert runs.frame["tokens_per_param"].tolist() == [20.0, 20.0]
        assert "mmlu" in runs.frame.columns


def test_trainer_jsonl_records(tmp_path):
    recs = [{"N": 1.2e6 * (i + 1), "D": 2.4e7 * (i + 1), "loss": 4.0 - 0.1 * i, "d_model": 64 * (i + 1), "n_layers": 4,
             "group": f"g{i}", "run_id": f"r{i}", "wall_s": 12.5} for i in range(3)]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    runs = load_runs(path)
    assert len(runs) == 3
    assert runs.aspect_ratio.tolist() == [16.0, 32.0, 48.0]
    assert runs.group.tolist() == ["g0", "g1", "g2"]


def _err(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        load_runs(path)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_column(tmp_path):
    assert "missing column 'loss'" in _err(tmp_path, "m.csv", "N,D\n1e8,2e9\n")


def test_negative_and_nan_values_name_row_and_field(tmp_path):
    msg = _err(tmp_path, "neg.csv", "N,D,loss\n1e8,2e9,3.0\n-5,2e9,3.0\n")
    assert "row 2" in msg and "'N'" in msg
    msg = _err(tmp_path, "nan.csv", "N,D,loss\n1e8,2e9,3.0\n1e8,2e9,3.0\n1e8,,3.0\n")
    assert "row 3" in msg and "'D'" in msg
    msg = _err(tmp_path, "nan2.csv", "N,D,loss\n1e8,2e9,nan\n")
    assert "row 1" in msg and "'loss'" in msg
    msg = _err(tmp_path, "txt.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3}\n{"N": 1e8, "D": 2e9, "loss": "abc"}\n')
    assert "row 2" in msg and "'loss'" in msg


def test_empty_file_and_header_only(tmp_path):
    assert "empty file" in _err(tmp_path, "e.csv", "")
    assert "empty file" in _err(tmp_path, "h.csv", "N,D,loss\n")
    assert "empty file" in _err(tmp_path, "e.jsonl", "\n\n")


def test_wrong_delimiter(tmp_path):
    msg = _err(tmp_path, "semi.csv", "N;D;loss\n1e8;2e9;3.0\n")
    assert "wrong delimiter" in msg and "'N'" in msg


def test_torn_jsonl_line(tmp_path):
    msg = _err(tmp_path, "torn.jsonl", '{"N": 1e8, "D": 2e9, "loss": 3}\n{"N": 1e8, "D"\n')
    assert "row 2" in msg and "invalid JSON" in msg


def test_unknown_name_and_bad_query(tmp_path):
    with pytest.raises(InputError, match="not a bundled dataset"):
        load_runs("no-such-dataset")
    runs = load_runs("bian2025")
    with pytest.raises(InputError, match="--fit-on"):
        runs.split("no_such_column > 3")
    with pytest.raises(InputError, match="selects no rows"):
        runs.split("N < 0")


def test_dataset_column_mappings():
    gadre = load_runs("gadre")
    assert gadre.loss[0] == pytest.approx(5.974924)  # loss_c4_val of c4_original-d=96_l=8_h=4-0.25
    assert gadre.group[0] == "d=96_l=8_h=4" and gadre.frame["tokens_per_param"].min() == 5.0  # M = 5..640
    sardana = load_runs("sardana")
    assert sardana.n_params[0] == 151e6 and sardana.n_tokens[0] == 1.51e9 and sardana.group[0] == "150M"
    c4, rest = gadre.split("dataset == 'c4_original'")
    assert len(c4) == 34 and len(rest) == 70


def test_fit_on_can_name_n_params_and_n_tokens():
    import pandas as pd

    from infscale.laws.runs import Runs

    runs = Runs.from_frame(pd.DataFrame({"N": [1e5, 2e5, 3e5], "D": [1e6, 2e6, 3e6], "loss": [3.0, 2.9, 2.8]}))
    fit, held = runs.split("n_params < 2.5e5 and n_tokens > 1.5e6")
    assert list(fit.n_params) == [2e5] and len(held) == 2


def test_kv_heads_and_ffn_width_give_the_architecture_variables():
    """``n_heads``, ``n_kv_heads`` and ``d_ff`` give Bian et al. 2025b's MLP-to-attention ratio and the GQA group;
    a KV-head count that does not divide the heads is one line naming row and field."""
    frame = pd.DataFrame({"N": [1e5, 1e5], "D": [2e6, 2e6], "loss": [3.0, 3.1], "d_model": [64, 64],
                          "n_layers": [2, 2], "n_heads": [8, 8], "n_kv_heads": [8, 2], "d_ff": [176, 72]})
    runs = Runs.from_frame(frame)
    # r = 3 d_ff / (2 head_dim (n_heads + n_kv)) with head_dim 8
    assert runs.arch.ffn_ratio.tolist() == [3 * 176 / (16 * 16), 3 * 72 / (16 * 10)]
    assert runs.arch.kv_group.tolist() == [1.0, 4.0] and runs.arch.d_model.tolist() == [64.0, 64.0]
    assert Runs.from_frame(frame.drop(columns="n_kv_heads")).arch.kv_group.tolist() == [1.0, 1.0]
    assert Runs.from_frame(frame.drop(columns=["d_ff"])).arch.ffn_ratio is None
    bad = frame.assign(n_kv_heads=[8, 3])
    with pytest.raises(InputError, match=r"row 2, field 'n_kv_heads': 3 does not divide n_heads 8"):
        Runs.from_frame(bad, source="runs.csv")
