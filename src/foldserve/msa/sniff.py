"""Recognising an MSA format from its content, never from the file name."""

from __future__ import annotations

from foldserve.errors import MsaError
from foldserve.msa.builder import ColumnRule

FORMATS = ("a3m", "fasta", "a2m", "stockholm", "clustal")
ALIASES = {
    "sto": "stockholm",
    "sth": "stockholm",
    "stk": "stockholm",
    "afa": "fasta",
    "fa": "fasta",
    "fas": "fasta",
    "faa": "fasta",
    "aln": "clustal",
}
_CLUSTAL_HEADERS = (b"CLUSTAL", b"MUSCLE", b"PROBCONS", b"MSAPROBS", b"KALIGN")


def normalise_format(name: str) -> str:
    key = name.lower().lstrip(".")
    key = ALIASES.get(key, key)
    if key not in FORMATS and key != "auto":
        raise MsaError(
            f"unknown MSA format {name!r}",
            source="--format",
            fix=f"use one of: auto, {', '.join(FORMATS)}",
        )
    return key


def sniff(head: bytes, source: str, *, first_line: int = 1) -> tuple[str, ColumnRule]:
    """Name the format of the text that starts with ``head``, and the column rule to read it.

    ``first_line`` is the line number of ``head``'s first line in the file.

    Aligned FASTA with no lower case and no '.' in the sample is read with the A3M rule: the
    two agree on such rows, and an A3M whose first records carry no insertions looks exactly
    like that.
    """
    lines = [line.strip() for line in head.split(b"\n")]
    meaningful = [line for line in lines if line]
    if not meaningful:
        raise MsaError(
            "the file is empty",
            source=source,
            fix="give an MSA file whose first record is the query sequence",
        )
    first = meaningful[0]
    if first.startswith(b"# STOCKHOLM"):
        return "stockholm", "aligned"
    if first.startswith(_CLUSTAL_HEADERS):
        return "clustal", "aligned"
    records = [line for line in meaningful if not line.startswith((b";", b"#"))]
    if records and records[0].startswith(b">"):
        return _sniff_fasta_family(records, has_colabfold_header=first.startswith(b"#"))
    shown = (records or meaningful)[0][:40].decode("utf-8", errors="replace")
    line = lines.index((records or meaningful)[0]) + first_line
    raise MsaError(
        f"not a recognised MSA format (the first line is {shown!r})",
        source=f"{source}:{line}",
        fix="give A3M, Stockholm, aligned FASTA, A2M or Clustal",
    )


def _sniff_fasta_family(
    lines: list[bytes], *, has_colabfold_header: bool
) -> tuple[str, ColumnRule]:
    """A3M, A2M or aligned FASTA, from the complete records in the sample.

    ``lines`` are the sample's lines, stripped, without blank and comment lines; the first is a
    header. Records are cut apart with one ``split``, not a Python step per line.
    """
    if has_colabfold_header:
        return "a3m", "a3m"
    records = b"\n".join(lines).split(b"\n>")
    rows = [body.replace(b"\n", b"") for _, _, body in (r.partition(b"\n") for r in records)]
    # The last record may be cut by the sample's end: leave it out when others exist. Records
    # without a sequence line say nothing.
    rows = [row for row in rows[:-1] if row] or [row for row in rows[-1:] if row]
    sample = b"".join(rows)
    has_lower = sample != sample.upper()
    has_dot = b"." in sample
    same_width = len({len(r) for r in rows}) == 1
    if (has_lower or has_dot) and same_width:
        return "fasta", "aligned"
    if has_lower and has_dot:
        return "a2m", "aligned"
    if has_lower:
        return "a3m", "a3m"
    return "fasta", "a3m"


def rule_for(fmt: str) -> ColumnRule:
    """The column rule of a format the user named."""
    return "a3m" if fmt == "a3m" else "aligned"
