"""``hypnoscope --help`` lists every sub-command and each sub-command has ``--help``."""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys

import pytest

from hypnoscope.cli import build_parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_top_level_help_lists_every_command(capsys):
    commands = _commands()
    assert {"fetch", "info"} <= set(commands)  # the foundation's own commands
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for name in commands:
        assert f"    {name} " in out or f"    {name}\n" in out, name
    assert main([]) == 0 and "COMMAND" in capsys.readouterr().out  # no command: help


@pytest.mark.parametrize("name", sorted(_commands()))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert out.startswith(f"usage: hypnoscope {name}") and "options:" in out


def test_console_script_runs():
    exe = shutil.which("hypnoscope")
    if exe is None:  # not installed as a console script: run the module instead
        cmd = [sys.executable, "-m", "hypnoscope", "--version"]
    else:
        cmd = [exe, "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    # the version of the installed distribution (pyproject.toml), not the module's own
    assert out.returncode == 0
    assert out.stdout.strip() == f"hypnoscope {importlib.metadata.version('hypnoscope')}"
