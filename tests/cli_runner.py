"""The ``foldserve`` command run in this process, as a shell would run it.

Typer's ``CliRunner`` swaps in its own standard streams and environment for the call, so the
exit code, standard output and standard error come back apart. An exception the CLI does not
turn into a message (a traceback, to a user) is raised into the test instead of being caught.
Tests where the process boundary is the point (the installed console script, Ctrl-C, a
server) start a process instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from typer.testing import CliRunner

from foldserve.cli import app


@dataclass(frozen=True)
class Ran:
    """What one ``foldserve`` command left: its exit code and its two output streams."""

    exit_code: int
    stdout: str
    stderr: str


def foldserve(
    *args: str, stdin: bytes | str | None = None, env: Mapping[str, str | None] | None = None
) -> Ran:
    """``foldserve ARGS...``; ``env`` sets (or, with None, unsets) variables for the call."""
    result = CliRunner().invoke(
        app, list(args), input=stdin, env=env, catch_exceptions=False, prog_name="foldserve"
    )
    return Ran(result.exit_code, result.stdout, result.stderr)
