"""Shared helpers for the tts tests: a tiny HF Llama with a locally trained BPE tokenizer, saved with
`save_pretrained` (the real loading code is exercised; nothing is downloaded)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from infscale.tts.core.tasks import Problem


def save_tiny_llama(path: Path, with_tag: bool = True, hidden: int = 32, heads: int = 4, kv_heads: int = 2,
                    vocab: int = 300, words: tuple[str, ...] = ()) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from infscale.tts.core.tasks import ArithmeticTask

    corpus = [ArithmeticTask.solution(p) for p in ArithmeticTask(n_problems=200, difficulty=3).load()]
    if not with_tag:
        corpus = [t.replace("ки", "") for t in corpus]
    corpus += [" ".join(words)] * 50 if words else []
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<s>", "</s>"] + (["ки"] if with_tag else [])
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab, special_tokens=special,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama():
    """The `save_tiny_llama` function, for tests that need a local HF model directory."""
    return save_tiny_llama


# ----- tiny checkpoints of public reward-model layouts (tests/tts/backends/test_hf_rewards.py) -------------------------
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PROBLEM = Problem(problem_id="p0", question="Natalia sold 48 clips in April and half as many in May. How many?",
                  gold="72")
STEPS = ["In May she sold 48 / 2 = 24 clips.\n\n", "Altogether 48 + 24 = 72.\n\n", "The answer is \\boxed{72}."]

def head_tokenizer(path: Path, specials: list[str], chat: bool = True):
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


def qwen_config(vocab: int, hidden: int = 32, heads: int = 4, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                       num_attention_heads=heads, num_key_value_heads=2, max_position_embeddings=512, **extra)


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
                         specials: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"),
                         hidden: int = 32, heads: int = 4):
    """A tiny checkpoint of a public PRM's layout: config.json (architecture and auto_map as the hub's), tokenizer
    files and model.safetensors under the public names (``rename`` maps some to wrong names)."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    fast = head_tokenizer(path, list(specials))
    torch.manual_seed(0)
    arch = {"qwen": "Qwen2ForProcessRewardModel", "skywork": "Qwen2ForPrmModel"}[head]
    cfg = qwen_config(len(fast), hidden, heads, architectures=[arch],
                       auto_map={"AutoModel": "modeling_qwen2_rm." + arch})
    model = TinyQwenPRM(cfg, head)
    tensors = {(rename or {}).get(k, k): v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / "model.safetensors"))
    cfg.save_pretrained(path)
    cfg_json = json.loads((path / "config.json").read_text())
    cfg_json["architectures"], cfg_json["auto_map"] = [arch], {"AutoModel": "modeling_qwen2_rm." + arch}
    (path / "config.json").write_text(json.dumps(cfg_json))
    return model, reloaded_tokenizer(path)


def reloaded_tokenizer(path: Path):
    """The tokenizer as any loader reads it back (transformers picks its class from the config's model type)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)



@pytest.fixture(scope="session")
def heads():
    """The reward-head helpers: ``save`` (a tiny Qwen2.5-Math-PRM or Skywork-PRM layout checkpoint), ``tokenizer``,
    ``qwen_config``, ``reloaded`` and the sample ``problem`` / ``steps``."""
    return SimpleNamespace(save=save_head_checkpoint, tokenizer=head_tokenizer, qwen_config=qwen_config,
                           reloaded=reloaded_tokenizer, problem=PROBLEM, steps=STEPS, chatml=CHATML)


@contextmanager
def _vllm_serve(vllm_python: str, model_dir: Path, name: str, *args: str) -> Iterator[str]:
    """``vllm serve`` of ``model_dir`` on a free loopback port (its own venv's python), waited for; yields the /v1 URL
    and stops it after."""
    import os
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2"}
    log_path = model_dir / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--host",
             "127.0.0.1", "--port", str(port), "--max-model-len", "512", "--dtype", "float32", "--enforce-eager",
             "--served-model-name", name, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.time() + 300
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"vllm serve exited: {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                        if json.loads(r.read())["data"]:
                            break
                except OSError:
                    if time.time() > deadline:
                        pytest.fail("vllm serve did not come up in 300 s")
                    time.sleep(2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=60)


@pytest.fixture(scope="session")
def vllm_serve():
    """The `_vllm_serve` context manager: ``with vllm_serve(python, model_dir, name, *args) as url``."""
    return _vllm_serve
