"""The files layer: a reader sees the old file or the new one, never half of one, and no
temporary file outlives a write."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from foldserve.files import (
    CHUNK,
    atomic_write,
    copy_file,
    sha256_file,
    write_bytes,
    write_hashed,
    write_text,
)

OLD = "old contents\n"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "record.json"
    path.write_text(OLD)
    return path


def test_readers_see_the_old_file_until_the_write_ends(target: Path) -> None:
    with atomic_write(target) as out:
        out.write("new ")
        out.flush()
        assert target.read_text() == OLD
        out.write("contents ✓\n")
    assert target.read_text(encoding="utf-8") == "new contents ✓\n"
    assert sorted(target.parent.iterdir()) == [target]


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    target: Path, failure: BaseException
) -> None:
    with pytest.raises(type(failure)), atomic_write(target, "wb") as out:
        out.write(b"half of the new")
        raise failure
    assert target.read_text() == OLD
    assert sorted(target.parent.iterdir()) == [target]


def test_a_write_into_a_new_folder_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "model.pdb"
    assert write_text(path, "END\n") == path
    assert path.read_text() == "END\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pdb"]


def test_permissions_are_set_before_the_first_byte(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    previous = os.umask(0o022)  # a umask that would make the file world-readable
    try:
        with atomic_write(path, permissions=0o600) as out:
            (temporary,) = tmp_path.iterdir()
            assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
            out.write('{"key": "not for others"}\n')
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_text(path, "{}\n", permissions=0o600)  # replacing keeps it private too
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_fsync_happens_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "params_model_1_ptm.npz"
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(path.exists())
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    write_hashed(path, [b"weights"], fsync=True)
    write_bytes(tmp_path / "scratch.bin", b"no fsync asked for")
    assert synced == [False]  # once, while the name still held nothing


def test_hashing_a_large_file(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 12345)  # several chunks and a ragged end
    path = write_bytes(tmp_path / "big.bin", [data[: CHUNK + 7], data[CHUNK + 7 :]])
    assert path.read_bytes() == data
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    copied = copy_file(path, tmp_path / "copy" / "big.bin")
    assert sha256_file(copied) == sha256_file(path)


def test_write_hashed_returns_the_digest_of_what_it_wrote(tmp_path: Path) -> None:
    chunks = [b"ATOM", b"  1", b"\n" * 5000]
    digest = write_hashed(tmp_path / "x.pdb", iter(chunks))
    assert digest == hashlib.sha256(b"".join(chunks)).hexdigest() == sha256_file(tmp_path / "x.pdb")


def test_a_check_that_refuses_the_digest_keeps_the_old_file(target: Path) -> None:
    seen: list[str] = []

    def check(digest: str) -> None:
        seen.append(digest)
        raise ValueError("not the checksum the job promised")

    with pytest.raises(ValueError, match="promised"):
        write_hashed(target, [b"damaged"], check=check)
    assert seen == [hashlib.sha256(b"damaged").hexdigest()]
    assert target.read_text() == OLD
    assert sorted(target.parent.iterdir()) == [target]


def test_copy_file_replaces_the_target_and_a_missing_source_keeps_it(
    target: Path, tmp_path: Path
) -> None:
    source = write_text(tmp_path / "ranked_0.pdb", "END\n")
    assert copy_file(source, target).read_text() == "END\n"
    with pytest.raises(FileNotFoundError):
        copy_file(tmp_path / "gone.pdb", target)
    assert target.read_text() == "END\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranked_0.pdb", "record.json"]
