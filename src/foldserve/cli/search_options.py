"""The MSA-search flags shared by ``msa search``, ``predict``, ``submit`` and ``pipeline run``:
one definition, one check, one :class:`SearchSettings`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from foldserve.cli.options import as_flag_error
from foldserve.config import load_config
from foldserve.errors import InputError
from foldserve.msa.search.settings import (
    DEFAULT_MAX_HITS,
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT_S,
    SearchSettings,
    ServerMode,
    Tool,
)

SequenceOption = Annotated[
    Path | None,
    typer.Option(
        "--sequence",
        help="FASTA of the query (one or more proteins): search its MSA first, on this CPU.",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--db",
        help="Sequence database to search (FASTA, gzip FASTA, or an MMseqs2 database); "
        "repeat for several.",
        show_default=False,
    ),
]
ToolOption = Annotated[
    str, typer.Option("--tool", help="Local search tool for --db: jackhmmer or mmseqs2.")
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help=f"Search on ColabFold's MMseqs2 server instead (e.g. {DEFAULT_SERVER}).",
        show_default=False,
    ),
]
ModeOption = Annotated[
    str, typer.Option("--search-mode", help="Server mode: env, all, env-nofilter or nofilter.")
]
MaxHitsOption = Annotated[int, typer.Option(help="Hits kept per database, in file order.")]
CpusOption = Annotated[
    int | None,
    typer.Option(help="Threads for a local search (default: every core).", show_default=False),
]
EmailOption = Annotated[
    str | None,
    typer.Option(help="Your e-mail, sent to the server as its terms ask.", show_default=False),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Ask the server again even for a cached sequence.")
]
SearchTimeoutOption = Annotated[
    float, typer.Option("--search-timeout", help="Longest wait for the server, in seconds.")
]


#: Settings fields whose flag is not ``--`` + the name with dashes.
_FLAGS = {"databases": "--db", "mode": "--search-mode", "timeout_s": "--search-timeout"}


def search_settings(
    databases: list[Path] | None,
    tool: str,
    server: str | None,
    mode: str = "env",
    max_hits: int = DEFAULT_MAX_HITS,
    cpus: int | None = None,
    email: str | None = None,
    no_cache: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SearchSettings:
    """The settings the flags ask for; an error names the flag the user typed. Without
    ``--db`` or ``--server``, the config file's ``[search] server`` (and ``email``) apply."""
    if databases and server:
        raise InputError(
            "both --db and --server given", where="--server", fix="search locally or on the server"
        )
    if not databases and server is None:
        configured = load_config().search
        server, email = configured.server, email or configured.email
    try:
        return SearchSettings(
            tool="colabfold-server" if server else cast(Tool, tool),
            databases=tuple(databases or ()),
            server=server,
            mode=cast(ServerMode, mode),
            max_hits=max_hits,
            cpus=cpus,
            timeout_s=timeout_s,
            email=email,
            use_cache=not no_cache,
        )
    except InputError as exc:
        raise as_flag_error(exc, _FLAGS) from None
