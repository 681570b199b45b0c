"""Fetching OpenFold3's checkpoint: once per volume, verified, atomic, from a loopback server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from foldserve.errors import WeightsError
from foldserve.fold.openfold3.layout import (
    DEFAULT_CHECKPOINT_NAME,
    TEST_WEIGHTS_MARKER,
    checkpoint_dir,
    installed_checkpoint,
    is_test_checkpoint,
)
from foldserve.fold.openfold3.weights import fetch_checkpoint
from tests.test_weights import ArchiveServer, downloads_together

CHECKPOINT = b"not really a torch checkpoint, but bytes to fetch\n" * 4000
SHA256 = hashlib.sha256(CHECKPOINT).hexdigest()

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    httpd = ArchiveServer(CHECKPOINT)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def installed_bytes(param_dir: Path) -> bytes:
    path = installed_checkpoint(param_dir)
    assert path is not None and path.name == DEFAULT_CHECKPOINT_NAME
    return path.read_bytes()


def test_fetch_installs_beside_alphafold2_and_a_second_fetch_finds_it(
    server: ArchiveServer, tmp_path: Path
) -> None:
    url = server.url("/of3.pt")
    first = fetch_checkpoint(tmp_path, url, expected_sha256=SHA256, expected_size=len(CHECKPOINT))
    assert first.downloaded and first.sha256_verified and first.size_verified
    assert installed_bytes(tmp_path) == CHECKPOINT
    assert (checkpoint_dir(tmp_path) / "SHA256SUMS").read_text().startswith(SHA256)
    again = fetch_checkpoint(tmp_path, url)
    assert not again.downloaded and again.archive_sha256 == SHA256
    assert server.hits["/of3.pt"] == 1
    assert not list(tmp_path.glob(".incoming-*"))


def test_a_wrong_checksum_installs_nothing(server: ArchiveServer, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="checkpoint SHA-256 mismatch"):
        fetch_checkpoint(tmp_path, server.url("/of3.pt"), expected_sha256="0" * 64)
    assert not checkpoint_dir(tmp_path).exists() and not list(tmp_path.glob(".incoming-*"))


def test_a_dropped_connection_installs_nothing(server: ArchiveServer, tmp_path: Path) -> None:
    with pytest.raises(WeightsError):
        fetch_checkpoint(tmp_path, server.url("/drop.tar"))
    assert installed_checkpoint(tmp_path) is None


def test_a_local_file_replaces_test_weights(tmp_path: Path) -> None:
    test_folder = checkpoint_dir(tmp_path / "params")
    test_folder.mkdir(parents=True)
    (test_folder / TEST_WEIGHTS_MARKER).write_text("{}\n")
    source = tmp_path / "downloaded.pt"
    source.write_bytes(CHECKPOINT)

    result = fetch_checkpoint(tmp_path / "params", str(source))

    assert result.downloaded and result.source == str(source.resolve())
    assert not is_test_checkpoint(tmp_path / "params")
    assert installed_bytes(tmp_path / "params") == CHECKPOINT


def test_workers_on_one_volume_download_once(server: ArchiveServer, tmp_path: Path) -> None:
    url = server.url("/slow.tar")
    assert downloads_together(fetch_checkpoint, tmp_path, url, 3) == [False, False, True]
    assert server.hits["/slow.tar"] == 1
    assert installed_bytes(tmp_path) == CHECKPOINT
