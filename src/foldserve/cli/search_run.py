"""An MSA search as the command line shows it: a bar of database bytes read (local tools) or
the server's last word, plain lines when stderr is not a terminal, then hits per database.

Shared by ``msa search``, ``predict --sequence``, ``submit --sequence``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from foldserve.cli.console import err
from foldserve.msa.search import search_all
from foldserve.msa.search.results import Query, SearchResult
from foldserve.msa.search.settings import OnSearchProgress, SearchProgress, SearchSettings


def run_search(queries: Sequence[Query], settings: SearchSettings) -> list[SearchResult]:
    """Search every query with ``settings``, showing progress on stderr; print the hits."""
    console = err(highlight=False)
    where = settings.server_url if settings.tool == "colabfold-server" else "local databases"
    console.print(
        f"searching {len(queries)} sequence(s) with {settings.tool} ({where}) …", soft_wrap=True
    )
    with _following(console) as show:
        results = search_all(queries, settings, progress=show)
    console.print(hits_table(results))
    return results


def hits_table(results: Sequence[SearchResult]) -> Table:
    """Hits per database and rows merged, one line per query and database."""
    table = Table(title="MSA search", title_justify="left")
    for column in ("query", "length", "database", "hits", "merged rows"):
        table.add_column(column, justify="left" if column in ("query", "database") else "right")
    for result in results:
        merged = str(len(result.msa()))
        for index, database in enumerate(result.hits):
            first = index == 0
            table.add_row(
                result.query.name if first else "",
                str(len(result.query.sequence)) if first else "",
                database.database,
                str(database.count),
                merged if first else "",
            )
    return table


@contextmanager
def _following(console: Console) -> Iterator[OnSearchProgress]:
    """A callback for search progress: a Rich bar on a terminal, else one plain line whenever
    the stage or message changes (and at most every 10% of a database read)."""
    if not console.is_terminal:
        started = time.monotonic()
        previous: tuple[str, str, int | None] | None = None

        def plain(event: SearchProgress) -> None:
            nonlocal previous
            tenth = None
            if event.done is not None and event.total:
                tenth = 10 * event.done // event.total
            key = (event.stage, event.message, tenth)
            if key == previous:
                return
            previous = key
            share = f" {10 * tenth}%" if tenth is not None else ""
            text = f"[{time.monotonic() - started:7.1f}s] {event.stage}{share} {event.message}"
            console.print(text.rstrip(), soft_wrap=True)

        yield plain
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task: TaskID = bar.add_task("starting", total=None)

        def show(event: SearchProgress) -> None:
            description = f"{event.stage} {event.message}".strip()
            bar.update(task, description=description, completed=event.done, total=event.total)

        yield show
