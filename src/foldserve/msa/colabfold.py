"""ColabFold's first A3M line, ``#len1,len2,...<TAB>copies1,copies2,...``.

ColabFold (``msa_to_str``) writes it at the top of every A3M it makes: the length of each
distinct chain, and how many copies of it the complex holds. The rows below hold each distinct
chain once, one after another: ``#31,31<TAB>1,1`` is a heteromer of two 31-residue chains (62
query columns), ``#31<TAB>2`` a homodimer (31 query columns), ``#59<TAB>1`` a monomer.

A ``#`` first line is taken for this header when it starts with a digit and holds a tab, or when
it is nothing but numbers and commas in two or more fields (a header whose tab became spaces);
then it must be well formed. Any other ``#`` line, such as the ``#name`` that starts each A3M of
an HH-suite database, is skipped as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from foldserve.errors import MsaError
from foldserve.msa.model import ComplexLayout

_NUMBERS_ONLY = re.compile(rb"[0-9,]+(?:[ \t]+[0-9,]+)+")
_COUNT = re.compile(r"[0-9]{1,9}")
_FIX = (
    "ColabFold's first line is '#' + the chain lengths + a tab + the copies of each chain, "
    "e.g. '#31,31<TAB>1,1' for a heteromer whose query row holds both chains (62 residues); "
    "correct the line, or delete it to read the file as one chain"
)


@dataclass(frozen=True)
class ColabFoldHeader:
    """What the first line says: the query's length and, for a complex, its chains."""

    line: int
    query_length: int
    complex: ComplexLayout | None

    def check(self, query_length: int, source: str) -> None:
        """Refuse a header whose chain lengths do not add up to the query read below it."""
        if query_length != self.query_length:
            raise MsaError(
                f"the ColabFold header gives chains of {self.query_length} residues in all, "
                f"but the query has {query_length}",
                source=source,
                line=self.line,
                fix=_FIX,
            )


def find_header(head: bytes, source: str, *, first_line: int = 1) -> ColabFoldHeader | None:
    """The header on the first non-blank line of ``head``, or None when there is none there.

    ``first_line`` is the line number of ``head``'s first line in the file.
    """
    for number, raw in enumerate(head.split(b"\n"), start=first_line):
        line = raw.strip()
        if not line:
            continue
        body = line[1:]
        claimed = b"\t" in body or _NUMBERS_ONLY.fullmatch(body) is not None
        if not line.startswith(b"#") or not body[:1].isdigit() or not claimed:
            return None
        return _parse(body.decode("utf-8", errors="replace"), source, number)
    return None


def _parse(body: str, source: str, line: int) -> ColabFoldHeader:
    fields = body.split()
    if len(fields) != 2:
        raise MsaError(
            f"the ColabFold header has {len(fields)} fields, expected 2 (lengths and copies)",
            source=source,
            line=line,
            fix=_FIX,
        )
    lengths = _numbers(fields[0], "chain lengths", source, line)
    copies = _numbers(fields[1], "copies", source, line)
    if len(lengths) != len(copies):
        raise MsaError(
            f"the ColabFold header gives {len(lengths)} chain length(s) "
            f"but {len(copies)} copy count(s)",
            source=source,
            line=line,
            fix=_FIX,
        )
    layout = None if copies == (1,) else ComplexLayout(lengths=lengths, copies=copies)
    return ColabFoldHeader(line=line, query_length=sum(lengths), complex=layout)


def _numbers(field: str, what: str, source: str, line: int) -> tuple[int, ...]:
    parts = field.split(",")
    if not all(_COUNT.fullmatch(part) and int(part) > 0 for part in parts):
        raise MsaError(
            f"the ColabFold header's {what} {field!r} are not positive whole numbers "
            "separated by commas",
            source=source,
            line=line,
            fix=_FIX,
        )
    return tuple(int(part) for part in parts)


def header_line(layout: ComplexLayout) -> str:
    """The first line ColabFold writes for ``layout``, newline included."""
    return f"#{','.join(map(str, layout.lengths))}\t{','.join(map(str, layout.copies))}\n"
