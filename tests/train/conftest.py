"""Shared fixtures: a small real-text corpus (the first KJV books) and its token cache, built once per session."""

from __future__ import annotations

import pytest

from infscale.train.data import _kjv_documents, prepare_data


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory):
    """A directory of four real text files (~40 kB each, from the KJV package)."""
    root = tmp_path_factory.mktemp("corpus")
    for i, doc in zip(range(4), _kjv_documents(), strict=False):
        (root / f"book{i}.txt").write_text(doc.text[:40_000], encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tokens")


@pytest.fixture(scope="session")
def small_data(text_corpus, token_cache):
    return prepare_data(str(text_corpus), vocab_size=320, val_fraction=0.05, cache_dir=token_cache)


def tiny_config(text_corpus, token_cache, **over):
    """A tiny but real training config on the fixture corpus (runs in about a second)."""
    cfg = {
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "context_length": 32},
        "data": {"corpus": str(text_corpus), "vocab_size": 320, "val_fraction": 0.05, "cache_dir": str(token_cache)},
        "batch_size": 8, "tokens": 8 * 32 * 30, "eval_tokens": 2048, "log_every": 5, "checkpoint_every": 10,
        "threads": 1, "progress": False,
    }
    for k, v in over.items():
        cfg[k] = cfg[k] | v if isinstance(v, dict) and k in cfg else v
    return cfg
