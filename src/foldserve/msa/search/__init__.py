"""MSA search: building the alignment from a sequence, on CPU, before any GPU step.

>>> from foldserve import msa
>>> alignment = msa.search("query.fasta", databases=("uniref90.fasta.gz",))   # jackhmmer
>>> alignment = msa.search("MKTAYIAKQR...", tool="colabfold-server")          # ColabFold's server
>>> from foldserve.msa.search import SearchSettings, search_all
>>> from foldserve.msa.search.queries import read_queries
>>> results = search_all(read_queries("several.fasta"), SearchSettings(tool="mmseqs2", ...))

One name, two things: ``foldserve.msa.search`` is this subpackage, and :func:`search`, the
function the issue asks for as ``foldserve.msa.search(...)``, lives in it. The package
``foldserve.msa`` imports that function under the same name, which replaces the attribute
the import system set for the subpackage: ``msa.search`` is the function, while ``import`` and
``from foldserve.msa.search[.module] import ...`` still find the subpackage and its modules
(they look in ``sys.modules``, not at the attribute). So reach this subpackage's contents by
importing them, never by attribute (``foldserve.msa.search.search_all`` is an attribute of a
function, which has none), and patch its modules through the module objects, not dotted
strings.

Since ``import foldserve.msa`` runs this module, it imports only the settings: the query reader
(:mod:`.queries`), the result types (:mod:`.results`, pydantic) and the backends (jackhmmer
through pyhmmer, MMseqs2's program, the server's HTTP client) are imported when a search runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foldserve.errors import InputError
from foldserve.msa.search.settings import OnSearchProgress, SearchProgress, SearchSettings

if TYPE_CHECKING:
    from foldserve.msa.model import Msa
    from foldserve.msa.search.results import Query, SearchResult

__all__ = ["OnSearchProgress", "SearchProgress", "SearchSettings", "search", "search_all"]


def search_all(
    queries: Sequence[Query], settings: SearchSettings, *, progress: OnSearchProgress | None = None
) -> list[SearchResult]:
    """Search every query as ``settings`` say: one :class:`SearchResult` per query, in order.

    ``settings`` checked themselves when made (:class:`SearchSettings`); ``progress`` hears
    each step of the search. Raises :class:`~foldserve.errors.InputError` for a database or
    server the search cannot use, before searching, and the backend's errors after.
    """
    if settings.tool == "jackhmmer":
        from foldserve.msa.search.jackhmmer import search_jackhmmer

        return search_jackhmmer(
            queries,
            settings.databases,
            max_hits=settings.max_hits,
            cpus=settings.cpus,
            progress=progress,
        )
    if settings.tool == "mmseqs2":
        from foldserve.msa.search.mmseqs import search_mmseqs

        return search_mmseqs(
            queries,
            settings.databases,
            max_hits=settings.max_hits,
            cpus=settings.cpus,
            progress=progress,
        )
    from foldserve.msa.search.colabfold_server import search_server

    return search_server(queries, settings, progress=progress)


def search(
    sequence: str | Path,
    settings: SearchSettings | None = None,
    *,
    progress: OnSearchProgress | None = None,
    **overrides: Any,
) -> Msa:
    """The MSA of one protein: the merged alignment of every database searched, query first.

    ``sequence`` is a FASTA file holding one record (a :class:`~pathlib.Path`, a path string,
    ``"-"`` for standard input), FASTA text, or a bare sequence (``"MKTAYIAKQR..."``).
    ``overrides`` replace fields of ``settings`` (or make the settings when none are given):
    ``search(seq, databases=["uniref90.fasta"], tool="mmseqs2")``; ``databases`` may be one
    path or several, and ``server=`` alone implies ``tool="colabfold-server"``. For several
    queries, or each database's hits, use :func:`search_all`.
    """
    queries = _queries(sequence)
    if len(queries) != 1:
        raise InputError(
            f"{len(queries)} sequences given; search() takes one",
            where=str(sequence) if isinstance(sequence, Path) else "sequence",
            fix="use search_all(read_queries(path), settings) to search each",
        )
    if isinstance(databases := overrides.get("databases"), str | Path):
        overrides["databases"] = (databases,)
    if "databases" in overrides:
        overrides["databases"] = tuple(Path(path) for path in overrides["databases"])
    if "server" in overrides and "tool" not in overrides and settings is None:
        overrides["tool"] = "colabfold-server"
    chosen = (
        SearchSettings(**overrides)
        if settings is None
        else dataclasses.replace(settings, **overrides)
    )
    (result,) = search_all(queries, chosen, progress=progress)
    return result.msa()


def _queries(sequence: str | Path) -> list[Query]:
    """A path (or ``"-"``) is read as a file; other text as FASTA text or a bare sequence when
    it looks like one (a '>' first, or letters only), else as a path that may not exist."""
    from foldserve.msa.search.queries import parse_queries, read_queries

    if isinstance(sequence, Path) or sequence == "-" or _is_file(sequence):
        return read_queries(sequence)
    text = sequence.strip()
    if text.startswith(">") or text.rstrip("*").replace("\n", "").replace(" ", "").isalpha():
        return parse_queries(sequence)
    return read_queries(sequence)


def _is_file(text: str) -> bool:
    try:
        return Path(text).exists()
    except OSError:  # a name too long for a path: a sequence
        return False
