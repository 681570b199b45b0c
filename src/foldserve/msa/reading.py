"""``read``: any supported MSA source to an ``Msa``."""

from __future__ import annotations

from foldserve.msa.builder import MsaBuilder, MsaLimits
from foldserve.msa.easel import EASEL_FORMATS, read_with_easel
from foldserve.msa.model import Msa
from foldserve.msa.records import scan_records
from foldserve.msa.sniff import normalise_format, rule_for, sniff
from foldserve.msa.source import SourceLike, open_source
from foldserve.msa.stockholm import read_stockholm


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
    of the query), without reading further.
    """
    with open_source(source) as text:
        head = text.head()
        fmt = normalise_format(format)
        if fmt == "auto":
            fmt, rule = sniff(head, text.name)
        else:
            rule = rule_for(fmt)
        builder = MsaBuilder(
            source=text.name,
            format=fmt,
            rule=rule,
            query=query,
            size_hint=text.size,
            limits=limits,
        )
        if fmt in EASEL_FORMATS:
            read_with_easel(text.blocks(), builder, fmt)
        elif fmt == "stockholm":
            read_stockholm(text.blocks(), builder)
        else:
            for row in scan_records(text.blocks(), text.name):
                builder.add(row)
        builder.warnings[:0] = text.cleaning_warnings()
        return builder.finish()
