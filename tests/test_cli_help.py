"""Every command's ``--help``, at 80 columns and with no width given (not a terminal): each
option's name whole, and values named by their kind, never by a Python annotation."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from foldserve.cli import COMMANDS, LazyGroup, app
from tests.cli_runner import foldserve

pytestmark = pytest.mark.timeout(120)

#: What Typer prints when it labels a value by its annotation: a flag's type, a list, a union.
ANNOTATION_REPRS = re.compile(r"<bool>|list\[|\|\s*None|None\s*\||Optional\[|Union\[|NoneType")


def every_command() -> list[tuple[tuple[str, ...], Any]]:
    """``(("runs", "list"), command)`` for every command and subcommand, from COMMANDS."""
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    context = typer.Context(root)
    found: list[tuple[tuple[str, ...], Any]] = [((), root)]
    for name in COMMANDS:
        command = root.get_command(context, name)
        found.append(((name,), command))
        if isinstance(command, TyperGroup):
            found += [((name, sub), command.commands[sub]) for sub in command.commands]
    return found


COMMAND_PATHS = [path for path, _ in every_command()]


def test_every_group_is_walked() -> None:
    assert ("runs", "list") in COMMAND_PATHS and ("msa", "inspect") in COMMAND_PATHS
    assert ("deploy", "runpod") in COMMAND_PATHS and ("compare",) in COMMAND_PATHS


@pytest.mark.parametrize("columns", ["80", None])
@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "foldserve")
def test_help_names_every_option_whole_and_no_annotation(
    path: tuple[str, ...], columns: str | None
) -> None:
    command = dict(every_command())[path]
    result = foldserve(*path, "--help", env={"COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert not ANNOTATION_REPRS.search(text), text
    assert "…" not in text, text  # nothing cut short, by Rich ...
    assert not re.search(r"\w\.\.\.$", text, re.MULTILINE), text  # ... or by click
    for param in command.params:
        for opt in [*param.opts, *getattr(param, "secondary_opts", [])]:
            if opt.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), (opt, text)
