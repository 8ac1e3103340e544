"""Public reward-model checkpoints read natively: no code from the checkpoint directory is imported or run.

Every head is one registered reward (`infscale.tts.core.rewards.REWARDS`). The decoder is the transformers class
built into the library for the config's ``model_type`` (``Qwen2Model``, ``LlamaForCausalLM``, ...), picked from
transformers' own mappings, never through ``auto_map``; weights are read from safetensors only (a ``.bin`` is a
pickle and is refused); a head's own weights (Qwen's ``score.*``, Skywork's ``v_head.*``) are read by name with
`safetensors.safe_open`. Before any weight is loaded, the checkpoint's parameter names are compared with the names
the head expects (`expected_names`): a checkpoint of another layout is refused in one line naming the file and the
first missing names.

Heads and their input layouts (docs/tts.md, "Bring your own PRM and benchmark", cites each model card):

- ``hf_prm`` (Math-Shepherd, peiyi9979/math-shepherd-mistral-7b-prm): a causal LM; input ``question + " " +
  solution`` with every step ending in the step tag ``ки`` (appended where a step lacks it); step score
  ``softmax([logit(good), logit(bad)])[0]`` read at each tag.
- ``rlhflow_prm`` (RLHFlow/Llama3.1-8B-PRM-*): a causal LM in its chat template; the first user turn is the question
  and the first step, every later step a user turn of its own, each answered by an assistant turn ``+``; step score
  ``softmax([logit('+'), logit('-')])[0]`` read where the assistant's answer to that step is predicted.
- ``qwen_prm`` (Qwen/Qwen2.5-Math-PRM-7B, -72B): ``Qwen2Model`` + ``score`` = Linear(d, d), ReLU, Linear(d, 2);
  chat template with the system prompt below, the question as the user turn, the steps joined and ended by the
  separator ``<extra_0>`` as the assistant turn; step score ``softmax(score(h))[1]`` at each separator.
- ``skywork_prm`` (Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B, -7B): ``Qwen2Model`` + ``v_head.summary`` =
  Linear(d, 1); input ``bos + question + "\\n"`` then each step followed by the step token ``"\\n"``; step score
  ``sigmoid(v_head(h))`` at each step token.
- ``seqcls_orm``: any ``*ForSequenceClassification`` checkpoint of a built-in architecture (an outcome reward
  model such as Skywork-Reward-Llama-3.1-8B): the question as the user turn and the whole solution as the assistant
  turn of the chat template; score ``sigmoid(logit)`` (one label) or ``softmax(logits)[1]`` (two), read at the last
  token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infscale.errors import InputError
from infscale.tts.backends.hf import quiet_transformers, resolve_model_path, shape_from_hf_config
from infscale.tts.core.rewards import BatchedReward, ScoreItem, StepScores, per_item
from infscale.tts.core.tasks import STEP_TAG, Problem, Task

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system prompt of Qwen2.5-Math-PRM's model card usage example."""
_IGNORABLE = ("lm_head.",)
"""Parameters a checkpoint may carry that a head does not read (Skywork's PRM keeps its LM head)."""


# ----- the checkpoint, read without running anything from it ----------------------------------------------------------
def _tensor_files(directory: Path) -> dict[str, Path]:
    """Parameter name -> the safetensors file holding it (one file, or a sharded index)."""
    index = directory / "model.safetensors.index.json"
    if index.exists():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{index}: not a safetensors index (no 'weight_map')") from None
        return {name: directory / file for name, file in weight_map.items()}
    single = directory / "model.safetensors"
    if single.exists():
        from safetensors import safe_open  # lazy: safetensors

        with safe_open(str(single), framework="pt") as fh:
            return dict.fromkeys(fh.keys(), single)
    if any(directory.glob("*.bin")) or any(directory.glob("*.pt")):
        raise InputError(f"{directory}: weights only as .bin/.pt (pickles, which can run code): infscale reads "
                         "safetensors only (convert them with safetensors' convert script)")
    raise InputError(f"{directory}: no model.safetensors or model.safetensors.index.json")


