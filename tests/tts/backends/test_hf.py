"""HF backends on a tiny Llama saved locally with `save_pretrained` and a locally trained BPE tokenizer:
generator counts and stop strings, Math-Shepherd-style PRM loading and the missing-step-tag error."""

import pytest

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from infscale.errors import InputError  # noqa: E402
from infscale.tts.core.generation import SamplingParams  # noqa: E402
from infscale.tts.core.tasks import ArithmeticTask  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tiny_llama):
    root = tmp_path_factory.mktemp("hf")
    return tiny_llama(root / "tag", True), tiny_llama(root / "notag", False)


def test_hf_generator_counts_and_stops(tiny_dirs):
    from infscale.tts.backends.hf import HFGenerator

    gen = HFGenerator(str(tiny_dirs[0]), batch_size=3)
    assert gen.shape.n_params == sum(p.numel() for p in gen.model.parameters())
    prompts = ["7 +5 *3\n", "2 -1\nStep 1:"]
    import warnings

    with warnings.catch_warnings(record=True) as seen:  # transformers' deprecations must not reach users
        warnings.simplefilter("always")
        out = gen.generate(prompts, [2, 3], SamplingParams(temperature=1.0, max_tokens=10, logprobs=True), seeds=[1, 2])
    assert not [w for w in seen if "deprecated" in str(w.message)], [str(w.message) for w in seen]
    assert [len(o) for o in out] == [2, 3]
    for prompt, row in zip(prompts, out, strict=True):
        for c in row:
            assert c.prompt_tokens == gen.count_tokens(prompt)
            assert 1 <= c.completion_tokens <= 10 and c.logprob <= 0.0
    # greedy: the stop string cuts the text right after its first occurrence
    full = gen.generate(["7 +5\n"], 1, SamplingParams(temperature=0.0, max_tokens=20))[0][0]
    assert full.finish_reason in ("length", "eos")
    stop = next((ch for ch in full.text if ch.strip()), None)
    if stop is not None:
        cut = gen.generate(["7 +5\n"], 1, SamplingParams(temperature=0.0, max_tokens=20, stop=(stop,)))[0][0]
        assert cut.finish_reason == "stop" and cut.text == full.text[: full.text.index(stop) + 1]


def test_hf_prm_scores_each_step_at_the_tag(tiny_dirs):
    from infscale.tts.backends.hf_rewards import HFPRM

    task = ArithmeticTask(n_problems=2, difficulty=3)
    prm = HFPRM(task, path=str(tiny_dirs[0]))
    p = task.load()[0]
    steps = task.split_steps(task.solution(p))
    (scored,) = prm.score(p, task.prompt(p), [steps])
    assert len(scored.scores) == len(steps) and all(0.0 < s < 1.0 for s in scored.scores)
    # the final step ("The answer is N.") gets its tag, as Math-Shepherd writes every step
    assert scored.n_tokens == len(prm.tokenizer.encode(p.question + " " + "".join(steps) + " ки\n"))
    assert prm.shape.n_params == sum(x.numel() for x in prm.model.parameters())


def test_hf_prm_without_step_tag_is_refused(tiny_dirs):
    from infscale.tts.backends.hf_rewards import HFPRM

    with pytest.raises(InputError, match=r"tokenizer.json: reward model step tag 'ки' is not a single token"):
        HFPRM(path=str(tiny_dirs[1]))


def test_bad_model_paths(tmp_path):
    from infscale.tts.backends.hf import resolve_model_path

    with pytest.raises(InputError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(InputError, match="not installed"):
        resolve_model_path("pkg:surely_not_a_package_xyz")


def test_hf_decode_loop_matches_transformers_greedy(tiny_dirs):
    """Batched, left-padded, prefill shared between a prompt's samples, rows leaving at end-of-sequence: greedy
    tokens equal transformers' own ``generate`` on each prompt alone."""
    import torch

    from infscale.tts.backends.hf import HFGenerator

    gen = HFGenerator(str(tiny_dirs[0]), batch_size=4)
    with torch.no_grad():  # sharpen the random model's attention, so that attending to padding would show
        for layer in gen.model.model.layers:
            layer.self_attn.q_proj.weight.mul_(8.0)
            layer.self_attn.k_proj.weight.mul_(8.0)
    prompts = ["7 +5 *3 -2\n", "2 -1\nStep 1:", "9 *2\n"]
    out = gen.generate(prompts, [2, 1, 2], SamplingParams(temperature=0.0, max_tokens=15))
    eos = gen.tokenizer.eos_token_id
    for prompt, row in zip(prompts, out, strict=True):
        ids = torch.tensor([gen.encode(prompt)])
        with torch.inference_mode():
            ref = gen.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=15, do_sample=False,
                                     pad_token_id=eos)[0, ids.shape[1]:].tolist()
        end = ref.index(eos) + 1 if eos in ref else len(ref)
        text = gen.tokenizer.decode(ref[:end], skip_special_tokens=True)
        for c in row:
            assert (c.text, c.completion_tokens) == (text, end)
            assert c.finish_reason == ("eos" if eos in ref else "length")
