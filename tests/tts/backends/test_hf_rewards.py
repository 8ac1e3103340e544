"""The public reward heads read natively (`infscale.tts.backends.hf_rewards`), each on a tiny random-initialised model
of the real architecture class saved with `save_pretrained` under the public checkpoint's parameter names: scores
equal a direct torch computation of the head's formula; a checkpoint with other names, or a tokenizer without the
separator, is refused in one line; a planted ``modeling_*.py`` in the checkpoint directory never runs."""

from __future__ import annotations

import json
import sys

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from infscale.errors import InputError  # noqa: E402
from infscale.tts.core.rewards import make_reward  # noqa: E402
from infscale.tts.core.tasks import MATH500_SAMPLE, make_task  # noqa: E402

# The names the loader expects, as the public checkpoints write them (model.safetensors.index.json of
# Qwen/Qwen2.5-Math-PRM-7B and Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B): the Qwen2 decoder under `model.`, then
QWEN_PRM_NAMES = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                  "model.layers.0.self_attn.q_proj.bias", "model.layers.0.mlp.gate_proj.weight", "model.norm.weight",
                  "score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias")
SKYWORK_NAMES = ("model.embed_tokens.weight", "model.layers.0.self_attn.o_proj.weight", "model.norm.weight",
                 "v_head.summary.weight", "v_head.summary.bias")



@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory, heads):
    path = tmp_path_factory.mktemp("qwen_prm")
    model, fast = heads.save(path, "qwen")
    return path, model, fast


@pytest.fixture(scope="module")
def skywork_dir(tmp_path_factory, heads):
    path = tmp_path_factory.mktemp("skywork_prm")
    model, fast = heads.save(path, "skywork")
    return path, model, fast


def _direct_hidden(model, ids):
    with torch.no_grad():
        return model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]


def test_qwen_prm_equals_the_direct_computation(qwen_dir, heads):
    path, model, fast = qwen_dir
    task = make_task("math", path=str(MATH500_SAMPLE))
    prm = make_reward("qwen_prm", task, path=str(path), batch_size=2)
    paths = [heads.steps, heads.steps[:2], heads.steps[:1]]
    got = prm.score(heads.problem, "ignored prompt", paths)
    for steps, scored in zip(paths, got, strict=True):
        text = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}."
                f"<|im_end|>\n<|im_start|>user\n{heads.problem.question}<|im_end|>\n<|im_start|>assistant\n"
                + "".join(s.strip() + "<extra_0>" for s in steps) + "<|im_end|>\n")
        ids = fast.encode(text, add_special_tokens=False)
        sep = fast.convert_tokens_to_ids("<extra_0>")
        h = _direct_hidden(model, ids)
        with torch.no_grad():
            probs = torch.softmax(model.score(h), -1)[:, 1]
        want = [float(probs[i]) for i, t in enumerate(ids) if t == sep]
        assert len(want) == len(steps) == len(scored.scores)
        assert scored.scores == pytest.approx(want, abs=1e-5)
        assert scored.n_tokens == len(ids)
    assert len({round(s, 4) for r in got for s in r.scores}) > 2  # the scores differ: parity is not trivial
    assert prm.shape.d_model == 32 and prm.shape.n_layers == 2


def test_skywork_prm_equals_the_direct_computation(skywork_dir, heads):
    path, model, fast = skywork_dir
    prm = make_reward("skywork_prm", make_task("arith"), path=str(path), batch_size=2)
    paths = [heads.steps, heads.steps[1:]]
    got = prm.score(heads.problem, "ignored", paths)
    nl = fast.encode("\n", add_special_tokens=False)[-1]
    for steps, scored in zip(paths, got, strict=True):
        ids = fast.encode("<|endoftext|>" + heads.problem.question + "\n", add_special_tokens=False)
        flags = []
        for s in steps:
            ids = ids + fast.encode(s.strip("\n"), add_special_tokens=False) + [nl]
            flags.append(len(ids) - 1)
        h = _direct_hidden(model, ids)
        with torch.no_grad():
            want = torch.sigmoid(model.v_head.summary(h)[:, 0])[flags].tolist()
        assert scored.scores == pytest.approx(want, abs=1e-5)


def test_expected_parameter_names_are_the_public_ones(qwen_dir, skywork_dir):
    from infscale.tts.backends.hf_rewards import (
        QWEN_HEAD,
        SKYWORK_HEAD,
        _config,
        _model_class,
        expected_names,
    )

    for (path, _, _), head, public in ((qwen_dir, QWEN_HEAD, QWEN_PRM_NAMES), (skywork_dir, SKYWORK_HEAD,
                                                                                 SKYWORK_NAMES)):
        cfg = _config(path)
        names = expected_names(cfg, _model_class(cfg, "MODEL_MAPPING", path), "model.", head)
        assert set(public) <= names
        assert all(n.startswith(("model.", "score.", "v_head.")) for n in names)


