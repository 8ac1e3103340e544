"""`infscale.configio`: every bad input file is one line naming it; names used as path components are checked once."""

from __future__ import annotations

import pytest
import yaml

from infscale.configio import check_name, load_json, load_yaml, read_text, resolve_recipe, validate_config
from infscale.errors import InputError


@pytest.mark.parametrize("content, needle", [
    (None, ": no such "),
    ("dir", "is a directory"),
    (b"\x00\x01\x02binary", "binary content"),
    (b"caf\xe9 au lait", "not UTF-8 text (byte 3)"),
])
def test_unreadable_inputs_are_one_line(tmp_path, content, needle):
    path = tmp_path / "in.yaml"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    for load in (read_text, load_yaml, load_json):
        with pytest.raises(InputError) as err:
            load(path)
        assert needle in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_yaml_and_json_errors_name_file_and_line(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("a: 1\nb: [2, 3\n")
    with pytest.raises(InputError, match=r"c.yaml: not valid YAML at line 3"):
        load_yaml(y)
    y.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match=r"c.yaml: expected a mapping at the top level, got list"):
        load_yaml(y)
    y.write_text("")
    assert load_yaml(y) == {}
    j = tmp_path / "p.json"
    j.write_text("[1, 2, 3]")
    with pytest.raises(InputError, match=r"p.json: expected a mapping at the top level, got list"):
        load_json(j)
    j.write_text('{"a": NaN}')
    with pytest.raises(InputError, match=r"p.json: not valid JSON \(non-finite number NaN\)"):
        load_json(j)
    j.write_text('{"a": 1,}')
    with pytest.raises(InputError, match=r"p.json: not valid JSON \(.*line 1\)"):
        load_json(j)


BAD_NAMES = ["", "   ", "..", ".", "../escape", "/abs/path", "a/b", "a\\b", "x" * 101, "tab\there"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_path_names_are_refused(name):
    with pytest.raises(ValueError):
        check_name(name)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_every_name_field_refuses_a_path(tmp_path, name):
    from infscale.train.config import SweepConfig, TrainConfig
    from infscale.tts.core.config import RunConfig

    train = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2}, "tokens": 100, "run_id": name}
    cases = [
        (TrainConfig, train, "run_id"),
        (TrainConfig, {**train, "run_id": None, "group": name}, "group"),
        (SweepConfig, {"base": {}, "groups": [{"name": name, "tokens_per_param": [1.0],
                                               "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2}]}]},
         "groups.0.name"),
        (RunConfig, {"run": name, "task": {"name": "arith"}, "generator": {"name": "scripted"},
                     "strategies": [{"name": "greedy"}]}, "run"),
    ]
    for model, data, field in cases:
        with pytest.raises(InputError, match=rf"^cfg.yaml: field {field}: "):
            validate_config(data, model, "cfg.yaml")


def test_good_names_pass_and_recipes_resolve(tmp_path, monkeypatch):
    assert check_name("d64x2-m0.3_run") == "d64x2-m0.3_run"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "micro_sweep").mkdir()
    assert resolve_recipe("micro_sweep").name == "micro_sweep.yaml" and resolve_recipe("micro_sweep").is_file()
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"a": 1}))
    assert resolve_recipe("mine.yaml").resolve() == tmp_path / "mine.yaml"