def _config(directory: Path) -> Any:
    """The config of the built-in transformers class for the checkpoint's ``model_type`` (``auto_map`` ignored)."""
    from transformers import CONFIG_MAPPING, AutoConfig  # lazy: transformers

    path = directory / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the model config ({exc.__class__.__name__})") from None
    model_type = raw.pop("model_type", None)
    if model_type not in CONFIG_MAPPING:
        raise InputError(f"{path}: model_type {model_type!r} is not an architecture built into transformers "
                         "(infscale never runs a checkpoint's own code)")
    raw.pop("auto_map", None)
    return AutoConfig.for_model(model_type, **raw)


def _model_class(config: Any, mapping: str, path: Path) -> type:
    from transformers.models.auto import modeling_auto  # lazy: transformers

    table = getattr(modeling_auto, mapping)
    try:
        return table[type(config)]
    except KeyError:
        raise InputError(f"{path}/config.json: no built-in {mapping.removeprefix('MODEL_FOR_').removesuffix('_MAPPING')}"
                         f" class for model_type {config.model_type!r}") from None


def expected_names(config: Any, model_class: type, prefix: str = "", head: Sequence[str] = ()) -> set[str]:
    """The parameter names a checkpoint must hold: ``model_class``'s state dict (built on the meta device, nothing
    allocated) under ``prefix``, plus the head's own names."""
    import torch  # lazy: torch

    with torch.device("meta"):
        model = model_class(config)
    names = {prefix + k for k in model.state_dict()}
    if getattr(config, "tie_word_embeddings", False):
        names.discard("lm_head.weight")
    return names | set(head)


def check_names(directory: Path, files: dict[str, Path], expected: set[str], what: str) -> None:
    """Refuse, in one line naming the file, a checkpoint missing names the head reads or holding names it would
    silently drop."""
    have = set(files)
    missing = sorted(expected - have)
    source = next(iter(files.values()), directory / "model.safetensors")
    where = directory / "model.safetensors.index.json" if (directory / "model.safetensors.index.json").exists() \
        else source
    if missing:
        shown = ", ".join(missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
        raise InputError(f"{where}: not a {what} checkpoint: missing parameters {shown}")
    extra = sorted(n for n in have - expected if not n.startswith(_IGNORABLE))
    if extra:
        shown = ", ".join(extra[:3]) + (f" (+{len(extra) - 3} more)" if len(extra) > 3 else "")
        raise InputError(f"{where}: not a {what} checkpoint: unexpected parameters {shown}")


def load_native(path: str, mapping: str, what: str, head: Sequence[str] = (), prefix: str = "",
                device: str = "cpu", dtype: str = "float32",
                weights: bool = True) -> tuple[Any, Any, dict[str, Any], Any]:
    """(model, tokenizer, the head's tensors by name, config) of a local checkpoint, read natively; without
    ``weights``, the model and head are ``None`` (a served copy's layout needs only the tokenizer and config)."""
    import torch  # lazy: torch
    from transformers import AutoTokenizer  # lazy: transformers

    directory, gguf = resolve_model_path(path)
    if gguf:
        raise InputError(f"{path}: {what} heads read safetensors checkpoints, not GGUF")
    config = _config(directory)
    cls = _model_class(config, mapping, directory)
    files = _tensor_files(directory) if weights else {}
    if weights:
        check_names(directory, files, expected_names(config, cls, prefix, head), what)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"{directory}: cannot read the tokenizer ({str(exc).splitlines()[0]})") from None
    if not weights:
        return None, tokenizer, {}, config
    with quiet_transformers():  # the names were checked above: its load report would list the head's as unused
        model = cls.from_pretrained(directory, config=config, dtype=getattr(torch, dtype), local_files_only=True,
                                    use_safetensors=True)
    tensors: dict[str, Any] = {}
    if head:
        from safetensors import safe_open  # lazy: safetensors

        for name in head:
            with safe_open(str(files[name]), framework="pt") as fh:
                tensors[name] = fh.get_tensor(name).to(device=device, dtype=getattr(torch, dtype))
    return model.to(device).eval(), tokenizer, tensors, config


