"""Docs that stand alone: every Markdown document a file of the repository cites (``name.md`` in source, tests,
docs, recipes) exists in the repository: relative to the citing file, the repository root or docs/, or as a file of
the repository whose path ends with the cited one (``SOURCE.md`` beside a bundled dataset)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITE = re.compile(r"(?<![\w/.:-])((?:\.\./)*[\w][\w./-]*\.md)\b")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg"}


def tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.splitlines() if Path(p).suffix in SUFFIXES]


def missing_citations(files: list[Path], root: Path) -> list[str]:
    known = [p.relative_to(root).as_posix() for p in files]
    bad = []
    for path in files:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in CITE.finditer(text):
            name = m.group(1).rstrip(".")
            if "://" in text[max(0, m.start() - 40):m.start()]:
                continue  # part of a URL
            where = [path.parent / name, root / name, root / "docs" / name]
            bare = name.lstrip("./")
            if not any(p.exists() for p in where) and not any(k == bare or k.endswith("/" + bare) for k in known):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{path.relative_to(root)}:{line}: {name}")
    return bad


def test_no_file_cites_a_document_that_is_not_in_the_repository():
    files = tracked()
    scanned = [p for p in files if p.resolve() != Path(__file__).resolve()]  # this file's examples are not citations
    assert missing_citations(scanned, ROOT) == [] and len(scanned) > 100


def test_the_check_finds_a_missing_citation(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.md").write_text("see there.md and here.md\n")
    (tmp_path / "a.py").write_text('"""formulas: REFERENCE.md section 1; docs/here.md"""\n')
    bad = missing_citations([tmp_path / "docs" / "here.md", tmp_path / "a.py"], tmp_path)
    assert bad == ["docs/here.md:1: there.md", "a.py:1: REFERENCE.md"]
