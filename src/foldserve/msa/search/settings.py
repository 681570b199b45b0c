"""How a search is asked for, and how it reports progress: one typed object the command line,
the Python API and the pipeline pass down to whichever backend runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Tool = Literal["jackhmmer", "mmseqs2", "colabfold-server"]
#: ColabFold's MMseqs2 server modes (``/ticket/msa``): with or without environmental databases,
#: with or without its filtering.
ServerMode = Literal["env", "all", "env-nofilter", "nofilter"]
PairMode = Literal["pairgreedy", "paircomplete"]

#: AlphaFold's cap on hits kept per database (``uniref_max_hits``), in file order.
DEFAULT_MAX_HITS = 10_000
#: How long a server search may take, all waits included.
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_SERVER = "https://api.colabfold.com"


@dataclass(frozen=True)
class SearchSettings:
    """Where and how to search. ``databases`` for the local tools, ``server`` for ColabFold's."""

    tool: Tool = "jackhmmer"
    databases: tuple[Path, ...] = ()
    server: str | None = None
    mode: ServerMode = "env"
    #: ``/ticket/pair`` instead of ``/ticket/msa`` (the paired MSA of a complex's chains).
    pair: PairMode | None = None
    max_hits: int = DEFAULT_MAX_HITS
    #: Threads (jackhmmer, MMseqs2); None: every core.
    cpus: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: Sent to the server with the user agent, as its fair-use terms ask.
    email: str | None = None
    #: Reuse a server result cached for the same sequence, mode and server.
    use_cache: bool = True


@dataclass(frozen=True)
class SearchProgress:
    """One step of a running search: bytes of database read (``done``/``total``), a tool's
    stage, or what the server last said."""

    stage: str
    message: str = ""
    done: int | None = None
    total: int | None = None


OnSearchProgress = Callable[[SearchProgress], None]
