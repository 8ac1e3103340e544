"""Served rewards without a server: reading scores back and refusing bad settings (the servers themselves:
test_vllm_rewards.py, CI's vLLM step)."""

import math

import pytest

from infscale.errors import InputError
from infscale.tts.backends.served_rewards import _positive, yes_probability
from infscale.tts.core.rewards import make_reward
from infscale.tts.core.tasks import make_task


def test_yes_probability_sums_spellings_and_normalises():
    top = {" Yes": math.log(0.3), "yes": math.log(0.1), " No": math.log(0.2), "Maybe": math.log(0.4)}
    assert yes_probability(top) == pytest.approx(0.4 / 0.6)
    assert yes_probability({" maybe": -0.1}) is None


def test_pooling_rows_read_the_positive_class():
    assert _positive([0.25, 0.75]) == 0.75 and _positive([1.0, 3.0]) == 0.75 and _positive([0.4]) == 0.4
    with pytest.raises(InputError, match=r"expected \[p_negative, p_positive\]"):
        _positive([0.1, 0.2, 0.7])


def test_bad_settings_are_refused_in_one_line(tmp_path):
    task = make_task("math")
    with pytest.raises(InputError, match=r"reward 'judge_verifier': set `base_url` or `endpoints`"):
        make_reward("judge_verifier", task, shape={"d_model": 64, "n_layers": 2, "n_heads": 2})
    with pytest.raises(InputError, match=r"template must hold \{question\} and \{solution\}"):
        make_reward("judge_verifier", task, base_url="http://127.0.0.1:9/v1", template="Is it right?")
    with pytest.raises(InputError, match=r"set `shape` or `config_path`"):
        make_reward("judge_verifier", task, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InputError, match=r"model path '.*nope' does not exist"):
        make_reward("served_prm", task, base_url="http://127.0.0.1:9/v1", path=str(tmp_path / "nope"))


def test_served_prm_layout_needs_only_the_tokenizer_and_config(tmp_path, heads):
    """A served checkpoint's weights need not be local: the layout reads the tokenizer and config alone."""
    heads.save(tmp_path / "prm", "qwen")
    (tmp_path / "prm" / "model.safetensors").unlink()
    prm = make_reward("served_prm", make_task("math"), path=str(tmp_path / "prm"), base_url="http://127.0.0.1:9/v1")
    ids, pos = prm.layout.encode(heads.problem, "", heads.steps)
    assert len(pos) == 3 and all(ids[i] == prm.layout.sep_id for i in pos) and prm.shape.d_model == 32
