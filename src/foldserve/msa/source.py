"""Opening an MSA source: a path, ``-`` for standard input, or an open binary file.

Compression (gzip, bzip2, xz) is recognised by its magic bytes, not the file name. The text is
handed on in large blocks with carriage returns and NUL bytes already removed, so the parsers
above never see Windows line endings or the NUL padding some tools leave at the end of a file
(unless NUL bytes are asked for: they separate the alignments of an MMseqs2 database).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from foldserve.errors import MsaError

#: Bytes read at a time. Small enough that a block and its cleaned copy stay in the caches and
#: the allocator reuses their memory block after block (1 MiB blocks read PF13354's 1 MiB file
#: in 5.5 ms, 256 KiB blocks in 4.6 ms; the 67 MiB bench file in 0.25 s and 0.22 s).
BLOCK_SIZE = 256 << 10
SNIFF_SIZE = 64 << 10

SourceLike = str | os.PathLike[str] | BinaryIO
COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".xz"})

_MAGIC: tuple[tuple[bytes, str, Callable[[io.BufferedReader], BinaryIO]], ...] = (
    (b"\x1f\x8b", "gzip", lambda raw: cast(BinaryIO, gzip.GzipFile(fileobj=raw))),
    (b"BZh", "bzip2", lambda raw: cast(BinaryIO, bz2.BZ2File(raw))),
    (b"\xfd7zXZ\x00", "xz", lambda raw: cast(BinaryIO, lzma.LZMAFile(raw))),  # noqa: SIM115
)


@dataclass
class TextBlocks:
    """Cleaned text of a source, as an iterator of byte blocks, plus what cleaning found."""

    name: str
    stream: BinaryIO
    compression: str | None = None
    size: int | None = None  # bytes of text to come, when known (an uncompressed file)
    keep_nul: bool = False
    removed_nul: int = 0
    _head: bytes = b""
    _head_taken: bool = field(default=False, repr=False)

    def head(self) -> bytes:
        """The first few kilobytes, for sniffing; they are still yielded by ``blocks``."""
        if not self._head and not self._head_taken:
            self._head = self._clean(self._read(SNIFF_SIZE))
        return self._head

    def blocks(self) -> Iterator[bytes]:
        head = self.head()
        self._head_taken = True
        if head:
            yield head
        while chunk := self._read(BLOCK_SIZE):
            chunk = self._clean(chunk)  # the raw text is freed now, not after the block's use
            yield chunk

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise MsaError(
                f"cannot decompress ({self.compression}): {exc}",
                source=self.name,
                fix="the compressed file looks truncated or corrupt; download it again",
            ) from None

    def _clean(self, data: bytes) -> bytes:
        if b"\r" in data:
            data = data.replace(b"\r", b"")
        if b"\x00" in data and not self.keep_nul:
            count = data.count(b"\x00")
            self.removed_nul += count
            data = data.replace(b"\x00", b"")
        return data

    def cleaning_warnings(self) -> list[str]:
        found = []
        if self.removed_nul:
            found.append(f"removed {self.removed_nul} NUL byte(s)")
        return found


def describe(source: SourceLike) -> str:
    if isinstance(source, str | os.PathLike):
        return "<stdin>" if str(source) == "-" else str(source)
    return str(getattr(source, "name", "<stream>"))


def file_stem(name: str) -> str:
    """The file's name without folders, compression and format suffixes: ``x/PF1.sto.gz`` is
    ``PF1``; standard input is ``stdin``."""
    if name == "<stdin>":
        return "stdin"
    path = Path(name)
    while path.suffix in COMPRESSED_SUFFIXES:
        path = path.with_suffix("")
    return path.stem


@contextmanager
def open_source(source: SourceLike, *, keep_nul: bool = False) -> Iterator[TextBlocks]:
    """Open ``source`` and yield its cleaned text blocks (NUL bytes kept when ``keep_nul``);
    decompress transparently."""
    name = describe(source)
    with ExitStack() as stack:
        raw: BinaryIO
        if isinstance(source, str | os.PathLike):
            if str(source) == "-":
                raw = sys.stdin.buffer
            else:
                try:
                    raw = stack.enter_context(open(source, "rb"))
                except IsADirectoryError:
                    raise MsaError(
                        "is a directory", source=name, fix="give the path of an MSA file"
                    ) from None
                except FileNotFoundError:
                    raise MsaError(
                        "no such file", source=name, fix="check the path and the spelling"
                    ) from None
                except PermissionError:
                    raise MsaError(
                        "permission denied", source=name, fix="make the file readable"
                    ) from None
        else:
            raw = source
        buffered = cast(
            io.BufferedReader,
            raw if hasattr(raw, "peek") else io.BufferedReader(cast(io.RawIOBase, raw)),
        )
        magic = buffered.peek(6)[:6]
        compression = None
        stream: BinaryIO = cast(BinaryIO, buffered)
        for prefix, label, opener in _MAGIC:
            if magic.startswith(prefix):
                compression = label
                stream = stack.enter_context(opener(buffered))
                break
        size = None
        if compression is None and isinstance(source, str | os.PathLike) and str(source) != "-":
            size = os.fstat(raw.fileno()).st_size
        yield TextBlocks(
            name=name, stream=stream, compression=compression, size=size, keep_nul=keep_nul
        )