def _single_token(tokenizer: Any, text: str, where: str, what: str) -> int:
    """The id of ``text`` when the tokenizer writes it as one token (with or without a leading space), else
    `InputError` naming ``where``."""
    plain = tokenizer.encode(text, add_special_tokens=False)
    spaced = tokenizer.encode(f" {text}", add_special_tokens=False)
    for cand in (plain, spaced[-1:] if spaced else []):
        if len(cand) == 1 and tokenizer.decode(cand).strip() == text:
            return int(cand[0])
    raise InputError(f"{where}: {what} {text!r} is not a single token of the tokenizer (it encodes as "
                     f"{len(plain)} tokens)")


# ----- the shared scoring loop --------------------------------------------------------------------------------
class HeadReward(BatchedReward):
    """Batch every (question, steps) of every problem through the decoder, read each step's score at its position."""

    name = ""
    outcome = False
    batch_size = 8
    shape: Any

    @property
    def outcome_only(self) -> bool:
        return self.outcome

    def encode(self, problem: Problem, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Token ids and the position of each step's score (one position for an outcome model)."""
        raise NotImplementedError

    def scores_at(self, ids: Any, mask: Any, positions: list[list[int]]) -> list[list[float]]:
        """Scores at ``positions`` of each row of a right-padded batch."""
        raise NotImplementedError

    def score_many(self, items: Sequence[ScoreItem]) -> list[list[StepScores]]:
        import torch  # lazy: torch

        encoded = [self.encode(problem, prompt, steps) for problem, prompt, paths in items for steps in paths]
        out: list[StepScores] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start:start + self.batch_size]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (x, _) in enumerate(chunk):
                ids[r, :len(x)] = torch.tensor(x)
                mask[r, :len(x)] = 1
            with torch.inference_mode():
                values = self.scores_at(ids.to(device), mask.to(device), [pos for _, pos in chunk])
            out.extend(StepScores(scores=tuple(v), n_tokens=len(x)) for (x, _), v in zip(chunk, values, strict=True))
        return per_item(out, items)

    def hidden(self, ids: Any, mask: Any) -> Any:
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()


def _shape(config: Any) -> Any:
    return shape_from_hf_config(config)


def _chat(tokenizer: Any, messages: list[dict[str, str]], where: str, generation_prompt: bool = False) -> list[int]:
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{where}: the tokenizer has no chat template (tokenizer_config.json 'chat_template')")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return list(tokenizer.encode(text, add_special_tokens=False))


