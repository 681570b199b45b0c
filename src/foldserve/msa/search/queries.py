"""The sequences to search: a FASTA of one or more proteins, checked before any search starts.

Which letters count as amino acids: all 26. Every letter is an IUPAC one-letter code (the 20
standard residues; B for D/N, Z for E/Q, J for I/L; U selenocysteine, O pyrrolysine; X
unknown), AlphaFold's ``residue_constants.HHBLITS_AA_TO_ID`` gives each of them a feature (the
ambiguity codes and O and J as X, U as C; ColabFold upper-cases and keeps the query as given),
and HMMER's amino alphabet and MMseqs2 read them all. What is refused is anything else: digits,
punctuation, a stop ``*`` inside the sequence (one at its end is dropped, as many FASTA files
end a protein with it), and the gap characters ``-`` and ``.`` of an aligned sequence. Lower
case is read as upper case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from foldserve.errors import InputError
from foldserve.msa.alphabet import IS_NUCLEOTIDE
from foldserve.msa.names import UniqueNames, safe_name
from foldserve.msa.search.results import Query
from foldserve.msa.source import file_stem, open_source

#: A character no sequence line may hold (whitespace is ignored; '*' is checked per record).
_NOT_RESIDUE = re.compile(r"[^A-Za-z*\s]")
_WHITESPACE = re.compile(r"\s+")
#: A sequence at least this long whose residues are nearly all A, C, G, T, U or N is DNA/RNA
#: (the rule the MSA reader applies to a query).
_NUCLEOTIDE_MIN_LENGTH = 10
_NUCLEOTIDE_SHARE = 0.9
_LETTERS_FIX = (
    "use one-letter amino-acid codes: the 20 standard ones, B, Z, J, U, O, or X for unknown"
)
_ALIGNED_FIX = "give the unaligned query, or use foldserve predict with the MSA itself"


def read_queries(source: str | Path) -> list[Query]:
    """Every protein sequence of a FASTA file (``"-"``: standard input; gzip, bzip2 and xz are
    read as they are), in file order.

    Each is named by the first word of its header, made safe as a file name
    (:func:`~foldserve.msa.names.safe_name`) and unique (a repeat, ignoring case, gets ``_2``,
    ``_3``...), since each may become ``OUT_DIR/NAME.a3m``; a record with an empty header is
    named after the file. Raises :class:`~foldserve.errors.InputError` naming ``FILE:LINE``
    for a file that is not FASTA or holds no sequence, a record without residues, a character
    that is not an amino-acid letter, an aligned (gapped) sequence, or DNA/RNA.
    """
    if str(source) != "-" and Path(source).is_dir():
        raise InputError("is a directory", where=str(source), fix="give a FASTA file")
    with open_source(source) as text:
        return _read(_lines(text.blocks()), text.name)


def parse_queries(text: str, *, source: str = "sequence") -> list[Query]:
    """:func:`read_queries` for text in hand: FASTA, or a bare sequence (named ``query``);
    errors name ``source`` and the line."""
    return _read(enumerate(text.splitlines(), start=1), source, bare=True)


@dataclass
class _Record:
    """One FASTA record as read: its header's line, its name, and its sequence lines."""

    line: int
    name: str
    rows: list[tuple[int, str]] = field(default_factory=list)


def _read(lines: Iterable[tuple[int, str]], source: str, *, bare: bool = False) -> list[Query]:
    """The checked, named queries of FASTA ``lines``; with ``bare``, sequence lines before any
    header are a record named ``query``."""
    records: list[_Record] = []
    for number, line in lines:
        if line.startswith(">"):
            words = line[1:].split(None, 1)
            records.append(_Record(number, words[0] if words else ""))
            continue
        if not records:
            if not line.strip():
                continue
            if not bare:
                raise _not_fasta(line.strip(), source, number)
            records.append(_Record(number, "query"))
        if bad := _NOT_RESIDUE.search(line):
            raise _bad_character(bad.group(), bad.start() + 1, records[-1], source, number)
        records[-1].rows.append((number, _WHITESPACE.sub("", line).upper()))
    if not records:
        raise InputError(
            "holds no sequence",
            where=source,
            fix="give a FASTA file: a '>name' line, then the protein's residues",
        )
    sequences = [_sequence(record, source) for record in records]
    stem = safe_name(file_stem(source))
    wanted = [safe_name(record.name) if record.name else stem for record in records]
    names = UniqueNames(wanted, fold_case=True)
    pairs = zip(wanted, sequences, strict=True)
    return [Query(names.add(name), sequence) for name, sequence in pairs]


def _lines(blocks: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """``(number, text)`` of every line of the text in ``blocks``."""
    number = 0
    parts: list[bytes] = []
    for block in blocks:
        *complete, rest = block.split(b"\n")
        if complete:
            complete[0] = b"".join([*parts, complete[0]])
            parts = []
        for line in complete:
            number += 1
            yield number, line.decode("utf-8", errors="replace")
        parts.append(rest)
    if last := b"".join(parts):
        yield number + 1, last.decode("utf-8", errors="replace")


def _sequence(record: _Record, source: str) -> str:
    """The record's residues, checked: one final '*' dropped, none elsewhere, not DNA."""
    sequence = "".join(row for _, row in record.rows)
    if sequence.endswith("*"):
        sequence = sequence[:-1]
    if not sequence:
        raise InputError(
            f"the record {record.name!r} has no sequence",
            where=f"{source}:{record.line}",
            fix="put the protein's residues on the lines under its header, or delete the record",
        )
    if "*" in sequence:
        number = next(number for number, row in record.rows if "*" in row)
        raise InputError(
            f"'*' (a stop) inside the sequence of {record.name!r}",
            where=f"{source}:{number}",
            fix="give the protein up to its stop, without the '*'",
        )
    share = float(IS_NUCLEOTIDE[np.frombuffer(sequence.encode(), dtype=np.uint8)].mean())
    if len(sequence) >= _NUCLEOTIDE_MIN_LENGTH and share >= _NUCLEOTIDE_SHARE:
        raise InputError(
            f"the record {record.name!r} looks like DNA/RNA ({share:.0%} of its letters are "
            "A, C, G, T, U or N)",
            where=f"{source}:{record.line}",
            fix="give the protein sequence (translate the DNA first)",
        )
    return sequence


def _bad_character(
    character: str, column: int, record: _Record, source: str, line: int
) -> InputError:
    where = f"{source}:{line}"
    if character in "-.":
        return InputError(
            f"the record {record.name!r} is aligned: {character!r} (a gap) at column {column}",
            where=where,
            fix=_ALIGNED_FIX,
        )
    return InputError(
        f"{character!r} at column {column} of {record.name!r} is not an amino-acid letter",
        where=where,
        fix=_LETTERS_FIX,
    )


def _not_fasta(line: str, source: str, number: int) -> InputError:
    if line.startswith(("#", "CLUSTAL")):
        return InputError(
            f"this looks like an alignment, not FASTA (the line is {line[:40]!r})",
            where=f"{source}:{number}",
            fix=_ALIGNED_FIX,
        )
    return InputError(
        f"not FASTA: expected a '>name' header line, found {line[:40]!r}",
        where=f"{source}:{number}",
        fix="start each sequence with a '>name' line",
    )
