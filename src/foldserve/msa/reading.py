"""``read``: any supported MSA source to an ``Msa``; ``read_each``: one per alignment it holds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice

from foldserve.msa.builder import ColumnRule, MsaLimits
from foldserve.msa.colabfold import find_header
from foldserve.msa.easel import EASEL_FORMATS, read_with_easel
from foldserve.msa.model import Msa
from foldserve.msa.names import UniqueNames, safe_name
from foldserve.msa.records import scan_records
from foldserve.msa.scan_build import BlockBuilder
from foldserve.msa.sniff import normalise_format, rule_for, sniff
from foldserve.msa.source import SNIFF_SIZE, SourceLike, file_stem, open_source
from foldserve.msa.stockholm import (
    StockholmAlignment,
    read_alignment,
    read_stockholm,
    split_alignments,
)

NUL = b"\x00"


@dataclass(frozen=True)
class NamedMsa:
    """One alignment of a file, named so that the name can be a folder's (see ``read_each``)."""

    name: str
    msa: Msa


def read(
    source: SourceLike,
    *,
    format: str = "auto",
    query: str | None = None,
    limits: MsaLimits | None = None,
) -> Msa:
    """Read an MSA in A3M, aligned FASTA, A2M, Stockholm or Clustal.

    ``source`` is a path, ``"-"`` for standard input, or a binary file object; gzip, bzip2 and
    xz are decompressed transparently. The format is recognised from the content unless given.
    The first sequence is the query unless ``query`` names another. Raises
    :class:`foldserve.errors.MsaError` (with file, line and fix) for input that cannot be used,
    and :class:`foldserve.errors.TooLarge` as soon as it is past ``limits`` (rows, or residues
    of the query), without reading further. A file of several Stockholm alignments gives its
    first, with a warning (:func:`read_each` gives every one).
    """
    with open_source(source) as text:
        head = text.head()
        fmt, rule = _format_of(head, text.name, format)
        builder = BlockBuilder(
            source=text.name,
            format=fmt,
            rule=rule,
            query=query,
            size_hint=text.size,
            limits=limits,
        )
        _feed(builder, head, text.blocks(), first_line=1)
        builder.warnings[:0] = text.cleaning_warnings()
        return builder.finish()


def read_each(
    source: SourceLike,
    *,
    format: str = "auto",
    query: str | None = None,
    limits: MsaLimits | None = None,
) -> Iterator[NamedMsa]:
    """Every alignment of ``source``, in file order, each with a name.

    A file may hold several: a Stockholm file with several ``//``-terminated alignments
    (``Pfam-A.seed``), or A3M/FASTA alignments separated by NUL bytes (an MMseqs2
    ``result2msa`` database). Each is then named after its ``#=GF ID``, else its ``#=GF AC``
    (Stockholm), else its query's name, else ``FILE_N`` (the N-th alignment of FILE). A file
    that holds one alignment (any format) gives one, named after the file without its format
    and compression suffixes (``PF00001.sto.gz``: ``PF00001``; standard input: ``stdin``).
    Names pass through :func:`safe_name`, and a repeat (ignoring case) gets ``_2``, ``_3``...,
    so that each can name a folder. Arguments are those of :func:`read`, applied to each
    alignment. An error names the file and line: the alignment's first line when nothing
    nearer is known. Alignments are read one at a time, one ahead of the one handed out.
    """
    with open_source(source, keep_nul=True) as text:
        fmt, rule = _format_of(text.head().replace(NUL, b""), text.name, format)
        reader = _Alignments(source=text.name, format=format, query=query, limits=limits)
        found: Iterable[tuple[Msa, str | None]]
        if fmt == "stockholm":
            alignments = split_alignments(b"".join(text.blocks()).replace(NUL, b""))
            several = len(alignments) > 1
            found = (reader.stockholm(each, several=several) for each in alignments)
        elif fmt in EASEL_FORMATS:
            several = False
            whole = reader.builder(fmt, rule, line=None, size=text.size)
            _feed(whole, b"", (block.replace(NUL, b"") for block in text.blocks()), first_line=1)
            found = [(whole.finish(), None)]
        else:
            records = _split_at_nul(text.blocks())
            ahead = list(islice(records, 2))
            several = len(ahead) > 1
            found = (
                reader.record(part, line=line, several=several)
                for line, part in chain(ahead, records)
            )
        yield from _named(found, several=several, stem=file_stem(text.name))


@dataclass(frozen=True)
class _Alignments:
    """Reads the alignments of one file for ``read_each``, one at a time."""

    source: str
    format: str  # as the caller gave it: "auto" sniffs each alignment
    query: str | None
    limits: MsaLimits | None

    def builder(
        self, fmt: str, rule: ColumnRule, *, line: int | None, size: int | None
    ) -> BlockBuilder:
        return BlockBuilder(
            source=self.source,
            format=fmt,
            rule=rule,
            query=self.query,
            size_hint=size,
            limits=self.limits,
            first_line=line,
        )

    def stockholm(self, alignment: StockholmAlignment, *, several: bool) -> tuple[Msa, str | None]:
        """One alignment of a Stockholm file, and its name from the markup or the query."""
        size = sum(map(len, alignment.lines))
        builder = self.builder(
            "stockholm", "aligned", line=alignment.first_line if several else None, size=size
        )
        names = read_alignment(alignment, builder)
        msa = builder.finish()
        return msa, names.identifier or names.accession or msa.query_name

    def record(self, text: bytes, *, line: int, several: bool) -> tuple[Msa, str | None]:
        """One alignment between NUL bytes, starting on ``line``, and its query's name."""
        head = text[:SNIFF_SIZE]
        fmt, rule = _format_of(head, self.source, self.format, first_line=line)
        builder = self.builder(fmt, rule, line=line if several else None, size=len(text))
        _feed(builder, head, [text], first_line=line)
        msa = builder.finish()
        return msa, msa.query_name


def _named(
    found: Iterable[tuple[Msa, str | None]], *, several: bool, stem: str
) -> Iterator[NamedMsa]:
    if not several:
        for alignment, _ in found:
            yield NamedMsa(safe_name(stem), alignment)
        return
    names = UniqueNames(fold_case=True)
    for number, (alignment, name) in enumerate(found, start=1):
        yield NamedMsa(names.add(safe_name(name or f"{stem}_{number}")), alignment)


def _split_at_nul(blocks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """The first line and text of every part between NUL bytes that holds more than blanks."""
    line = 1
    parts: list[bytes] = []
    for block in blocks:
        *ends, rest = block.split(NUL)
        for end in ends:
            parts.append(end)
            text = b"".join(parts)
            parts = []
            if text.strip():
                yield line, text
            line += text.count(b"\n")
        parts.append(rest)
    text = b"".join(parts)
    if text.strip():
        yield line, text


def _format_of(
    head: bytes, source: str, format: str, *, first_line: int = 1
) -> tuple[str, ColumnRule]:
    fmt = normalise_format(format)
    if fmt == "auto":
        return sniff(head, source, first_line=first_line)
    return fmt, rule_for(fmt)


def _feed(builder: BlockBuilder, head: bytes, blocks: Iterable[bytes], *, first_line: int) -> None:
    """Read the text in ``blocks`` (which starts with ``head``) into ``builder``."""
    if builder.format in EASEL_FORMATS:
        read_with_easel(blocks, builder, builder.format)
    elif builder.format == "stockholm":
        read_stockholm(blocks, builder)
    else:
        builder.header = find_header(head, builder.source, first_line=first_line)
        for block in scan_records(blocks, builder.source, first_line=first_line):
            builder.add_block(block)
