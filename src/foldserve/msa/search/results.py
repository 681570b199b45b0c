"""What every MSA search gives back, whatever ran it: the query, each database's hits as A3M
text, and the one merged alignment the folding step reads.

The three backends (:mod:`.jackhmmer`, :mod:`.mmseqs`, :mod:`.colabfold_server`) each produce
one :class:`DatabaseHits` per database and query: A3M text whose first record is the query and
whose other records are named by the first word of their database header. :class:`SearchResult`
merges them as AlphaFold merges its databases' MSAs: the query once, then each database's rows
in order, a row already seen (the same aligned sequence) dropped.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from foldserve.msa.model import Msa
from foldserve.msa.names import safe_name
from foldserve.msa.reading import read


@dataclass(frozen=True)
class Query:
    """One sequence to search: ``name`` is safe as a file name, ``sequence`` upper-case amino
    acids (read and checked by :func:`foldserve.msa.search.queries.read_queries`)."""

    name: str
    sequence: str


def hits_file_name(database: str) -> str:
    """The file a database's raw hits are kept in beside the merged MSA: ``hits_{name}.a3m``."""
    return f"hits_{safe_name(database)}.a3m"


@dataclass(frozen=True)
class DatabaseHits:
    """One database's hits for one query: A3M text, the query first."""

    database: str
    a3m: str

    def records(self) -> Iterator[tuple[str, str]]:
        """``(header, row)`` of every record after the query."""
        header = None
        lines: list[str] = []
        first = True
        for line in self.a3m.splitlines():
            if line.startswith(">"):
                if header is not None:
                    if not first:
                        yield header, "".join(lines)
                    first = False
                header, lines = line[1:], []
            elif header is not None and not line.startswith("#"):
                lines.append(line.strip())
        if header is not None and not first:
            yield header, "".join(lines)

    @property
    def count(self) -> int:
        """Hits, the query not counted."""
        return sum(1 for _ in self.records())


class SearchSummary(BaseModel):
    """Where an MSA came from, for the prediction folder (``msa_search.json``) and the report."""

    model_config = ConfigDict(frozen=True)

    tool: str
    #: Database files, or the server's URL and mode.
    source: str
    #: Hits per database, in merge order, the query not counted.
    hits: dict[str, int]
    #: Rows of the merged A3M, the query included.
    rows: int


@dataclass(frozen=True)
class SearchResult:
    query: Query
    tool: str
    source: str
    hits: tuple[DatabaseHits, ...]

    def a3m(self) -> str:
        """The merged A3M: the query once, then every database's rows not seen before."""
        return self._merged

    def msa(self) -> Msa:
        """The merged alignment as foldserve reads it (checked like any MSA file)."""
        return self._alignment

    # Merged and read once per result: the hits table, the summary, the fold and the files
    # written each ask for them, and a 10,000-row MSA need not be merged and parsed four times.
    @functools.cached_property
    def _merged(self) -> str:
        out = [f">{self.query.name}", self.query.sequence]
        seen = {self.query.sequence}
        for database in self.hits:
            for header, row in database.records():
                if row in seen:
                    continue
                seen.add(row)
                out += [f">{header}", row]
        return "\n".join(out) + "\n"

    @functools.cached_property
    def _alignment(self) -> Msa:
        stream = io.BytesIO(self._merged.encode())
        stream.name = f"{self.query.name} ({self.tool} search)"
        return read(stream, format="a3m")

    def summary(self) -> SearchSummary:
        return SearchSummary(
            tool=self.tool,
            source=self.source,
            hits={database.database: database.count for database in self.hits},
            rows=len(self.msa()),
        )
