"""How a search is asked for, and how it reports progress: one typed object the command line,
the Python API and the pipeline pass down to whichever backend runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from foldserve.errors import InputError

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

    def __post_init__(self) -> None:
        """Refuse settings no search can run with; ``where`` names the field."""

        def bad(field: str, problem: str, fix: str) -> InputError:
            return InputError(problem, where=field, fix=fix)

        if self.tool not in get_args(Tool):
            raise bad("tool", f"unknown tool {self.tool!r}", "use jackhmmer or mmseqs2")
        if self.tool == "colabfold-server":
            if self.databases:
                raise bad("databases", "databases given for a server search", "leave them out")
        elif not self.databases:
            raise bad(
                "databases",
                "no database to search",
                f"give one or more sequence databases, or search on {DEFAULT_SERVER}",
            )
        elif self.server is not None:
            raise bad("server", "a server given for a local search", "search one or the other")
        if self.mode not in get_args(ServerMode):
            raise bad(
                "mode", f"unknown mode {self.mode!r}", f"use {', '.join(get_args(ServerMode))}"
            )
        if self.pair is not None and self.pair not in get_args(PairMode):
            raise bad("pair", f"unknown pairing {self.pair!r}", "use pairgreedy or paircomplete")
        if self.pair is not None and self.tool != "colabfold-server":
            raise bad(
                "pair",
                f"pairing is done by ColabFold's server, not by {self.tool}",
                "search on the server to pair the chains, or leave the pairing out",
            )
        if self.max_hits < 1:
            raise bad("max_hits", f"{self.max_hits} hits", "keep at least 1 hit")
        if self.cpus is not None and self.cpus < 1:
            raise bad("cpus", f"{self.cpus} threads", "give 1 or more")
        if not self.timeout_s > 0:
            raise bad("timeout_s", f"{self.timeout_s:g} s", "give a time in seconds above 0")

    @property
    def server_url(self) -> str:
        """The server searched: the one given, else ColabFold's public one."""
        return self.server or DEFAULT_SERVER


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask where there is one): a local
    search's default thread count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class SearchProgress:
    """One step of a running search: bytes of database read (``done``/``total``), a tool's
    stage, or what the server last said."""

    stage: str
    message: str = ""
    done: int | None = None
    total: int | None = None


OnSearchProgress = Callable[[SearchProgress], None]
