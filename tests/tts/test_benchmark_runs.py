"""`tts run` on the bundled MATH-500-format and GSM8K-format samples with a tiny HF policy and each public reward
head read natively: records carry the problems' groups, the ledger prices the reward model's own shape, `tts analyze`
breaks accuracy down per level and subject, `tts eval-reward` reads the run (its ProcessBench F1 needs step labels,
which MATH-500 does not have: it shows as absent there and is measured on ProcessBench-format files instead)."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, heads, tiny_llama):
    """The policy and one checkpoint per reward head, all tiny and random, saved here."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2ForSequenceClassification

    root = tmp_path_factory.mktemp("bench")
    out = {}
    for name in ("policy", "rlhflow"):
        fast = heads.tokenizer(root / name, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        torch.manual_seed(len(name))
        LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                                     eos_token_id=fast.eos_token_id)).save_pretrained(root / name)
        out[name] = root / name
    heads.save(root / "qwen", "qwen")
    heads.save(root / "skywork", "skywork")
    fast = heads.tokenizer(root / "orm", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    Qwen2ForSequenceClassification(heads.qwen_config(len(fast), num_labels=1, pad_token_id=fast.pad_token_id)
                                   ).save_pretrained(root / "orm")
    out.update(qwen=root / "qwen", skywork=root / "skywork", orm=root / "orm",
               shepherd=tiny_llama(root / "shepherd", True))
    return out


REWARDS = {"qwen_prm": "qwen", "skywork_prm": "skywork", "hf_prm": "shepherd", "rlhflow_prm": "rlhflow",
           "seqcls_orm": "orm"}


def _run(tmp_path, checkpoints, task: dict, reward: str, strategies: list[dict]):
    from infscale.tts.core.config import load_config
    from infscale.workflows.tts_run import run_tts

    cfg = {"run": f"{task['name']}-{reward}", "out_dir": str(tmp_path / "runs"), "task": task,
           "generator": {"name": "hf", "params": {"path": str(checkpoints["policy"]), "batch_size": 8}},
           "reward": {"name": reward, "params": {"path": str(checkpoints[REWARDS[reward]])}},
           "strategies": strategies, "search": {"max_tokens": 24, "max_step_tokens": 12, "depth_cap": 3},
           "max_problems": 5, "threads": 1}
    path = tmp_path / f"{reward}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return run_tts(load_config(path), quiet=True)


@pytest.mark.parametrize("reward", list(REWARDS))
def test_math500_run_with_each_head(tmp_path, checkpoints, reward):
    from infscale.tts.core.record_files import read_run
    from infscale.tts.core.tasks import make_task
    from infscale.workflows.reward_eval import evaluate_runs
    from infscale.workflows.tts_analysis import analyse_runs

    step = reward != "seqcls_orm"  # an outcome model cannot steer a step-by-step search
    strategies = [{"name": "sampling", "budgets": [2]}] + ([{"name": "rebase", "budgets": [2]}] if step else [])
    res = _run(tmp_path, checkpoints, {"name": "math"}, reward, strategies)
    run_dir = tmp_path / "runs" / f"math-{reward}"
    records = read_run(run_dir)
    assert len(records) == 5 * len(strategies) and not [r for r in records if r.error]
    for r in records:
        assert set(r.groups) == {"level", "subject"}
        assert r.ledger.reward_tokens > 0
        assert r.ledger.reward_flops > 0  # priced by the reward's own shape (exactly: the GSM8K test below)
    sampling = [r for r in records if r.strategy == "sampling"]
    assert all(len(c.step_scores) == (1 if reward == "seqcls_orm" else len(make_task("math").split_steps(c.text)))
               for r in sampling for c in r.candidates)
    analysis = analyse_runs([run_dir], tmp_path / "analysis", n_boot=20, plot=False)
    levels = {g.value for g in analysis.by_group if g.key == "level"}
    assert levels and levels <= {"1", "2", "3", "4", "5"} and (tmp_path / "analysis" / "accuracy_by_group.csv").exists()
    (ev,) = evaluate_runs([run_dir])
    assert ev.quality.n_candidates > 0 and ev.quality.processbench is None  # MATH-500 has no step labels
    assert res.to_dict()


def test_gsm8k_run_prices_the_prm_exactly(tmp_path, checkpoints):
    """Each record's reward FLOPs are the PRM shape's prefill FLOPs of the tokens it read, sequence by sequence."""
    from infscale.tts.core.record_files import read_run
    from infscale.tts.core.rewards import make_reward
    from infscale.tts.core.tasks import DATA_DIR, make_task

    task = {"name": "gsm", "params": {"path": str(DATA_DIR / "gsm8k_sample.jsonl")}}
    _run(tmp_path, checkpoints, task, "qwen_prm", [{"name": "sampling", "budgets": [3]}])
    prm = make_reward("qwen_prm", make_task("gsm"), path=str(checkpoints["qwen"]))
    gsm = make_task("gsm", **task["params"])
    problems = {p.problem_id: p for p in gsm.load()}
    for r in read_run(tmp_path / "runs" / "gsm-qwen_prm"):
        p = problems[r.problem_id]
        lengths = [len(prm.encode(p, gsm.prompt(p), gsm.split_steps(c.text))[0]) for c in r.candidates]
        assert r.ledger.reward_tokens == sum(lengths) and r.gold in {"14", "12", "150", "43", "20"}
        assert r.ledger.reward_flops == pytest.approx(sum(prm.shape.flops_prefill(n) for n in lengths))
    assert json.loads((tmp_path / "runs" / "gsm-qwen_prm" / "records.jsonl").read_text().splitlines()[0])["groups"] == {}
