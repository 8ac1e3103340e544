"""No code runs from a checkpoint: every command that loads one refuses a crafted pickle in one line (exit 2), and
the marker its payload would create never appears. `torch.load` is called in one place, with weights_only=True."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

SRC = Path(__file__).resolve().parents[1] / "src"


class _Payload:
    """Unpickling this would create the marker directory (os.makedirs): the code an attacker's checkpoint runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.makedirs, (str(self.marker),))


def _evil(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Payload(marker), "step": 1}, path)
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infscale.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def _refused(res: subprocess.CompletedProcess, path: Path, marker: Path) -> None:
    assert res.returncode == 2, res.stderr[-1500:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(path.name) in lines[0] and "refused" in lines[0], res.stderr[-1500:]
    assert "Traceback" not in res.stderr
    assert not marker.exists(), "the checkpoint's payload ran"


def test_the_payload_runs_under_a_plain_unpickler(tmp_path):
    """Control: the same file loaded the unsafe way does run its code (so the tests below would catch it)."""
    marker = tmp_path / "pwned"
    torch.load(_evil(tmp_path / "ckpt.pt", marker), weights_only=False)
    assert marker.exists()


def test_train_resume_refuses_a_crafted_checkpoint(tmp_path):
    from infscale.train.data import _kjv_documents

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, doc in zip(range(2), _kjv_documents(), strict=False):
        (corpus / f"b{i}.txt").write_text(doc.text[:30_000])
    cfg = {"run_id": "r", "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 16},
           "data": {"corpus": str(corpus), "vocab_size": 300, "val_fraction": 0.05, "cache_dir": str(tmp_path / "c")},
           "batch_size": 4, "eval_tokens": 512, "threads": 1, "progress": False, "tokens": 4 * 16 * 20}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(cfg))
    marker = tmp_path / "pwned"
    ckpt = _evil(tmp_path / "out" / "r" / "ckpt.pt", marker)
    _refused(_cli("train", "t.yaml", "--out", "out", cwd=tmp_path), ckpt, marker)


@pytest.mark.parametrize("where", ["generator", "reward"])
def test_tts_run_refuses_a_crafted_policy_or_prm(tmp_path, where):
    marker = tmp_path / "pwned"
    ckpt = _evil(tmp_path / "evil.pt", marker)
    cfg = {"run": "t", "out_dir": str(tmp_path / "runs"),
           "task": {"name": "arith", "params": {"n_problems": 2, "difficulty": 2}},
           "generator": {"name": "torch", "params": {"checkpoint": str(ckpt)} if where == "generator" else {}},
           "reward": {"name": "torch_prm", "params": {"checkpoint": str(ckpt)} if where == "reward" else {}},
           "strategies": [{"name": "greedy"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    _refused(_cli("tts", "run", "c.yaml", cwd=tmp_path), ckpt, marker)


def test_tts_mini_refuses_a_crafted_checkpoint_in_its_directory(tmp_path):
    recipe = {"name": "tiny", "threads": 1,
              "train": {"context_length": 64, "min_difficulty": 2, "max_difficulty": 2, "batch_size": 8,
                        "warmup_steps": 1},
              "policies": [{"name": f"p{d}", "d_model": d, "n_layers": 1, "n_heads": 2, "max_steps": 2}
                           for d in (16, 24)],
              "task": {"difficulty": 2, "n_problems": 2}, "strategies": [{"name": "greedy"}],
              "search": {"max_tokens": 24, "max_step_tokens": 8, "depth_cap": 3},
              "analysis": {"n_bootstrap": 10, "small_strategy": "greedy+greedy", "large_strategy": "greedy+greedy"}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    marker = tmp_path / "pwned"
    ckpt = _evil(tmp_path / "out" / "models" / "p16.pt", marker)
    _refused(_cli("tts", "mini", "r.yaml", "--out", "out", "--no-plot", cwd=tmp_path), ckpt, marker)


def test_torch_load_is_called_once_and_weights_only():
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                calls.append((path.relative_to(SRC).as_posix(), safe))
    assert calls == [("infscale/train/model.py", True)]
