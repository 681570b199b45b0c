"""Stockholm reader.

Written by hand rather than with Easel because real Pfam-derived files repeat a sequence name
within one block (a duplicate row), which Easel rejects outright; here the k-th occurrence of a
name in a block continues the k-th row of that name. ``#=GF``/``#=GC``/``#=GR`` markup is
skipped, except ``#=GF ID`` and ``#=GF AC`` (the alignment's name) and ``#=GS name DE`` (the
row's description). A file may hold several alignments, each ended by ``//`` (Pfam's
``Pfam-A.seed``): :func:`read_stockholm` reads the first, with a warning, and
:func:`split_alignments` hands out every one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from foldserve.errors import MsaError
from foldserve.msa.builder import MsaBuilder, RawRow


@dataclass(frozen=True)
class StockholmAlignment:
    """The lines of one alignment of a Stockholm file, its ``//`` included."""

    lines: tuple[bytes, ...]
    first_line: int  # the line number of ``lines[0]`` in the file


@dataclass(frozen=True)
class StockholmNames:
    """What an alignment's markup calls it: ``#=GF ID`` and ``#=GF AC``, when present."""

    identifier: str | None
    accession: str | None


def split_alignments(text: bytes) -> list[StockholmAlignment]:
    """Cut the text at ``//`` lines (and at a ``# STOCKHOLM`` header that follows sequence
    lines with no ``//`` between); blank lines between alignments belong to none."""
    found: list[StockholmAlignment] = []
    lines: list[bytes] = []
    start = 1
    has_rows = False
    for number, raw in enumerate(text.split(b"\n"), start=1):
        line = raw.strip()
        if has_rows and line.startswith(b"# STOCKHOLM"):
            found.append(StockholmAlignment(tuple(lines), start))
            lines, has_rows = [], False
        if not lines:
            if not line:
                continue
            start = number
        lines.append(raw)
        if line.startswith(b"//"):
            found.append(StockholmAlignment(tuple(lines), start))
            lines, has_rows = [], False
        elif line and not line.startswith(b"#"):
            has_rows = True
    if lines:
        found.append(StockholmAlignment(tuple(lines), start))
    return found


def read_stockholm(blocks: Iterable[bytes], builder: MsaBuilder) -> None:
    """Feed the file's first alignment to ``builder``; warn when more follow."""
    alignments = split_alignments(b"".join(blocks))
    if len(alignments) > 1:
        builder.warnings.append(
            f"the file holds {len(alignments)} alignments; read the first only "
            "(foldserve.msa.read_each reads every one; esl-afetch splits the file)"
        )
    if alignments:
        read_alignment(alignments[0], builder)


def read_alignment(alignment: StockholmAlignment, builder: MsaBuilder) -> StockholmNames:
    """Feed the rows of one alignment to ``builder`` and return the names its markup gives."""
    source = builder.source
    order: list[tuple[str, int]] = []
    parts: dict[tuple[str, int], list[bytes]] = {}
    first_line: dict[tuple[str, int], int] = {}
    descriptions: dict[str, str] = {}
    markup: dict[str, str] = {}
    seen_in_block: dict[str, int] = {}
    repeated: set[str] = set()
    has_header = False
    for number, raw in enumerate(alignment.lines, start=alignment.first_line):
        line = raw.strip()
        if line.startswith(b"# STOCKHOLM"):
            has_header = True
            continue
        if not line:
            seen_in_block.clear()
            continue
        if line.startswith(b"//"):
            break
        if line.startswith(b"#"):
            fields = line.decode("utf-8", errors="replace").split(None, 3)
            if len(fields) == 4 and fields[0] == "#=GS" and fields[2] == "DE":
                descriptions[fields[1]] = fields[3]
            elif len(fields) >= 3 and fields[0] == "#=GF" and fields[1] in ("ID", "AC"):
                markup.setdefault(fields[1], fields[2])
            continue
        fields_b = line.split()
        if len(fields_b) != 2:
            raise MsaError(
                f"expected 'name sequence', found {len(fields_b)} fields",
                source=source,
                line=number,
                fix="Stockholm sequence lines hold a name and the aligned sequence, "
                "separated by spaces",
            )
        name = fields_b[0].decode("utf-8", errors="replace")
        occurrence = seen_in_block.get(name, 0)
        seen_in_block[name] = occurrence + 1
        if occurrence:
            repeated.add(name)
        key = (name, occurrence)
        if key not in parts:
            order.append(key)
            parts[key] = []
            first_line[key] = number
        parts[key].append(fields_b[1])
    if not has_header and order:
        builder.warnings.append("no '# STOCKHOLM 1.0' header line")
    if repeated:
        shown = ", ".join(sorted(repeated)[:3])
        builder.warnings.append(
            f"{len(repeated)} name(s) appear more than once in a block ({shown}); "
            "kept as separate rows"
        )
    for key in order:
        name = key[0]
        builder.add(
            RawRow(
                name=name,
                description=descriptions.get(name, ""),
                text=b"".join(parts.pop(key)),
                line=first_line[key],
            )
        )
    return StockholmNames(identifier=markup.get("ID"), accession=markup.get("AC"))
