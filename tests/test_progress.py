"""`infscale.progress`: off a terminal a line per 5% of the work or per interval (with elapsed time and ETA), resumed units that do not
fool the ETA, ``every``, a bar on a terminal, nothing on standard output."""

from __future__ import annotations

import io

from infscale.progress import Progress, format_duration


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_one_line_per_unit_with_eta(progress_lines):
    buf = io.StringIO()
    with Progress("job", 4, "units", stream=buf) as bar:
        for i in range(4):
            bar.advance(note=f"unit {i}")
    text = buf.getvalue()
    assert progress_lines(text, "job") == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "| unit 3" in text and "(100%)" in text


def test_resumed_units_count_but_do_not_set_the_rate(monkeypatch):
    clock = iter([0.0, 10.0, 10.0, 20.0, 20.0])
    monkeypatch.setattr("infscale.progress.time.perf_counter", lambda: next(clock, 20.0))
    bar = Progress("job", 10, "units", stream=io.StringIO())
    bar.__enter__()  # t = 0
    bar.advance(5, resumed=True)  # instant: done by an earlier process
    assert bar.eta_s() != bar.eta_s()  # nan: no unit of this process yet
    bar.advance()  # t = 10 for the line; 1 unit in 10 s
    assert bar.done == 6 and bar.eta_s() == 4 * 20.0  # clock read at 20: 20 s per fresh unit, 4 left


def test_every_prints_each_interval_and_the_last():
    buf = io.StringIO()
    with Progress("train", 7, "steps", every=3, stream=buf) as bar:
        for _ in range(7):
            bar.advance()
    counts = [line.split(":")[1].split()[0] for line in buf.getvalue().splitlines()]
    assert counts == ["3/7", "6/7", "7/7"]


def test_terminal_draws_a_bar_not_lines():
    tty = _Tty()
    with Progress("job", 3, "units", stream=tty) as bar:
        for _ in range(3):
            bar.advance()
    assert "job: 1/3" not in tty.getvalue() and "3/3" in tty.getvalue()


def test_disabled_writes_nothing(capsys):
    with Progress("job", 2, "units", enabled=False) as bar:
        bar.advance()
        bar.note("hello")
    assert capsys.readouterr() == ("", "")


def test_lines_go_to_stderr_not_stdout(capsys):
    with Progress("job", 1, "units") as bar:
        bar.advance()
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("job: 1/1 units (100%)")


def test_format_duration():
    assert format_duration(0) == "0:00" and format_duration(61.4) == "1:01" and format_duration(3725) == "1:02:05"
    assert format_duration(float("nan")) == "?" and format_duration(float("inf")) == "?"


def test_what_a_unit_is_is_said_once(progress_lines):
    buf = io.StringIO()
    with Progress("tts run t", 2, "units", about="a unit: one problem under one strategy at one budget",
                  stream=buf) as bar:
        bar.advance()
        bar.advance()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "tts run t: 2 units (a unit: one problem under one strategy at one budget)"
    assert progress_lines(buf.getvalue(), "tts run t") == [(1, 2), (2, 2)] and "a unit" not in lines[1]


def test_a_pipe_gets_a_line_per_5_percent_not_per_unit():
    """700 quick units (the demo's tts step) off a terminal: 20 lines, the last one the total."""
    buf = io.StringIO()
    with Progress("tts run demo", 700, "units", stream=buf) as bar:
        for _ in range(700):
            bar.advance()
    lines = buf.getvalue().splitlines()
    assert 19 <= len(lines) <= 21 and lines[-1].startswith("tts run demo: 700/700 units (100%)")


def test_slow_units_get_a_line_every_interval(monkeypatch):
    """Between 5% steps (here: no total at all) a line comes once LINE_EVERY_S seconds passed, not per unit."""
    now = [0.0]
    monkeypatch.setattr("infscale.progress.time.perf_counter", lambda: now[0])
    buf = io.StringIO()
    with Progress("sweep", None, "runs", stream=buf) as bar:
        for _ in range(30):
            now[0] += 1.0  # one unit a second
            bar.advance()
    assert [ln.split()[1] for ln in buf.getvalue().splitlines()] == ["10/?", "20/?", "30/?"]
