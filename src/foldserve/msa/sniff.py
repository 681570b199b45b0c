"""Recognising an MSA format from its content, never from the file name."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from foldserve.errors import MsaError
from foldserve.msa.builder import CUMSUM_DTYPE, ColumnRule

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
NEWLINE = ord("\n")
HEADER = ord(">")
DOT = ord(".")
LOWER_A, LOWER_Z = ord("a"), ord("z")
#: Bytes no line may start with, or end with, for the sample to need no per-line clean-up:
#: whitespace (blank lines too), and at a start ';' and '#' (comment lines).
_NOT_FIRST = np.zeros(256, dtype=np.bool_)
_NOT_FIRST[list(b" \t\n\r\x0b\x0c;#")] = True
_NOT_LAST = np.zeros(256, dtype=np.bool_)
_NOT_LAST[list(b" \t\n\r\x0b\x0c")] = True


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
    if _is_plain(head):
        first, records = head.partition(b"\n")[0], head
    else:
        meaningful = [line for line in (line.strip() for line in head.split(b"\n")) if line]
        if not meaningful:
            raise MsaError(
                "the file is empty",
                source=source,
                fix="give an MSA file whose first record is the query sequence",
            )
        first = meaningful[0]
        records = b"\n".join(line for line in meaningful if not line.startswith((b";", b"#")))
    if first.startswith(b"# STOCKHOLM"):
        return "stockholm", "aligned"
    if first.startswith(_CLUSTAL_HEADERS):
        return "clustal", "aligned"
    if records.startswith(b">"):
        return _sniff_fasta_family(records, has_colabfold_header=first.startswith(b"#"))
    lines = [line.strip() for line in head.split(b"\n")]
    shown = records.partition(b"\n")[0] or first
    raise MsaError(
        f"not a recognised MSA format (the first line is "
        f"{shown[:40].decode('utf-8', errors='replace')!r})",
        source=f"{source}:{lines.index(shown) + first_line}",
        fix="give A3M, Stockholm, aligned FASTA, A2M or Clustal",
    )


def _is_plain(head: bytes) -> bool:
    """Whether ``head`` has no blank or comment line and no line that starts or ends with
    whitespace (nearly every file): then its lines need no clean-up, which takes a Python step
    for each of the 1,500 or so lines of a 64 KiB sample. Checked with numpy at the newlines."""
    if not head:
        return False
    data = np.frombuffer(head, dtype=np.uint8)
    newlines = np.flatnonzero(data == NEWLINE)
    inner = newlines[newlines < len(data) - 1]  # a newline that ends the sample starts nothing
    if _NOT_FIRST[data[0]] or _NOT_FIRST[data[inner + 1]].any():
        return False
    return (
        not (_NOT_LAST[data[-1]] and data[-1] != NEWLINE)
        and not _NOT_LAST[data[newlines[newlines > 0] - 1]].any()
    )


def _sniff_fasta_family(records: bytes, *, has_colabfold_header: bool) -> tuple[str, ColumnRule]:
    """A3M, A2M or aligned FASTA, from the complete records in the sample.

    ``records`` are the sample's lines, stripped, without blank and comment lines; the first is
    a header. The records' sequences are found with numpy, not a Python step per record.
    """
    if has_colabfold_header:
        return "a3m", "a3m"
    sample, widths = _sequences(records)
    has_lower = bool(((sample >= LOWER_A) & (sample <= LOWER_Z)).any())
    has_dot = bool((sample == DOT).any())
    same_width = len(widths) > 0 and bool((widths == widths[0]).all())
    if (has_lower or has_dot) and same_width:
        return "fasta", "aligned"
    if has_lower and has_dot:
        return "a2m", "aligned"
    if has_lower:
        return "a3m", "a3m"
    return "fasta", "a3m"


def _sequences(records: bytes) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The sequence bytes (header lines and newlines left out) of the records the sample says
    something with, and each one's length. The last record may be cut by the sample's end: it
    is left out when an earlier one has a sequence. Records without a sequence say nothing."""
    data = np.frombuffer(records, dtype=np.uint8)
    newlines = np.flatnonzero(data == NEWLINE)
    line_starts = np.concatenate(([0], newlines + 1))
    line_starts = line_starts[line_starts < len(data)]
    headers = line_starts[data[line_starts] == HEADER]
    # A header line ends at its newline (or at the sample's end); its record, before the next.
    after_newline = np.searchsorted(newlines, headers)
    header_ends = np.append(newlines, len(data))[after_newline]
    record_ends = np.append(headers[1:] - 1, len(data))
    sequence_newlines = np.searchsorted(newlines, record_ends) - np.minimum(
        after_newline + 1, len(newlines)
    )
    lengths = np.maximum(record_ends - header_ends - 1, 0) - np.maximum(sequence_newlines, 0)
    end = len(data)
    if lengths[:-1].any():
        end, lengths = int(headers[-1]), lengths[:-1]
    in_header = np.zeros(len(data) + 2, dtype=np.int8)
    in_header[headers] = 1
    in_header[header_ends + 1] -= 1
    is_sequence = (np.cumsum(in_header[:end], dtype=CUMSUM_DTYPE) == 0) & (data[:end] != NEWLINE)
    return data[:end][is_sequence], lengths[lengths > 0]


def rule_for(fmt: str) -> ColumnRule:
    """The column rule of a format the user named."""
    return "a3m" if fmt == "a3m" else "aligned"
