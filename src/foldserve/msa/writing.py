"""Writing an ``Msa`` back out: A3M, aligned FASTA and Stockholm.

An ``Msa`` keeps its inserted residues, so nothing is lost: A3M gets them back as lower-case
letters; the aligned formats get insert columns (lower-case residues, '.' padding), the way
hmmalign lays out insert states, unless ``keep_insertions=False`` asks for query columns only.

Stockholm needs every row's name to be one word, unique within the alignment (HMMER's Easel
refuses the file otherwise), and A3M from ColabFold repeats names (``>101`` for each chain's
query): Stockholm gets names made valid and unique (see :func:`stockholm_names`), while FASTA
and A3M keep the names as they are.

The chain layout of a complex (``Msa.complex``) is written back as ColabFold's ``#`` first line
in A3M. Aligned FASTA and Stockholm have no place for it, and without it the rows read back as
one long chain, so writing a complex in those formats is refused rather than done silently.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from foldserve.errors import InputError
from foldserve.files import atomic_write
from foldserve.msa.alphabet import DOT
from foldserve.msa.colabfold import header_line
from foldserve.msa.model import Msa
from foldserve.msa.names import UniqueNames
from foldserve.msa.sniff import normalise_format
from foldserve.msa.source import COMPRESSED_SUFFIXES

CHUNK_ROWS = 4096
_WHITESPACE = re.compile(r"\s")


def a3m_row(msa: Msa, index: int) -> str:
    """Row ``index`` in A3M: query columns plus lower-case insertions before them."""
    text = msa.row(index)
    inserted = msa.insertions[index]
    if not inserted:
        return text
    counts = msa.deletions[index]
    pieces: list[str] = []
    previous = 0
    used = 0
    for column in np.flatnonzero(counts).tolist():
        count = int(counts[column])
        pieces.append(text[previous:column])
        pieces.append(inserted[used : used + count].decode("ascii"))
        previous, used = column, used + count
    pieces.append(text[previous:])
    return "".join(pieces)


def aligned_rows(msa: Msa, *, keep_insertions: bool = True) -> Iterator[str]:
    """Every row at one common width, insert columns laid out when ``keep_insertions``."""
    if not keep_insertions or not any(msa.insertions):
        yield from msa.rows()
        return
    widths = msa.deletions.max(axis=0).astype(np.int64)
    column_at = np.arange(msa.query_length) + np.cumsum(widths)
    insert_at = column_at - widths
    template = np.full(int(msa.query_length + widths.sum()), DOT, dtype=np.uint8)
    for start in range(0, len(msa), CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, len(msa))
        out = np.tile(template, (stop - start, 1))
        out[:, column_at] = msa.residues[start:stop]
        counts = msa.deletions[start:stop].astype(np.int64)
        rows, columns = np.nonzero(counts)
        per_cell = counts[rows, columns]
        offsets = np.arange(per_cell.sum()) - np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
        out[np.repeat(rows, per_cell), np.repeat(insert_at[columns], per_cell) + offsets] = (
            np.frombuffer(b"".join(msa.insertions[start:stop]), dtype=np.uint8)
        )
        for row in out:
            yield row.tobytes().decode("ascii")


def _header(name: str, description: str) -> str:
    return f">{name} {description}\n" if description else f">{name}\n"


def write_a3m(msa: Msa, out: TextIO, *, keep_insertions: bool = True) -> None:
    if msa.complex is not None:
        out.write(header_line(msa.complex))
    for index, (name, description) in enumerate(zip(msa.names, msa.descriptions, strict=True)):
        out.write(_header(name, description))
        out.write(a3m_row(msa, index) if keep_insertions else msa.row(index))
        out.write("\n")


def write_fasta(msa: Msa, out: TextIO, *, keep_insertions: bool = True) -> None:
    rows = aligned_rows(msa, keep_insertions=keep_insertions)
    for name, description, row in zip(msa.names, msa.descriptions, rows, strict=True):
        out.write(_header(name, description))
        out.write(row)
        out.write("\n")


def stockholm_names(names: Sequence[str]) -> list[str]:
    """``names`` as Stockholm row names: whitespace becomes '_', an empty name ``unnamed``, a
    name that would read as markup ('#...') or as the end ('//...') gets a leading '_', and a
    repeat gets ``_2``, ``_3``... (the first keeps its name; no new name takes one already in
    the list)."""
    valid = [_stockholm_name(name) for name in names]
    unique = UniqueNames(reserved=valid)
    return [unique.add(name) for name in valid]


def _stockholm_name(name: str) -> str:
    name = _WHITESPACE.sub("_", name)
    if not name:
        return "unnamed"
    return f"_{name}" if name.startswith(("#", "//")) else name


def write_stockholm(msa: Msa, out: TextIO, *, keep_insertions: bool = True) -> None:
    names = stockholm_names(msa.names)
    width = max(len(n) for n in names) + 2
    out.write("# STOCKHOLM 1.0\n")
    renamed = sum(new != old for new, old in zip(names, msa.names, strict=True))
    if renamed:
        out.write(
            f"#=GF CC foldserve renamed {renamed} row(s) to give each a unique one-word name: "
            "spaces became '_', a repeated name got _2, _3...\n"
        )
    for name, row in zip(names, aligned_rows(msa, keep_insertions=keep_insertions), strict=True):
        out.write(f"{name:<{width}}{row}\n")
    # After the rows: Easel orders rows by first mention, so '#=GS' lines above them would move
    # the rows with a description ahead of the query.
    for name, description in zip(names, msa.descriptions, strict=True):
        if description:
            out.write(f"#=GS {name:<{width - 6}} DE {description}\n")
    out.write("//\n")


WRITERS: dict[str, Callable[..., None]] = {
    "a3m": write_a3m,
    "fasta": write_fasta,
    "stockholm": write_stockholm,
}
_COMPRESSORS: dict[str, Callable[..., TextIO]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The output format named by a file's extension (``x.sto.gz`` is Stockholm)."""
    suffixes = [s for s in Path(path).suffixes if s not in COMPRESSED_SUFFIXES]
    if not suffixes:
        raise InputError(
            f"cannot tell the output format of {str(path)!r} from its name",
            where=str(path),
            fix="end the name in .a3m, .fasta or .sto, or pass --to a3m|fasta|sto",
        )
    return normalise_format(suffixes[-1])


