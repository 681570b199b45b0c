"""Writing files so that a reader never sees half of one, and hashing them.

Every file foldserve writes for someone else to read (a model, a job record, a downloaded
result, a cache record, the weights' manifest) goes through :func:`atomic_write`: the bytes go
to a hidden temporary file beside the target, are flushed, and only then renamed over it, so an
interrupted write leaves the old file (or none), never a truncated one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Literal, overload

CHUNK = 1 << 20


@overload
def atomic_write(
    target: Path, mode: Literal["w"] = "w", *, permissions: int | None = None, fsync: bool = False
) -> AbstractContextManager[IO[str]]: ...


@overload
def atomic_write(
    target: Path, mode: Literal["wb"], *, permissions: int | None = None, fsync: bool = False
) -> AbstractContextManager[IO[bytes]]: ...


def atomic_write(
    target: Path,
    mode: Literal["w", "wb"] = "w",
    *,
    permissions: int | None = None,
    fsync: bool = False,
) -> AbstractContextManager[IO[str]] | AbstractContextManager[IO[bytes]]:
    """A context manager giving a file to write; on a clean exit it replaces ``target``.

    Text is written as UTF-8. ``permissions`` (e.g. ``0o600`` for a file holding secrets) is set
    before any byte is written. On an exception the temporary file is removed and ``target`` is
    left as it was. The parent folder is created when missing. ``fsync`` puts the bytes on disk
    before the rename, so even a power cut cannot leave an empty file under the name: worth its
    cost only for files that are expensive to get again (the model weights).
    """
    return _atomic(Path(target), mode, permissions, fsync)  # type: ignore[return-value]  # the overloads narrow IO[str] | IO[bytes]


@contextmanager
def _atomic(
    target: Path, mode: str, permissions: int | None, fsync: bool
) -> Iterator[IO[str] | IO[bytes]]:
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        if permissions is not None:
            os.fchmod(descriptor, permissions)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str, *, permissions: int | None = None) -> Path:
    """Replace ``target`` with ``text`` (UTF-8), atomically; returns ``target``."""
    with atomic_write(target, permissions=permissions) as out:
        out.write(text)
    return target


def write_bytes(target: Path, data: bytes | Iterable[bytes]) -> Path:
    """Replace ``target`` with ``data`` (bytes, or chunks of them), atomically."""
    write_hashed(target, [data] if isinstance(data, bytes) else data)
    return target


def write_hashed(
    target: Path,
    chunks: Iterable[bytes],
    *,
    check: Callable[[str], None] | None = None,
    fsync: bool = False,
) -> str:
    """Replace ``target`` with ``chunks``, atomically, hashing them on the way; their SHA-256.

    A stream (a download, an archive member) is hashed as it is written rather than read back.
    ``check`` sees the digest before the rename: whatever it raises leaves ``target`` as it was
    (a download whose checksum is not the one promised never appears under its name).
    """
    digest = hashlib.sha256()
    with atomic_write(target, "wb", fsync=fsync) as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
        if check is not None:
            check(digest.hexdigest())
    return digest.hexdigest()


def copy_file(source: Path, target: Path) -> Path:
    """Copy ``source`` over ``target``, atomically; returns ``target``."""
    with source.open("rb") as reader, atomic_write(target, "wb") as out:
        shutil.copyfileobj(reader, out, CHUNK)
    return target


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex; read in chunks, so any size is fine."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
