"""`infscale tts ...`: test-time compute runs (`run`), their analysis (`analyze`, in cli/tts_analyze.py) and Wu et al. in
miniature (`mini`, in cli/tts_mini.py)."""

from __future__ import annotations

import importlib

import typer

tts_app = typer.Typer(help="Test-time compute: run strategies under a budget, analyse accuracy vs FLOPs.",
                      no_args_is_help=True)

# modules adding commands to the `tts` group: each exposes `register(tts_app)`, like the top-level modules
TTS_COMMAND_MODULES: list[str] = [
    "infscale.cli.tts_run",
    "infscale.cli.tts_analyze",
    "infscale.cli.tts_forecast",
    "infscale.cli.tts_mini",
    "infscale.cli.tts_reward",
]


def register(app: typer.Typer) -> None:
    for name in TTS_COMMAND_MODULES:
        importlib.import_module(name).register(tts_app)
    app.add_typer(tts_app, name="tts")
