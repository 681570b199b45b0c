"""An MSA search as the command line shows it: a bar of database bytes read (local tools) or
the server's last word, plain lines when stderr is not a terminal, then hits per database.

Shared by ``msa search``, ``predict --sequence``, ``submit --sequence``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from foldserve.cli.console import err
from foldserve.msa.search import search_all
from foldserve.msa.search.results import Query, SearchResult
from foldserve.msa.search.settings import OnSearchProgress, SearchProgress, SearchSettings

if TYPE_CHECKING:
    from rich.progress import TaskID


def run_search(
    queries: Sequence[Query], settings: SearchSettings, *, table: bool = True
) -> list[SearchResult]:
    """Search every query with ``settings``, showing progress on stderr, then (``table``) the
    hits per database."""
    console = err(highlight=False)
    with following_search(console) as show:
        results = search_all(queries, settings, progress=show)
    if table:
        console.print(hits_table(results))
    return results


def hits_table(results: Sequence[SearchResult], targets: Sequence[Path] = ()) -> Table:
    """Each query's hits per database, the rows of its merged MSA and, given ``targets``,
    where it went."""
    table = Table(title=f"MSA search ({results[0].tool})" if results else None)
    columns = ["query", "database", "hits", "MSA rows"] + (["written to"] if targets else [])
    for column in columns:
        right = column in ("hits", "MSA rows")
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    wheres = [str(t) for t in targets] or [""] * len(results)
    for result, where in zip(results, wheres, strict=True):
        name, rows = result.query.name, str(result.summary().rows)
        for hits in result.hits:
            table.add_row(name, hits.database, str(hits.count), rows, *([where] if targets else []))
            name = rows = where = ""
    return table


@contextmanager
def following_search(console: Console) -> Iterator[OnSearchProgress]:
    """The callback that shows a search's progress: a bar on a terminal (bytes of database
    read when the tool counts them, else the step it is at), plain lines with the elapsed time
    when ``console`` is a file or a pipe (a line per step, and per tenth of a database read)."""
    if not console.is_terminal:
        yield _PlainSearchLog(console)
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        shown: dict[tuple[str, str], TaskID] = {}

        def show(event: SearchProgress) -> None:
            key = (event.stage, event.message)
            if key not in shown:
                for task in shown.values():
                    bar.remove_task(task)
                shown.clear()
                shown[key] = bar.add_task(_step(event), total=event.total, amount="")
            if event.total:
                amount = f"{_megabytes(event.done or 0)}/{_megabytes(event.total)}"
                bar.update(shown[key], completed=event.done or 0, amount=amount)

        yield show


class _PlainSearchLog:
    """Search progress as lines: a new step, or another tenth of a database read."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.last: tuple[str, str, int] | None = None

    def __call__(self, event: SearchProgress) -> None:
        tenth = (event.done or 0) * 10 // event.total if event.total else -1
        key = (event.stage, event.message, tenth)
        if key == self.last:
            return
        self.last = key
        text = _step(event)
        if event.total:
            text += f" {tenth * 10}% of {_megabytes(event.total)}"
        elapsed = time.monotonic() - self.started
        self.console.print(f"[{elapsed:7.1f}s] {text}", highlight=False, soft_wrap=True)


def _step(event: SearchProgress) -> str:
    return f"{event.stage}: {event.message}" if event.message else event.stage


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"
