"""The one exit-code rule (`infscale.errors`): bad input is exit 2, a run that failed after starting exit 1, each one
line on stderr; results alone on stdout."""

from __future__ import annotations

import pytest

from infscale.cli import main as cli_main
from infscale.errors import InfeasibleError, InputError, RunFailed
from infscale.tts.backends.endpoints import EndpointsDownError


@pytest.mark.parametrize(("exc", "code"), [(InputError("runs.csv row 3: field loss: not a number"), 2),
                                           (InfeasibleError("no shape under 2 s"), 2),
                                           (RunFailed("2 of 12 problems failed"), 1),
                                           (EndpointsDownError("every endpoint is down"), 1)])
def test_each_failure_kind_has_one_exit_code_and_one_line(monkeypatch, capsys, exc, code):
    def app():
        raise exc

    monkeypatch.setattr(cli_main, "app", app)
    monkeypatch.setattr("sys.argv", ["infscale", "x"])
    with pytest.raises(SystemExit) as stop:
        cli_main.main()
    assert stop.value.code == code
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"error: {exc}\n"


def test_a_run_failure_is_not_bad_input():
    assert not issubclass(RunFailed, ValueError) and issubclass(EndpointsDownError, RunFailed)
    assert not issubclass(EndpointsDownError, InputError)
