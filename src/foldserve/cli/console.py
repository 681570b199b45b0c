"""The Rich consoles commands print with, made when a command prints.

A console made when its module is imported keeps the colours it chose for the streams of that
moment: imported under a terminal and then run with captured streams (a test runner, or
``foldserve`` called in process), it writes escape codes into plain text. Made on use, it looks
at the streams the command actually writes to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from foldserve.client.transport import RetryNotice


def out(**options: Any) -> Console:
    """A console on standard output; ``options`` as for ``rich.console.Console``."""
    return Console(**options)


def err(**options: Any) -> Console:
    """A console on standard error; ``options`` as for ``rich.console.Console``."""
    return Console(stderr=True, **options)


def say_retrying(notice: RetryNotice) -> None:
    """One line on stderr when a request starts retrying, so a wait is never silent."""
    err().print(
        f"{notice.problem}; retrying for up to {notice.within_s:g} s …",
        highlight=False,
        soft_wrap=True,
    )