def test_wrong_names_and_missing_separator_are_refused(tmp_path, heads):
    heads.save(tmp_path / "renamed", "qwen", rename={"score.2.weight": "classifier.weight"})
    with pytest.raises(InputError, match=r"renamed/model.safetensors: not a Qwen2.5-Math-PRM-style checkpoint: "
                                         r"missing parameters score.2.weight"):
        make_reward("qwen_prm", make_task("arith"), path=str(tmp_path / "renamed"))
    # Skywork's layout read as Qwen's: its head names are missing
    heads.save(tmp_path / "sky", "skywork")
    with pytest.raises(InputError, match=r"missing parameters score.0.bias, score.0.weight, score.2.bias"):
        make_reward("qwen_prm", make_task("arith"), path=str(tmp_path / "sky"))
    heads.save(tmp_path / "nosep", "qwen", specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"))
    with pytest.raises(InputError, match=r"nosep/tokenizer.json: PRM separator token '<extra_0>' is not a single"):
        make_reward("qwen_prm", make_task("arith"), path=str(tmp_path / "nosep"))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match=r"pickled: weights only as .bin/.pt \(pickles"):
        make_reward("skywork_prm", make_task("arith"), path=str(tmp_path / "pickled"))
    (tmp_path / "alien").mkdir()
    (tmp_path / "alien" / "config.json").write_text(json.dumps({"model_type": "my_secret_arch"}))
    with pytest.raises(InputError, match=r"alien/config.json: model_type 'my_secret_arch' is not an architecture"):
        make_reward("skywork_prm", make_task("arith"), path=str(tmp_path / "alien"))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, heads, tiny_llama):
    """One tiny checkpoint per public layout: Qwen PRM, Skywork PRM, a chat causal LM (RLHFlow's), a
    sequence-classification ORM, a Math-Shepherd causal LM with the step tag."""
    from transformers import Qwen2ForCausalLM, Qwen2ForSequenceClassification

    root = tmp_path_factory.mktemp("layouts")
    heads.save(root / "qwen", "qwen")
    heads.save(root / "skywork", "skywork")
    fast = heads.tokenizer(root / "chat", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    Qwen2ForCausalLM(heads.qwen_config(len(fast))).save_pretrained(root / "chat")
    fast = heads.tokenizer(root / "orm", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    Qwen2ForSequenceClassification(heads.qwen_config(len(fast), num_labels=1, pad_token_id=fast.pad_token_id)
                                   ).save_pretrained(root / "orm")
    return {"qwen_prm": root / "qwen", "skywork_prm": root / "skywork", "rlhflow_prm": root / "chat",
            "seqcls_orm": root / "orm", "hf_prm": tiny_llama(root / "shepherd", True)}


@pytest.mark.parametrize(("reward", "other", "message"), [
    ("qwen_prm", "skywork_prm", r"not a Qwen2.5-Math-PRM-style checkpoint: missing parameters score.0.bias"),
    ("skywork_prm", "qwen_prm", r"not a Skywork-o1-Open-PRM-style checkpoint: missing parameters "
                                r"v_head.summary.bias, v_head.summary.weight"),
    ("hf_prm", "skywork_prm", r"not a causal LM PRM checkpoint: missing parameters lm_head.weight"),
    ("rlhflow_prm", "seqcls_orm", r"not a causal LM PRM checkpoint: missing parameters lm_head.weight"),
    ("seqcls_orm", "qwen_prm", r"not a sequence-classification reward checkpoint: missing parameters score.weight"),
])
def test_each_head_refuses_another_layout_naming_the_file(layouts, reward, other, message):
    with pytest.raises(InputError, match=rf"{layouts[other].name}/model.safetensors: {message}"):
        make_reward(reward, make_task("math"), path=str(layouts[other]))


def test_each_head_refuses_a_tokenizer_without_what_its_layout_needs(layouts, tmp_path, tiny_llama):
    import shutil

    chat = shutil.copytree(layouts["rlhflow_prm"], tmp_path / "nochat")
    cfg = json.loads((chat / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (chat / "tokenizer_config.json").write_text(json.dumps(cfg))
    (chat / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(InputError, match=r"nochat/tokenizer_config.json: the tokenizer has no chat template"):
        make_reward("rlhflow_prm", make_task("math"), path=str(chat))
    sky = shutil.copytree(layouts["skywork_prm"], tmp_path / "nobos")
    cfg = json.loads((sky / "tokenizer_config.json").read_text())
    cfg["bos_token"] = None
    (sky / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"nobos/tokenizer_config.json: no bos_token .* set the reward's `bos`"):
        make_reward("skywork_prm", make_task("math"), path=str(sky))
    assert make_reward("skywork_prm", make_task("math"), path=str(sky), bos="<|endoftext|>").bos == "<|endoftext|>"
    with pytest.raises(InputError, match=r"tokenizer.json: reward model step tag 'ки' is not a single token"):
        make_reward("hf_prm", make_task("math"), path=str(tiny_llama(tmp_path / "notag", False)))


@pytest.mark.parametrize("reward", ["qwen_prm", "skywork_prm", "rlhflow_prm", "seqcls_orm", "hf_prm"])
def test_no_head_runs_code_planted_in_its_checkpoint(layouts, tmp_path, heads, reward):
    """``auto_map`` entries in config.json and tokenizer_config.json point at planted modules that would write a
    file and exit: loading and scoring never import them."""
    import shutil

    ckpt = shutil.copytree(layouts[reward], tmp_path / "ckpt")
    marker = tmp_path / "RAN"
    for name in ("modeling_planted.py", "configuration_planted.py", "tokenization_planted.py"):
        (ckpt / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(3)\n")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "configuration_planted.C", "AutoModel": "modeling_planted.M",
                       "AutoModelForCausalLM": "modeling_planted.M",
                       "AutoModelForSequenceClassification": "modeling_planted.M"}
    (ckpt / "config.json").write_text(json.dumps(cfg))
    tok = json.loads((ckpt / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["tokenization_planted.T", None]}
    (ckpt / "tokenizer_config.json").write_text(json.dumps(tok))
    rm = make_reward(reward, make_task("math"), path=str(ckpt))
    assert rm.score(heads.problem, "", [heads.steps])[0].scores
    assert not marker.exists() and not [m for m in sys.modules if m.endswith("_planted")]


def test_rlhflow_prm_reads_plus_where_each_answer_is_predicted(tmp_path, heads):
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = heads.tokenizer(tmp_path, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    model.save_pretrained(tmp_path)
    fast = heads.reloaded(tmp_path)
    prm = make_reward("rlhflow_prm", make_task("arith"), path=str(tmp_path))
    (scored,) = prm.score(heads.problem, "", [heads.steps])
    plus, minus = fast.encode("+", add_special_tokens=False)[0], fast.encode("-", add_special_tokens=False)[0]
    want = []
    for k in range(len(heads.steps)):
        convo = "".join(
            f"<|im_start|>user\n{(heads.problem.question + ' ') if j == 0 else ''}{heads.steps[j].strip()}<|im_end|>\n"
            + ("<|im_start|>assistant\n+<|im_end|>\n" if j < k else "") for j in range(k + 1))
        ids = fast.encode(convo + "<|im_start|>assistant\n", add_special_tokens=False)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        want.append(float(torch.softmax(torch.stack((logits[plus], logits[minus])), 0)[0]))
    assert scored.scores == pytest.approx(want, abs=1e-5)


def test_math_shepherd_prm_reads_the_tag_and_appends_missing_ones(tiny_llama, tmp_path, heads):
    path = tiny_llama(tmp_path / "ms", True)
    prm = make_reward("hf_prm", make_task("arith"), path=str(path))
    steps = ["Step 1: 7+5=12 ки\n", "The answer is 12."]
    (scored,) = prm.score(heads.problem, "7 +5\n", [steps])
    text = heads.problem.question + " " + "Step 1: 7+5=12 ки\n" + "The answer is 12. ки\n"  # the card's layout
    ids = prm.tokenizer.encode(text, add_special_tokens=True)
    with torch.no_grad():
        logits = prm.model(input_ids=torch.tensor([ids])).logits[0]
    tags = [i for i, t in enumerate(ids) if t == prm.tag_id]
    want = [float(torch.softmax(torch.stack((logits[i, prm.good_id], logits[i, prm.bad_id])), 0)[0]) for i in tags]
    assert scored.scores == pytest.approx(want, abs=1e-5)


def test_seqcls_orm_equals_transformers_on_each_sequence_alone(tmp_path, heads):
    from transformers import Qwen2ForSequenceClassification

    fast = heads.tokenizer(tmp_path, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    torch.manual_seed(2)
    cfg = heads.qwen_config(len(fast), num_labels=1, pad_token_id=fast.pad_token_id)
    model = Qwen2ForSequenceClassification(cfg)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    model.save_pretrained(tmp_path)
    fast = heads.reloaded(tmp_path)
    orm = make_reward("seqcls_orm", make_task("arith"), path=str(tmp_path), batch_size=3)
    assert orm.outcome_only
    paths = [heads.steps, heads.steps[:1], heads.steps[:2]]
    got = orm.score(heads.problem, "", paths)
    for steps, scored in zip(paths, got, strict=True):
        text = (f"<|im_start|>user\n{heads.problem.question}<|im_end|>\n<|im_start|>assistant\n{''.join(steps)}"
                "<|im_end|>\n")
        ids = fast.encode(text, add_special_tokens=False)
        with torch.no_grad():
            want = torch.sigmoid(model(input_ids=torch.tensor([ids])).logits[0, 0])
        assert scored.scores == pytest.approx([float(want)], abs=1e-5)
