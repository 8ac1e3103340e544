"""The public reward heads read natively (`infscale.tts.backends.hf_rewards`), each on a tiny random-initialised model
of the real architecture class saved with `save_pretrained` under the public checkpoint's parameter names: scores
equal a direct torch computation of the head's formula; a checkpoint with other names, or a tokenizer without the
separator, is refused in one line; a planted ``modeling_*.py`` in the checkpoint directory never runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from infscale.errors import InputError  # noqa: E402
from infscale.tts.core.rewards import make_reward  # noqa: E402
from infscale.tts.core.tasks import Problem, make_task  # noqa: E402

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PROBLEM = Problem(problem_id="p0", question="Natalia sold 48 clips in April and half as many in May. How many?",
                  gold="72")
STEPS = ["In May she sold 48 / 2 = 24 clips.\n\n", "Altogether 48 + 24 = 72.\n\n", "The answer is \\boxed{72}."]

# The names the loader expects, as the public checkpoints write them (model.safetensors.index.json of
# Qwen/Qwen2.5-Math-PRM-7B and Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B): the Qwen2 decoder under `model.`, then
QWEN_PRM_NAMES = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                  "model.layers.0.self_attn.q_proj.bias", "model.layers.0.mlp.gate_proj.weight", "model.norm.weight",
                  "score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias")
SKYWORK_NAMES = ("model.embed_tokens.weight", "model.layers.0.self_attn.o_proj.weight", "model.norm.weight",
                 "v_head.summary.weight", "v_head.summary.bias")


def _tokenizer(path: Path, specials: list[str], chat: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [PROBLEM.question, *STEPS, "Please reason step by step, and put your final answer within \\boxed{}.",
              "+ - ки 0123456789 = / * clips"] * 20
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", *specials],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|endoftext|>",
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>")
    if chat:
        fast.chat_template = CHATML
    fast.save_pretrained(path)
    return fast


def _qwen_config(vocab: int, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, **extra)


class TinyQwenPRM(nn.Module):
    """Qwen2.5-Math-PRM's layout: a Qwen2 decoder and a two-layer classification head named `score`."""

    def __init__(self, config, head: str = "qwen"):
        super().__init__()
        from transformers import Qwen2Model

        self.model = Qwen2Model(config)
        h = config.hidden_size
        if head == "qwen":
            self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))
        else:  # Skywork's value head: v_head.summary
            self.v_head = nn.Module()
            self.v_head.summary = nn.Linear(h, 1)
        for p in self.parameters():  # spread the scores so that parity is not checked on ~0.5 everywhere
            nn.init.normal_(p, std=0.3)


def save_head_checkpoint(path: Path, head: str, rename: dict[str, str] | None = None,
                         specials: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>")):
    """A tiny checkpoint of a public PRM's layout: config.json (architecture and auto_map as the hub's), tokenizer
    files and model.safetensors under the public names (``rename`` maps some to wrong names)."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    fast = _tokenizer(path, list(specials))
    torch.manual_seed(0)
    arch = {"qwen": "Qwen2ForProcessRewardModel", "skywork": "Qwen2ForPrmModel"}[head]
    cfg = _qwen_config(len(fast), architectures=[arch], auto_map={"AutoModel": "modeling_qwen2_rm." + arch})
    model = TinyQwenPRM(cfg, head)
    tensors = {(rename or {}).get(k, k): v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / "model.safetensors"))
    cfg.save_pretrained(path)
    cfg_json = json.loads((path / "config.json").read_text())
    cfg_json["architectures"], cfg_json["auto_map"] = [arch], {"AutoModel": "modeling_qwen2_rm." + arch}
    (path / "config.json").write_text(json.dumps(cfg_json))
    return model, _reloaded(path)


def _reloaded(path: Path):
    """The tokenizer as any loader reads it back (transformers picks its class from the config's model type)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen_prm")
    model, fast = save_head_checkpoint(path, "qwen")
    return path, model, fast


@pytest.fixture(scope="module")
def skywork_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("skywork_prm")
    model, fast = save_head_checkpoint(path, "skywork")
    return path, model, fast


def _direct_hidden(model, ids):
    with torch.no_grad():
        return model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]


def test_qwen_prm_equals_the_direct_computation(qwen_dir):
    path, model, fast = qwen_dir
    task = make_task("math", path=str(Path(__file__).parents[3] / "src/infscale/tts/data/math500_sample.jsonl"))
    prm = make_reward("qwen_prm", task, path=str(path), batch_size=2)
    paths = [STEPS, STEPS[:2], STEPS[:1]]
    got = prm.score(PROBLEM, "ignored prompt", paths)
    for steps, scored in zip(paths, got, strict=True):
        text = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}."
                f"<|im_end|>\n<|im_start|>user\n{PROBLEM.question}<|im_end|>\n<|im_start|>assistant\n"
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


def test_skywork_prm_equals_the_direct_computation(skywork_dir):
    path, model, fast = skywork_dir
    prm = make_reward("skywork_prm", make_task("arith"), path=str(path), batch_size=2)
    paths = [STEPS, STEPS[1:]]
    got = prm.score(PROBLEM, "ignored", paths)
    nl = fast.encode("\n", add_special_tokens=False)[-1]
    for steps, scored in zip(paths, got, strict=True):
        ids = fast.encode("<|endoftext|>" + PROBLEM.question + "\n", add_special_tokens=False)
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


