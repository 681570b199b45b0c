"""OpenFold3's checkpoint beside AlphaFold2's parameters: fetched once per volume, verified.

``foldserve weights fetch --engine openfold3`` streams the checkpoint (an http(s) URL, by
default OpenFold3's public bucket, an ``s3://`` object or a local file) under the same
inter-process lock as AlphaFold2's weights, hashing it on the way into a temporary folder
beside ``PARAM_DIR/openfold3``, and renames that folder into place only once size and SHA-256
check out: workers starting together on one volume download it once, and a reader never sees
half a checkpoint. OpenFold3 publishes no checksum for its checkpoint, so unless the caller
gives ``--sha256``/``--size`` the values are recorded in ``SOURCE.json`` and ``SHA256SUMS``,
and ``weights check`` verifies against those from then on.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foldserve.errors import WeightsError
from foldserve.files import sha256_file
from foldserve.fold.openfold3.layout import (
    DEFAULT_CHECKPOINT_NAME,
    DEFAULT_CHECKPOINT_URL,
    TEST_WEIGHTS_MARKER,
    checkpoint_dir,
    installed_checkpoint,
    is_test_checkpoint,
)
from foldserve.fold.weights import (
    SOURCE_RECORD,
    FetchResult,
    MeteredStream,
    Progress,
    canonical_source,
    locked_install,
    open_weights_source,
    read_json,
    record_download,
    source_mismatch,
    verify_download,
)

_CHUNK = 1 << 20


def fetch_checkpoint(
    param_dir: Path,
    source: str = DEFAULT_CHECKPOINT_URL,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: Progress | None = None,
    connect_timeout: float = 10.0,
) -> FetchResult:
    """Install ``PARAM_DIR/openfold3/<checkpoint>.pt`` from ``source`` unless it already is."""
    expected_sha256 = expected_sha256.lower() if expected_sha256 else None
    source = canonical_source(source)
    return locked_install(
        param_dir,
        checkpoint_dir(param_dir),
        complete=lambda: (
            installed_checkpoint(param_dir) is not None and not is_test_checkpoint(param_dir)
        ),
        source=source,
        sha256=expected_sha256,
        size=expected_size,
        download=lambda new: _download(
            param_dir, new, source, expected_sha256, expected_size, progress, connect_timeout
        ),
    )


def _download(
    param_dir: Path,
    folder: Path,
    source: str,
    sha256: str | None,
    size: int | None,
    progress: Progress | None,
    connect_timeout: float,
) -> FetchResult:
    """Stream the checkpoint into ``folder``, hashing it; write its manifest and record."""
    folder.mkdir()
    target = folder / DEFAULT_CHECKPOINT_NAME
    with open_weights_source(
        source,
        connect_timeout,
        what="the OpenFold3 checkpoint",
        fix=f"download {DEFAULT_CHECKPOINT_URL} where the network allows and run `foldserve "
        "weights fetch --engine openfold3 --source /path/to/it`",
    ) as (chunks, total):
        if size is not None and total is not None and total != size:
            raise source_mismatch("checkpoint size", source, f"{size} bytes", f"{total} bytes")
        stream = MeteredStream(chunks, total, progress)
        try:
            with target.open("wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
        except OSError as exc:
            raise WeightsError(
                f"could not write the checkpoint into {param_dir}: {exc.strerror or exc}",
                fix="make room (the checkpoint takes about 2 GB) or choose another --params-dir",
            ) from exc
    verify_download(stream, source, "checkpoint", sha256, size)
    return record_download(
        param_dir, folder, source, stream, sha256, size, {target.name: stream.sha256.hexdigest()}
    )


@dataclass(frozen=True)
class CheckpointReport:
    """What :func:`check_checkpoint` found in ``PARAM_DIR/openfold3``."""

    folder: Path
    checkpoint: Path | None
    bytes: int | None
    #: Whether the checkpoint's SHA-256 is the one recorded when it was fetched; None without
    #: a record (test weights, or a checkpoint placed by hand).
    verified: bool | None
    source: dict[str, Any] | None
    test_weights_info: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.checkpoint is not None and self.verified is not False

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "ok": self.ok,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "bytes": self.bytes,
            "verified": self.verified,
            "source": self.source,
            "test_weights": self.test_weights_info is not None,
            "test_weights_info": self.test_weights_info,
        }


def check_checkpoint(param_dir: Path) -> CheckpointReport:
    """OpenFold3's checkpoint: present, its size, and its SHA-256 against the fetch's record."""
    folder = checkpoint_dir(param_dir)
    checkpoint = installed_checkpoint(param_dir)
    source = read_json(folder / SOURCE_RECORD)
    marker = read_json(folder / TEST_WEIGHTS_MARKER)
    recorded = source.get("archive_sha256") if source and marker is None else None
    verified = None
    if checkpoint is not None and isinstance(recorded, str):
        verified = sha256_file(checkpoint) == recorded
    return CheckpointReport(
        folder=folder,
        checkpoint=checkpoint,
        bytes=checkpoint.stat().st_size if checkpoint is not None else None,
        verified=verified,
        source=source,
        test_weights_info=marker,
    )