def write(
    msa: Msa,
    destination: str | os.PathLike[str],
    *,
    format: str | None = None,
    keep_insertions: bool = True,
) -> str:
    """Write ``msa`` to a path (``-`` for standard output; .gz/.bz2/.xz compress) and return
    the format written. The file appears complete or not at all."""
    fmt = normalise_format(format) if format else format_for_path(destination)
    if fmt not in WRITERS:
        raise InputError(
            f"cannot write {fmt}",
            where="--to",
            fix=f"choose one of {', '.join(sorted(WRITERS))}",
        )
    if msa.complex is not None and fmt != "a3m":
        raise InputError(
            f"the MSA is of a {msa.complex.describe()}, and {fmt} has no place for its chains: "
            "they would read back as one chain",
            where=str(destination),
            fix="write A3M (a name ending in .a3m, or --to a3m), which keeps ColabFold's "
            "'#lengths<TAB>copies' first line",
        )
    writer = WRITERS[fmt]
    if str(destination) == "-":
        writer(msa, sys.stdout, keep_insertions=keep_insertions)
        return fmt
    path = Path(destination)
    opener = _COMPRESSORS.get(path.suffix)
    try:
        if not path.parent.is_dir():  # a typo in the folder, not a folder to create
            raise FileNotFoundError(errno.ENOENT, "no such directory")
        if opener is None:
            with atomic_write(path) as out:
                writer(msa, out, keep_insertions=keep_insertions)
        else:
            with atomic_write(path, "wb") as raw, opener(raw, "wt", encoding="utf-8") as out:
                writer(msa, out, keep_insertions=keep_insertions)
    except OSError as exc:
        raise InputError(
            f"cannot write: {exc.strerror or exc}",
            where=str(path),
            fix="check the directory exists and is writable",
        ) from None
    return fmt
