"""HF backends on a tiny Llama saved locally with `save_pretrained` and a locally trained BPE tokenizer:
generator counts and stop strings, Math-Shepherd-style PRM loading and the missing-step-tag error."""

import pytest

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from infscale.errors import InputError  # noqa: E402
from infscale.tts.generation import SamplingParams  # noqa: E402
from infscale.tts.tasks import ArithmeticTask  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tiny_llama):
    root = tmp_path_factory.mktemp("hf")
    return tiny_llama(root / "tag", True), tiny_llama(root / "notag", False)


def test_hf_generator_counts_and_stops(tiny_dirs):
    from infscale.tts.hf_generator import HFGenerator

    gen = HFGenerator(str(tiny_dirs[0]), batch_size=3)
    assert gen.shape.n_params == sum(p.numel() for p in gen.model.parameters())
    prompts = ["7 +5 *3\n", "2 -1\nStep 1:"]
    out = gen.generate(prompts, [2, 3], SamplingParams(temperature=1.0, max_tokens=10, logprobs=True, seed=1))
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
    from infscale.tts.rewards import HFPRM

    task = ArithmeticTask(n_problems=2, difficulty=3)
    prm = HFPRM(task, path=str(tiny_dirs[0]))
    p = task.load()[0]
    steps = task.split_steps(task.solution(p))
    (scored,) = prm.score(p, task.prompt(p), [steps])
    assert len(scored.scores) == len(steps) and all(0.0 < s < 1.0 for s in scored.scores)
    assert scored.n_tokens == len(prm.tokenizer.encode(task.prompt(p) + "".join(steps)))
    assert prm.shape.n_params == sum(x.numel() for x in prm.model.parameters())


def test_hf_prm_without_step_tag_is_refused(tiny_dirs):
    from infscale.tts.rewards import HFPRM

    with pytest.raises(InputError, match=r"step tag 'ки' is not a single token"):
        HFPRM(path=str(tiny_dirs[1]))


def test_bad_model_paths(tmp_path):
    from infscale.tts.hf_generator import resolve_model_path

    with pytest.raises(InputError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(InputError, match="not installed"):
        resolve_model_path("pkg:surely_not_a_package_xyz")
