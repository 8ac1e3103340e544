"""Corpus reading, the byte-level BPE tokenizer, token shards, the cache and batch sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infscale.errors import InputError
from infscale.train.data import EOT, batch_at, open_token_data, prepare_data, read_corpus


def test_shards_hold_every_document_with_val_tail(text_corpus, small_data):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(small_data.directory / "tokenizer.json"))
    assert tok.get_vocab_size() == small_data.vocab_size == 320
    texts = [p.read_text() for p in sorted(text_corpus.glob("*.txt"))]
    lengths = [len(tok.encode(t).ids) + 1 for t in texts]  # + EOT
    assert small_data.n_train_tokens + small_data.n_val_tokens == sum(lengths)
    assert small_data.n_val_tokens == sum(round(n * 0.05) for n in lengths)
    assert small_data.train.dtype == np.uint16
    # the val split is the tail of each document: the first document's tail decodes to its last words
    n0 = lengths[0]
    tail = small_data.val[: round(n0 * 0.05)]
    assert tail[-1] == tok.token_to_id(EOT)
    assert texts[0].endswith(tok.decode(tail[:-1].tolist()))
    # byte-level BPE round-trips arbitrary text, bytes outside the corpus included
    sample = "In the beginning — ünïcödé ✓\n"
    assert tok.decode(tok.encode(sample).ids) == sample


def test_cache_is_reused_and_keyed_by_content(text_corpus, token_cache, small_data, tmp_path):
    again = prepare_data(str(text_corpus), vocab_size=320, val_fraction=0.05, cache_dir=token_cache)
    assert again.directory == small_data.directory and again.corpus_hash == small_data.corpus_hash
    np.testing.assert_array_equal(np.asarray(again.train), np.asarray(small_data.train))
    opened = open_token_data(small_data.directory)
    assert opened.n_val_tokens == small_data.n_val_tokens
    other = tmp_path / "c.txt"
    other.write_text((text_corpus / "book0.txt").read_text() + " changed")
    assert prepare_data(str(other), 320, 0.05, cache_dir=token_cache).corpus_hash != small_data.corpus_hash


def test_damaged_cache_is_reported(small_data, tmp_path):
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(small_data.directory, copy)
    (copy / "train.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(InputError, match="train.bin"):
        open_token_data(copy)


def test_batches_are_deterministic_windows(small_data):
    x, y = batch_at(small_data.train, 4, 16, seed=3, step=7)
    x2, y2 = batch_at(small_data.train, 4, 16, seed=3, step=7)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    assert x.shape == (4, 16) and x.dtype == np.int64
    x3, _ = batch_at(small_data.train, 4, 16, seed=3, step=8)
    assert not np.array_equal(x, x3)
    x4, _ = batch_at(small_data.train, 4, 16, seed=3, step=7, rank=1)
    assert not np.array_equal(x, x4)


def test_default_corpus_has_the_kjv_books():
    docs = read_corpus("default")
    kjv = [d for d in docs if d.source.startswith("kjv:")]
    assert len(kjv) == 66  # 39 + 27 books
    assert kjv[0].text.startswith("The First Book of Moses, called Genesis\n\nIn the beginning God created")


def test_jsonl_meta_written(small_data):
    meta = json.loads((small_data.directory / "meta.json").read_text())
    assert meta["n_documents"] == 4 and meta["vocab_size"] == 320


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty"), (b"   \n\n  ", "empty"), (b"abc\x00def", "NUL byte at offset 3"), (b"ok \xff\xfe bad", "UTF-8 at byte 3")],
)
def test_bad_corpus_file(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        prepare_data(str(path), 320, 0.05, cache_dir=tmp_path / "c")
    assert "\n" not in str(err.value)


def test_missing_and_empty_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_corpus(str(tmp_path / "nope.txt"))
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="holds no"):
        read_corpus(str(tmp_path / "d"))


def test_vocab_too_small(text_corpus, tmp_path):
    with pytest.raises(InputError, match="vocab_size"):
        prepare_data(str(text_corpus), 100, 0.05, cache_dir=tmp_path)