# ----- Math-Shepherd and RLHFlow: a causal LM's label tokens --------------------------------------------------
class HFPRM(HeadReward):
    """Math-Shepherd: P(good) at every step tag (``good_token``/``bad_token``: ``+``/``-``); ``step_tag`` must be a
    single token of the vocabulary. A step without its tag gets one appended, so any task's steps can be scored."""

    name = "hf_prm"

    def __init__(self, task: Task | None = None, path: str = "", step_tag: str = STEP_TAG, good_token: str = "+",
                 bad_token: str = "-", device: str = "cpu", dtype: str = "float32", batch_size: int = 8) -> None:
        self._load_lm(path, good_token, bad_token, device, dtype, batch_size)
        self.step_tag = step_tag
        self.tag_id = _single_token(self.tokenizer, step_tag, f"{path}/tokenizer.json", "reward model step tag")

    def _load_lm(self, path: str, good_token: str, bad_token: str, device: str, dtype: str, batch_size: int) -> None:
        """The causal LM, its tokenizer and the ids of the label tokens whose logits the score reads."""
        self.path, self.batch_size, self.good_token = path, batch_size, good_token
        self.model, self.tokenizer, _, config = load_native(path, "MODEL_FOR_CAUSAL_LM_MAPPING", "causal LM PRM",
                                                            device=device, dtype=dtype)
        self.shape = _shape(config)
        where = f"{path}/tokenizer.json"
        self.good_id = _single_token(self.tokenizer, good_token, where, "reward model good token")
        self.bad_id = _single_token(self.tokenizer, bad_token, where, "reward model bad token")

    def encode(self, problem: Problem, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        solution = "".join(s if STEP_TAG in s or self.step_tag in s else s.rstrip("\n") + f" {self.step_tag}\n"
                           for s in steps)
        text = f"{problem.question} {solution}"  # the model card's input: question, a space, the tagged steps
        ids = list(self.tokenizer.encode(text, add_special_tokens=True))
        pos = [i for i, t in enumerate(ids) if t == self.tag_id]
        if len(pos) < len(steps):
            pos.append(len(ids) - 1)
        if self.outcome:
            return ids, [len(ids) - 1]
        return ids, pos[-len(steps):] if steps else []

    def scores_at(self, ids: Any, mask: Any, positions: list[list[int]]) -> list[list[float]]:
        import torch  # lazy: torch

        logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
        two = torch.stack((logits[..., self.good_id], logits[..., self.bad_id]), -1)
        p = torch.softmax(two, -1)[..., 0]
        return [[float(p[r, i]) for i in pos] for r, pos in enumerate(positions)]


class HFORM(HFPRM):
    """A Math-Shepherd PRM read once, at the end of the solution."""

    name = "hf_orm"
    outcome = True


class RLHFlowPRM(HFPRM):
    """RLHFlow's chat-format PRM: each step a user turn answered ``+``/``-``; P(+) where the answer is predicted."""

    name = "rlhflow_prm"

    def __init__(self, task: Task | None = None, path: str = "", good_token: str = "+", bad_token: str = "-",
                 device: str = "cpu", dtype: str = "float32", batch_size: int = 8) -> None:
        self._load_lm(path, good_token, bad_token, device, dtype, batch_size)
        _chat(self.tokenizer, [{"role": "user", "content": "1"}], f"{path}/tokenizer_config.json")

    def encode(self, problem: Problem, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        where = f"{self.path}/tokenizer_config.json"
        turns: list[dict[str, str]] = []
        positions = []
        for k, step in enumerate(steps):
            text = step.strip()
            turns.append({"role": "user", "content": f"{problem.question} {text}" if k == 0 else text})
            asked = _chat(self.tokenizer, turns, where, generation_prompt=True)
            positions.append(len(asked) - 1)
            turns.append({"role": "assistant", "content": self.good_token})
        ids = _chat(self.tokenizer, turns, where) if turns else []
        if turns and ids[:len(asked)] != asked:
            raise InputError(f"{where}: the chat template renders a conversation differently from its prefix, so a "
                             "step's answer position cannot be located")
        return ids, positions


# ----- Qwen2.5-Math-PRM: a two-layer classification head at each separator ----------------------------------------
QWEN_HEAD = ("score.0.weight", "score.0.bias", "score.2.weight", "score.2.bias")


class QwenPRM(HeadReward):
    """Qwen2.5-Math-PRM: ``softmax(W2 relu(W0 h + b0) + b2)[1]`` at every ``<extra_0>`` separator."""

    name = "qwen_prm"

    def __init__(self, task: Task | None = None, path: str = "", separator: str = "<extra_0>",
                 system: str = QWEN_SYSTEM, device: str = "cpu", dtype: str = "float32", batch_size: int = 8) -> None:
        self._setup(path, separator, system, device, dtype, batch_size, weights=True)

    @classmethod
    def layout(cls, path: str, separator: str = "<extra_0>", system: str = QWEN_SYSTEM) -> QwenPRM:
        """The head's input layout (tokenizer, separator, positions) without its weights: what a served copy of the
        checkpoint needs to encode requests and read the scores back."""
        self = cls.__new__(cls)
        self._setup(path, separator, system, "cpu", "float32", 1, weights=False)
        return self

    def _setup(self, path: str, separator: str, system: str, device: str, dtype: str, batch_size: int,
               weights: bool) -> None:
        self.path, self.batch_size, self.system, self.separator = path, batch_size, system, separator
        self.model, self.tokenizer, self.head, config = load_native(
            path, "MODEL_MAPPING", "Qwen2.5-Math-PRM-style", QWEN_HEAD, "model.", device, dtype, weights)
        self.shape = _shape(config)
        self.sep_id = _single_token(self.tokenizer, separator, f"{path}/tokenizer.json", "PRM separator token")
        _chat(self.tokenizer, [{"role": "user", "content": "1"}], f"{path}/tokenizer_config.json")

    def encode(self, problem: Problem, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        body = "".join(s.replace(self.separator, "").strip() + self.separator for s in steps)
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": problem.question},
                    {"role": "assistant", "content": body}]
        ids = _chat(self.tokenizer, messages, f"{self.path}/tokenizer_config.json")
        return ids, [i for i, t in enumerate(ids) if t == self.sep_id]

    def scores_at(self, ids: Any, mask: Any, positions: list[list[int]]) -> list[list[float]]:
        import torch  # lazy: torch

        h = self.hidden(ids, mask)
        w = self.head
        z = torch.relu(h @ w["score.0.weight"].float().T + w["score.0.bias"].float())
        p = torch.softmax(z @ w["score.2.weight"].float().T + w["score.2.bias"].float(), -1)[..., 1]
        return [[float(p[r, i]) for i in pos] for r, pos in enumerate(positions)]


# ----- Skywork-o1-Open-PRM: a scalar value head at each step's last token ----------------------------------------
SKYWORK_HEAD = ("v_head.summary.weight", "v_head.summary.bias")


class SkyworkPRM(HeadReward):
    """Skywork-o1-Open-PRM: ``sigmoid(w . h + b)`` at the step token ending every step."""

    name = "skywork_prm"

    def __init__(self, task: Task | None = None, path: str = "", step_token: str = "\n", bos: str | None = None,
                 device: str = "cpu", dtype: str = "float32", batch_size: int = 8) -> None:
        self.path, self.batch_size, self.step_token = path, batch_size, step_token
        self.model, self.tokenizer, self.head, config = load_native(
            path, "MODEL_MAPPING", "Skywork-o1-Open-PRM-style", SKYWORK_HEAD, "model.", device, dtype)
        self.shape = _shape(config)
        self.bos = bos if bos is not None else self.tokenizer.bos_token
        if self.bos is None:
            raise InputError(f"{path}/tokenizer_config.json: no bos_token (the value-head PRM's input starts with it): "
                             "set the reward's `bos` to the text the model was trained with")
        self.step_id = int(self.tokenizer.encode(step_token, add_special_tokens=False)[-1])

    def encode(self, problem: Problem, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        ids = list(tok.encode(self.bos + problem.question + "\n", add_special_tokens=False))
        positions = []
        for step in steps:
            ids += list(tok.encode(step.strip(self.step_token), add_special_tokens=False)) + [self.step_id]
            positions.append(len(ids) - 1)
        return ids, positions

    def scores_at(self, ids: Any, mask: Any, positions: list[list[int]]) -> list[list[float]]:
        import torch  # lazy: torch

        h = self.hidden(ids, mask)
        v = h @ self.head["v_head.summary.weight"].float().T + self.head["v_head.summary.bias"].float()
        p = torch.sigmoid(v[..., 0])
        return [[float(p[r, i]) for i in pos] for r, pos in enumerate(positions)]


# ----- outcome reward models: transformers' own sequence-classification classes --------------------------------
class SeqClsORM(HeadReward):
    """An outcome reward model: the checkpoint's ``*ForSequenceClassification`` head at the last token."""

    name = "seqcls_orm"
    outcome = True

    def __init__(self, task: Task | None = None, path: str = "", device: str = "cpu", dtype: str = "float32",
                 batch_size: int = 8) -> None:
        self.path, self.batch_size = path, batch_size
        self.seqcls, self.tokenizer, _, config = load_native(
            path, "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING", "sequence-classification reward", device=device,
            dtype=dtype)
        self.model = self.seqcls.base_model
        self.labels = int(config.num_labels)
        if self.labels not in (1, 2):
            raise InputError(f"{path}/config.json: an outcome reward model has 1 or 2 labels, got {self.labels}")
        self.shape = _shape(config)

    def encode(self, problem: Problem, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        solution = "".join(steps)
        if getattr(self.tokenizer, "chat_template", None):
            ids = _chat(self.tokenizer, [{"role": "user", "content": problem.question},
                                         {"role": "assistant", "content": solution}], self.path)
        else:
            ids = list(self.tokenizer.encode(prompt + solution, add_special_tokens=True))
        return ids, [len(ids) - 1]

    def scores_at(self, ids: Any, mask: Any, positions: list[list[int]]) -> list[list[float]]:
        import torch  # lazy: torch

        logits = self.seqcls.score(self.hidden(ids, mask).to(self.seqcls.score.weight.dtype)).float()
        p = torch.sigmoid(logits[..., 0]) if self.labels == 1 else torch.softmax(logits, -1)[..., 1]
        return [[float(p[r, i]) for i in pos] for r, pos in enumerate(positions)]

