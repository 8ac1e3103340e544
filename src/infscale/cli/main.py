"""The `infscale` command: a thin Typer app; each command group lives in its own module.

Command modules import only typer/rich at module level; numpy, scipy, torch etc. are imported inside commands so that
`infscale --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

import typer

import infscale
from infscale.errors import InfeasibleError, InputError, RunFailed
from infscale.renames import current_argv

app = typer.Typer(
    name="infscale",
    help="Inference-aware scaling laws: what model to train, and how to spend inference compute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each entry is a module with `register(app: typer.Typer) -> None`. One line per command group.
COMMAND_MODULES: list[str] = [
    "infscale.cli.tts",
    "infscale.cli.fit",
    "infscale.cli.data",
    "infscale.cli.plan",
    "infscale.cli.lifecycle",
    "infscale.cli.optimum",
    "infscale.cli.latency",
    "infscale.cli.train",
    "infscale.cli.demo",
    "infscale.cli.study",
]

def _version(value: bool) -> None:
    if value:
        try:
            installed = version("infscale")
        except PackageNotFoundError:  # run from a source tree without an install
            installed = infscale.__version__
        print(f"infscale {installed}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Inference-aware scaling laws: what model to train, and how to spend inference compute."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def _one_line_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    return f"warning: {message}\n"


def main() -> None:
    """Console entry point, and the one exit-code rule (`infscale.errors`): bad input is one line on stderr and
    exit code 2, a run that failed after starting one line and exit code 1; warnings (a torn record cut,
    an extrapolation) one line each."""

    warnings.formatwarning = _one_line_warning
    sys.argv[1:] = current_argv(sys.argv[1:])  # renamed flags, said once each
    try:
        app()
    except (InputError, InfeasibleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except RunFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
