"""The Rich consoles commands print with, made when a command prints.

A console made when its module is imported keeps the colours it chose for the streams of that
moment: imported under a terminal and then run with captured streams (a test runner, or
``foldserve`` called in process), it writes escape codes into plain text. Made on use, it looks
at the streams the command actually writes to.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console


def out(**options: Any) -> Console:
    """A console on standard output; ``options`` as for ``rich.console.Console``."""
    return Console(**options)


def err(**options: Any) -> Console:
    """A console on standard error; ``options`` as for ``rich.console.Console``."""
    return Console(stderr=True, **options)