def test_wrong_names_and_missing_separator_are_refused(tmp_path):
    save_head_checkpoint(tmp_path / "renamed", "qwen", rename={"score.2.weight": "classifier.weight"})
    with pytest.raises(InputError, match=r"renamed/model.safetensors: not a Qwen2.5-Math-PRM-style checkpoint: "
                                         r"missing parameters score.2.weight"):
        make_reward("qwen_prm", make_task("arith"), path=str(tmp_path / "renamed"))
    # Skywork's layout read as Qwen's: its head names are missing
    save_head_checkpoint(tmp_path / "sky", "skywork")
    with pytest.raises(InputError, match=r"missing parameters score.0.bias, score.0.weight, score.2.bias"):
        make_reward("qwen_prm", make_task("arith"), path=str(tmp_path / "sky"))
    save_head_checkpoint(tmp_path / "nosep", "qwen", specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"))
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


def test_planted_checkpoint_code_never_runs(tmp_path):
    save_head_checkpoint(tmp_path / "ckpt", "qwen")
    marker = tmp_path / "RAN"
    for name in ("modeling_qwen2_rm.py", "configuration_qwen2.py", "tokenization_qwen2.py"):
        (tmp_path / "ckpt" / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(3)\n")
    tok_cfg = json.loads((tmp_path / "ckpt" / "tokenizer_config.json").read_text())
    tok_cfg["auto_map"] = {"AutoTokenizer": ["tokenization_qwen2.Qwen2Tokenizer", None]}
    (tmp_path / "ckpt" / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    prm = make_reward("qwen_prm", make_task("arith"), path=str(tmp_path / "ckpt"))
    assert len(prm.score(PROBLEM, "", [STEPS])[0].scores) == 3
    assert not marker.exists()
    assert not [m for m in sys.modules if m.startswith(("modeling_qwen2_rm", "tokenization_qwen2"))]


def test_rlhflow_prm_reads_plus_where_each_answer_is_predicted(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = _tokenizer(tmp_path, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    model.save_pretrained(tmp_path)
    fast = _reloaded(tmp_path)
    prm = make_reward("rlhflow_prm", make_task("arith"), path=str(tmp_path))
    (scored,) = prm.score(PROBLEM, "", [STEPS])
    plus, minus = fast.encode("+", add_special_tokens=False)[0], fast.encode("-", add_special_tokens=False)[0]
    want = []
    for k in range(len(STEPS)):
        convo = "".join(
            f"<|im_start|>user\n{(PROBLEM.question + ' ') if j == 0 else ''}{STEPS[j].strip()}<|im_end|>\n"
            + ("<|im_start|>assistant\n+<|im_end|>\n" if j < k else "") for j in range(k + 1))
        ids = fast.encode(convo + "<|im_start|>assistant\n", add_special_tokens=False)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        want.append(float(torch.softmax(torch.stack((logits[plus], logits[minus])), 0)[0]))
    assert scored.scores == pytest.approx(want, abs=1e-5)


def test_math_shepherd_prm_reads_the_tag_and_appends_missing_ones(tiny_llama, tmp_path):
    path = tiny_llama(tmp_path / "ms", True)
    prm = make_reward("hf_prm", make_task("arith"), path=str(path))
    steps = ["Step 1: 7+5=12 ки\n", "The answer is 12."]
    (scored,) = prm.score(PROBLEM, "7 +5\n", [steps])
    ids = prm.tokenizer.encode("7 +5\n" + "Step 1: 7+5=12 ки\n" + "The answer is 12. ки\n", add_special_tokens=True)
    with torch.no_grad():
        logits = prm.model(input_ids=torch.tensor([ids])).logits[0]
    tags = [i for i, t in enumerate(ids) if t == prm.tag_id]
    want = [float(torch.softmax(torch.stack((logits[i, prm.good_id], logits[i, prm.bad_id])), 0)[0]) for i in tags]
    assert scored.scores == pytest.approx(want, abs=1e-5)


def test_seqcls_orm_equals_transformers_on_each_sequence_alone(tmp_path):
    from transformers import Qwen2ForSequenceClassification

    fast = _tokenizer(tmp_path, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    torch.manual_seed(2)
    cfg = _qwen_config(len(fast), num_labels=1, pad_token_id=fast.pad_token_id)
    model = Qwen2ForSequenceClassification(cfg)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    model.save_pretrained(tmp_path)
    fast = _reloaded(tmp_path)
    orm = make_reward("seqcls_orm", make_task("arith"), path=str(tmp_path), batch_size=3)
    assert orm.outcome_only
    paths = [STEPS, STEPS[:1], STEPS[:2]]
    got = orm.score(PROBLEM, "", paths)
    for steps, scored in zip(paths, got, strict=True):
        text = (f"<|im_start|>user\n{PROBLEM.question}<|im_end|>\n<|im_start|>assistant\n{''.join(steps)}"
                "<|im_end|>\n")
        ids = fast.encode(text, add_special_tokens=False)
        with torch.no_grad():
            want = torch.sigmoid(model(input_ids=torch.tensor([ids])).logits[0, 0])
        assert scored.scores == pytest.approx([float(want)], abs=1e-5)
