"""`infscale.records`: one writer per file, fsynced lines, one torn-tail rule, the latest record of a key wins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from infscale.errors import InputError
from infscale.records import RecordWarning, RecordWriter, append_one, latest, read_numbered, read_records


def _lines(path):
    return path.read_bytes().decode().splitlines()


@pytest.mark.parametrize("torn", ['{"key": "c", "v"', '{"key": "c", "v"\n'], ids=["no newline", "with newline"])
def test_torn_last_line_is_skipped_by_readers_and_cut_by_the_writer(tmp_path, torn):
    path = tmp_path / "r.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b"}\n' + torn)
    with pytest.warns(RecordWarning, match="skipped a torn last line"):
        assert [r["key"] for r in read_records(path)] == ["a", "b"]
    with pytest.warns(RecordWarning, match="cut a torn last line"), RecordWriter(path) as w:
        w.append({"key": "c", "v": 1})
    assert _lines(path) == ['{"key": "a"}', '{"key": "b"}', '{"key": "c", "v": 1}']


def test_a_complete_last_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b"}')
    assert [r["key"] for r in read_records(path)] == ["a", "b"]
    append_one(path, {"key": "c"})
    assert _lines(path) == ['{"key": "a"}', '{"key": "b"}', '{"key": "c"}']


def test_a_bad_line_before_the_last_names_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"key": "a"}\n{"key": \n{"key": "c"}\n')
    with pytest.raises(InputError, match=r"r.jsonl:2: not a JSON record"):
        read_records(path)
    with pytest.raises(InputError, match=r"r.jsonl:2: not a JSON record"), RecordWriter(path):
        pass
    path.write_text('[1, 2]\n{"key": "c"}\n')
    with pytest.raises(InputError, match=r"r.jsonl:1: a record must be a JSON object"):
        read_records(path)
    with pytest.raises(InputError, match="no such records file"):
        read_records(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="is a directory"):
        read_records(tmp_path)


def test_line_numbers_skip_blank_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"key": "a"}\n\n{"key": "b"}\n')
    assert [n for n, _ in read_numbered(path)] == [1, 3]


def test_latest_record_of_a_key_wins_in_first_seen_order():
    recs = [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "x", "v": 3}]
    assert latest(recs, key=lambda r: r["k"]) == [{"k": "x", "v": 3}, {"k": "y", "v": 2}]


def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path):
    path = tmp_path / "r.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from infscale.records import RecordWriter
        with RecordWriter({str(path)!r}) as w:
            w.append({{"key": "held"}})
            print("ready", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(InputError) as err, RecordWriter(path):
            pass
        msg = str(err.value)
        assert "\n" not in msg and str(path) in msg and f"pid {holder.pid}" in msg
        # in-process too: a second writer of the same file while the first is open
    finally:
        holder.kill()
        holder.wait()
    with RecordWriter(path) as w:
        with pytest.raises(InputError, match="another writer holds it"), RecordWriter(path):
            pass
        w.append({"key": "after"})
    assert [r["key"] for r in read_records(path)] == ["held", "after"]


def test_kill_9_mid_write_loses_nothing_and_duplicates_nothing(tmp_path):
    """A writer appending 5,000 keyed records is killed; a resumed writer appends the keys not yet there: every key
    ends up exactly once, and every line parses."""
    path = tmp_path / "r.jsonl"
    script = textwrap.dedent(f"""
        from infscale.records import RecordWriter
        with RecordWriter({str(path)!r}) as w:
            done = {{r["key"] for r in w.records()}}
            for i in range(5000):
                if i not in done:
                    w.append({{"key": i, "payload": "x" * 200}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.time() + 60
    while (not path.exists() or path.stat().st_size < 20_000) and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len([line for line in _lines(path) if line.strip()])
    assert 0 < n_before < 5000
    subprocess.run([sys.executable, "-W", "ignore", "-c", script], check=True)
    keys = [json.loads(line)["key"] for line in _lines(path)]
    assert sorted(keys) == list(range(5000))  # nothing lost, nothing written twice
