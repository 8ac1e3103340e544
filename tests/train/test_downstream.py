"""Downstream tasks: word boundaries on bytes, greedy word accuracy, word log-likelihood and the next-line choice against
models whose answers are known (scripted bigram tables, a perfect oracle, a uniform model), the registry's config
errors, and the trainer's record."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from infscale.errors import InputError
from infscale.train.config import parse_train
from infscale.train.downstream import (
    DOWNSTREAM_TASKS,
    ClozeSettings,
    Corpus,
    NextLineSettings,
    build_cloze,
    build_next_line,
    greedy_word_hits,
    metric_directions,
    option_logprobs,
    prepare_tasks,
    run_tasks,
    token_bytes,
    word_logprobs,
)
from infscale.train.trainer import train

from .conftest import tiny_config

# a hand-made vocabulary: 0 is end-of-text
PIECES = [b"", b" the", b" king", b"dom", b".", b" was", b"\n", b" k", b"ing", b" ", b"s"]
#                the  king was the  king dom .  the king .  EOT
STREAM = np.array([1, 2, 5, 1, 2, 3, 4, 1, 2, 4, 0], dtype=np.int64)  # " the king was the kingdom. the king."


def _hand_corpus() -> Corpus:
    return Corpus(STREAM, PIECES, eot=0)


class Table(torch.nn.Module):
    """A deterministic bigram model: after token a it puts logit 20 on ``nxt[a]`` (0 elsewhere)."""

    def __init__(self, nxt: dict[int, int], vocab: int) -> None:
        super().__init__()
        w = torch.zeros(vocab, vocab)
        for a, b in nxt.items():
            w[a, b] = 20.0
        self.w = w

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.w[idx]


class Uniform(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*idx.shape, self.vocab)


class Oracle(torch.nn.Module):
    """Knows the validation stream: each row is placed where its longest prefix occurs in it, and every position
    predicts the stream's next token with logit 40. Rows it cannot place (shorter than ``min_match``) get uniform
    logits."""

    def __init__(self, tokens: np.ndarray, vocab: int, width: int, min_match: int = 8) -> None:
        super().__init__()
        self.tokens, self.vocab, self.min_match = tokens, vocab, min_match
        padded = np.concatenate([tokens, np.full(width + 1, -1)])
        self.windows = np.lib.stride_tricks.sliding_window_view(padded, width + 1)[: len(tokens)]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        out = torch.zeros(B, T, self.vocab)
        for b, row in enumerate(idx.numpy()):
            same = self.windows[:, :T] == row
            match = np.where(same.all(1), T, same.argmin(1))
            start = int(match.argmax())
            if match[start] < self.min_match:
                continue
            nxt = self.windows[start, 1:T + 1]
            t = np.flatnonzero(nxt >= 0)
            out[b, t, nxt[t]] = 40.0
        return out


# ---- word boundaries --------------------------------------------------------------------------------------------------
def test_cloze_targets_are_whole_words_on_bytes():
    corpus = _hand_corpus()
    cs = build_cloze(corpus, ClozeSettings(prompt_tokens=2, min_chars=3, in_context=False), context_length=16)
    # " king" + "dom" is the word "kingdom" (never "king"); the first " king" has no 2-token prompt before it
    assert cs.words == [b"was", b"the", b"kingdom", b"the", b"king"]
    assert [w.tolist() for w in cs.word_tokens] == [[5], [1], [2, 3], [1], [2]]
    assert cs.prompts.tolist() == [[1, 2], [2, 5], [5, 1], [3, 4], [4, 1]]
    long = build_cloze(corpus, ClozeSettings(prompt_tokens=2, min_chars=4, in_context=False), 16)
    assert long.words == [b"kingdom", b"king"]
    # in context: "the" is spelled in its 6-token prompt, "king" only inside "kingdom" (not a whole word)
    ctx = build_cloze(corpus, ClozeSettings(prompt_tokens=6, min_chars=3, in_context=True), 32)
    assert ctx.words == [b"the"]
    # word-ending tokens: everything not starting with a letter (end-of-text included)
    assert sorted(cs.ends.tolist()) == [0, 1, 2, 4, 5, 6, 7, 9]


def test_cloze_prompt_never_crosses_a_document_end():
    stream = np.array([1, 2, 0, 5, 1, 2, 4, 0], dtype=np.int64)  # " the king" EOT " was the king." EOT
    cs = build_cloze(Corpus(stream, PIECES, 0), ClozeSettings(prompt_tokens=2, min_chars=3, in_context=False), 16)
    assert cs.words == [b"king"]  # " was" and " the" would need a prompt reaching back over the end-of-text


def test_cloze_passages_are_evenly_spread_and_deterministic():
    stream = np.tile(np.array([1, 5, 4], dtype=np.int64), 100)  # " the was." x 100: 200 targets
    corpus = Corpus(stream, PIECES, 0)
    a = build_cloze(corpus, ClozeSettings(prompt_tokens=2, min_chars=3, in_context=False, examples=10), 16)
    b = build_cloze(corpus, ClozeSettings(prompt_tokens=2, min_chars=3, in_context=False, examples=10), 16)
    assert len(a) == 10 and np.array_equal(a.prompts, b.prompts) and a.words == b.words


@pytest.mark.parametrize("nxt, hits", [
    # greedy after " the" spells " k"+"ing"+".": "king" is hit through another token split, "kingdom" is missed
    ({1: 7, 7: 8, 8: 4, 2: 5, 5: 1, 4: 1}, [True, True, False, True, True]),
    # " k"+"ing"+"s" spells "kings": not the word "king"
    ({1: 7, 7: 8, 8: 10, 2: 5, 5: 1, 4: 1}, [True, True, False, True, False]),
    # " king"+"dom"+".": "kingdom" is hit, "king" is missed (the word goes on)
    ({1: 2, 2: 3, 3: 4, 5: 1, 4: 1}, [False, True, True, True, False]),
    # end of text straight away: every passage missed
    ({}, [False] * 5),
])
def test_greedy_word_hits_compare_the_spelled_bytes(nxt, hits):
    cs = build_cloze(_hand_corpus(), ClozeSettings(prompt_tokens=2, min_chars=3, in_context=False), 16)
    assert greedy_word_hits(Table(nxt, len(PIECES)), cs, "cpu").tolist() == hits


def test_word_logprob_closed_forms():
    cs = build_cloze(_hand_corpus(), ClozeSettings(prompt_tokens=2, min_chars=3, in_context=False), 16)
    V, n_end = len(PIECES), 8
    # uniform: -w log V for the word's w tokens, log(n_end / V) for the word ending there
    expected = [-len(w) * math.log(V) + math.log(n_end / V) for w in cs.word_tokens]
    assert word_logprobs(Uniform(V), cs, "cpu") == pytest.approx(expected, abs=1e-5)
    # a table: after " the" -> " king" (logit 20), after " king" -> "dom": "kingdom" scores
    # log p(" king" | " the") + log p("dom" | " king") + log p(end | "dom"), all in closed form
    model = Table({1: 2, 2: 3}, V)
    big, small = 20 - math.log(math.exp(20) + V - 1), -math.log(math.exp(20) + V - 1)
    got = word_logprobs(model, cs, "cpu")
    assert got[2] == pytest.approx(big + big + math.log(n_end / V), abs=1e-5)  # after "dom": uniform
    # "king" after " the": the next token is "dom" (a letter) with probability ~1, so ending the word is unlikely
    assert got[4] == pytest.approx(big + small + math.log(n_end), abs=1e-4)


# ---- real text: perfect, uniform, learned -----------------------------------------------------------------------------
def _corpus(small_data) -> Corpus:
    return Corpus.from_token_data(small_data)


def test_token_bytes_match_the_tokenizer(small_data):
    tok = Tokenizer.from_file(str(small_data.directory / "tokenizer.json"))
    pieces = token_bytes(tok)
    assert len(pieces) == tok.get_vocab_size() and pieces[tok.token_to_id("<|endoftext|>")] == b""
    whole = [i for i in range(len(pieces)) if "\ufffd" not in tok.decode([i])]
    assert len(whole) > 150
    assert all(pieces[i] == tok.decode([i]).encode() for i in whole)
    assert sorted(p[0] for p in pieces if len(p) == 1) == list(range(256))  # every byte once (the initial alphabet)
    val = np.asarray(small_data.val[:400]).tolist()
    assert b"".join(pieces[t] for t in val).decode() == tok.decode(val)


def test_perfect_and_uniform_models_on_the_held_out_split(small_data):
    corpus = _corpus(small_data)
    prepared = prepare_tasks({"cloze": ClozeSettings(examples=60).model_dump(),
                              "next_line": NextLineSettings(examples=40, choices=4, line_tokens=8).model_dump()},
                             corpus, context_length=32)
    cs, ns = prepared[0][1], prepared[1][1]
    assert len(cs) > 20 and len(ns) > 20 and ns.prompts.shape[1] == 24 and cs.prompts.shape[1] == 18
    V = corpus.vocab_size
    oracle = Oracle(corpus.tokens, V, width=32)
    perfect, n = run_tasks(oracle, prepared)
    assert perfect["cloze_acc"] == 1.0 and perfect["next_line_acc"] == 1.0
    assert -1e-6 < perfect["cloze_logprob"] <= 0.0
    assert n == {"cloze": len(cs), "next_line": len(ns)}
    uniform, _ = run_tasks(Uniform(V), prepared)
    n_end = len(cs.ends)
    assert uniform["cloze_acc"] == 0.0  # argmax is end-of-text: no word is ever spelled
    assert uniform["cloze_logprob"] == pytest.approx(
        np.mean([-len(w) * math.log(V) + math.log(n_end / V) for w in cs.word_tokens]), abs=1e-4)
    assert uniform["next_line_acc"] == pytest.approx(0.25, abs=1e-12)  # four-way ties: 1/4 each
    # the true opening is one of the options, every option has the planned length and no option repeats
    assert all(np.array_equal(ns.options[q, ns.answer[q]], _true_opening(corpus, ns, q)) for q in range(len(ns)))
    assert all(len({tuple(o) for o in ns.options[q]}) == 4 for q in range(len(ns)))
    # without calibration the oracle wins too (raw log-likelihood)
    raw = option_logprobs(oracle, ns, "cpu")
    assert (raw.argmax(1) == ns.answer).all()


def _true_opening(corpus: Corpus, ns, q: int) -> np.ndarray:
    prompt = ns.prompts[q]
    L = len(prompt)
    for s in range(len(corpus.tokens) - L):
        if np.array_equal(corpus.tokens[s:s + L], prompt):
            return corpus.tokens[s + L:s + L + ns.options.shape[2]]
    raise AssertionError("prompt not found in the split")


def test_calibrated_next_line_ignores_how_common_a_line_is(small_data):
    """A bigram model uses no context beyond the line break, so the calibrated score (minus the options' likelihood
    after the line break alone) ties every option: exactly chance. Uncalibrated, it prefers the commonest opening."""
    corpus = _corpus(small_data)
    ns = build_next_line(corpus, NextLineSettings(examples=40, line_tokens=8), 32)
    train = np.asarray(small_data.train, dtype=np.int64)
    V = corpus.vocab_size
    counts = np.ones((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1)

    class Bigram(torch.nn.Module):
        def forward(self, idx):
            return torch.from_numpy(np.log(counts / counts.sum(1, keepdims=True))).float()[idx]

    calibrated = run_tasks(Bigram(), [(DOWNSTREAM_TASKS["next_line"], ns)])[0]["next_line_acc"]
    assert calibrated == pytest.approx(0.25, abs=1e-12)
    raw = option_logprobs(Bigram(), ns, "cpu")  # uncalibrated the options differ, by how common each opening is
    assert (raw.max(1) - raw.min(1) > 0.5).all()


def test_split_too_small_or_context_too_short_is_an_input_error(small_data):
    corpus = _corpus(small_data)
    with pytest.raises(InputError, match="downstream.cloze: max_chars=40 leaves no room for a prompt in "
                                         "context_length=32"):
        build_cloze(corpus, ClozeSettings(max_chars=40), 32)
    with pytest.raises(InputError, match="downstream.next_line: line_tokens=32 leaves no room"):
        build_next_line(corpus, NextLineSettings(line_tokens=32), 32)
    with pytest.raises(InputError, match="downstream.cloze: the validation split holds no passage"):
        build_cloze(Corpus(STREAM, PIECES, 0), ClozeSettings(prompt_tokens=2, min_chars=8), 16)


# ---- config and registry ----------------------------------------------------------------------------------------------
def test_config_names_tasks_by_registry(text_corpus, token_cache):
    cfg = parse_train(tiny_config(text_corpus, token_cache, downstream=["cloze", "next_line"]))
    assert cfg.downstream == {"cloze": ClozeSettings().model_dump(), "next_line": NextLineSettings().model_dump()}
    cfg = parse_train(tiny_config(text_corpus, token_cache, downstream={"cloze": {"examples": 7}}))
    assert cfg.downstream["cloze"]["examples"] == 7 and cfg.downstream["cloze"]["min_chars"] == 4
    assert metric_directions(cfg.downstream) == {"cloze_acc": True, "cloze_logprob": True}
    assert parse_train(tiny_config(text_corpus, token_cache)).downstream == {}
    with pytest.raises(InputError, match=r"t.yaml: field downstream: .*unknown downstream task 'lambada'; known: cloze, "
                                         r"next_line$"):
        parse_train(tiny_config(text_corpus, token_cache, downstream=["lambada"]), "t.yaml")
    with pytest.raises(InputError, match=r"field downstream: .*next_line: field choices: Input should be greater than or "
                                         r"equal to 2"):
        parse_train(tiny_config(text_corpus, token_cache, downstream={"next_line": {"choices": 1}}))
    with pytest.raises(InputError, match=r"field downstream: .*cloze: field example: Extra inputs are not permitted"):
        parse_train(tiny_config(text_corpus, token_cache, downstream={"cloze": {"example": 3}}))


# ---- the trainer ------------------------------------------------------------------------------------------------------
def test_trainer_scores_the_tasks_into_the_record(text_corpus, token_cache, tmp_path):
    spec = {"cloze": {"examples": 20}, "next_line": {"examples": 20, "line_tokens": 8}}
    cfg = parse_train(tiny_config(text_corpus, token_cache, downstream=spec))
    rec = train(cfg, tmp_path / "run")
    assert set(rec["downstream"]) == {"cloze_acc", "cloze_logprob", "next_line_acc"}
    assert rec["downstream_examples"] == {"cloze": 20, "next_line": 20} and rec["downstream_s"] > 0
    assert 0.0 <= rec["downstream"]["cloze_acc"] <= 1.0 and 0.0 <= rec["downstream"]["next_line_acc"] <= 1.0
    # 30 steps of learning already beat the uniform model's word likelihood by a wide margin
    from infscale.train.data import prepare_data

    data = prepare_data(str(text_corpus), 320, 0.05, token_cache)
    cs = prepare_tasks(cfg.downstream, Corpus.from_token_data(data), 32)[0][1]
    uniform = run_tasks(Uniform(data.vocab_size), [(DOWNSTREAM_TASKS["cloze"], cs)])[0]["cloze_logprob"]
    assert rec["downstream"]["cloze_logprob"] > uniform + 1.0
    final = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["final"] and final["cloze_acc"] == rec["downstream"]["cloze_acc"]
    assert json.loads((tmp_path / "run" / "record.json").read_text())["downstream"] == rec["downstream"]
    assert parse_train(rec["config"]).downstream == cfg.downstream  # the record's config round-trips
    plain = train(parse_train(tiny_config(text_corpus, token_cache)), tmp_path / "plain")
    assert plain["downstream"] == {} and plain["downstream_examples"] == {}


def test_trainer_refuses_impossible_tasks_before_training(text_corpus, token_cache, tmp_path):
    cfg = parse_train(tiny_config(text_corpus, token_cache, downstream={"cloze": {"max_chars": 40}}))
    with pytest.raises(InputError, match="max_chars=40 leaves no room"):
        train(cfg, tmp_path / "never")
    assert not (tmp_path / "never").exists()
