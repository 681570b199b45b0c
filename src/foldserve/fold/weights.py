"""AlphaFold2 weights: where they live, fetching them once per volume, checking them.

``PARAM_DIR/params/params_model_{N}_ptm.npz`` is the layout of DeepMind's params archive, which
also holds the AlphaFold2-multimer v3 models as ``params_model_{N}_multimer_v3.npz``.
:func:`fetch` streams the archive under an inter-process lock, hashing it and unpacking it in
the same pass into a temporary folder beside ``params`` (so the 5.3 GB archive never sits on
disk next to its contents), and renames the result into place only once the archive's size and
SHA-256 check out. :func:`check` says what is there and whether it still matches the
``SHA256SUMS`` written at install.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from filelock import FileLock

from foldserve import remote
from foldserve.errors import WeightsError
from foldserve.files import sha256_file, write_hashed, write_text
from foldserve.remote import Opened

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

DEFAULT_PARAMS_URL = "https://storage.googleapis.com/alphafold/alphafold_params_2022-12-06.tar"
# Size and SHA-256 of that archive as recorded by MSDLLCpapers/ovo (ovo/cli/init.py) and, with
# the byte count, by several independent pipelines that read the archive byte for byte.
DEFAULT_PARAMS_SIZE = 5_587_968_000
DEFAULT_PARAMS_SHA256 = "36d4b0220f3c735f3296d301152b738c9776d16981d054845a68a1370b26cfe3"

MODEL_NUMBERS = (1, 2, 3, 4, 5)
TEST_WEIGHTS_MARKER = "TEST_WEIGHTS.json"
MANIFEST = "SHA256SUMS"
SOURCE_RECORD = "SOURCE.json"

_LOCK = ".fetch.lock"
INCOMING_PREFIX = ".incoming-"
OUTGOING_PREFIX = ".outgoing-"
_RESERVED = frozenset({MANIFEST, SOURCE_RECORD, TEST_WEIGHTS_MARKER})
_CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]


def resolve_param_dir(explicit: Path | None = None) -> Path:
    """The ``--params-dir`` flag, else ``$PARAM_DIR``, else ``~/.cache/foldserve``."""
    return Path(explicit or os.environ.get("PARAM_DIR") or "~/.cache/foldserve").expanduser()


def model_param_file(param_dir: Path, model_number: int) -> Path:
    return param_dir / "params" / f"params_model_{model_number}_ptm.npz"


def multimer_param_file(param_dir: Path, model_number: int) -> Path:
    return param_dir / "params" / f"params_model_{model_number}_multimer_v3.npz"


def is_test_weights(param_dir: Path) -> bool:
    """Whether ``params`` holds random test weights rather than DeepMind's."""
    return (param_dir / "params" / TEST_WEIGHTS_MARKER).is_file()


def fingerprint(param_dir: Path) -> str:
    """A short hash that names the AlphaFold2 weights in ``param_dir``
    (:func:`folder_fingerprint` of ``params``)."""
    return folder_fingerprint(param_dir / "params", "*.npz")


def folder_fingerprint(folder: Path, pattern: str) -> str:
    """A short hash that names a weights folder's contents: its ``SHA256SUMS`` manifest when it
    has one (weights installed by a fetch), else the test-weights marker and the sizes of the
    files matching ``pattern`` (cheap: no weight file is read)."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        text = manifest.read_bytes()
    else:
        marker = folder / TEST_WEIGHTS_MARKER
        sizes = {p.name: p.stat().st_size for p in sorted(folder.glob(pattern))}
        text = (marker.read_bytes() if marker.is_file() else b"") + json.dumps(sizes).encode()
    return hashlib.sha256(text).hexdigest()[:16]


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` installed, or found installed.

    The fields after ``downloaded`` are ``SOURCE.json``; ``*_verified`` says whether a value was
    compared with an expected one or only recorded.
    """

    param_dir: Path
    downloaded: bool
    source: str
    archive_sha256: str
    archive_bytes: int
    sha256_verified: bool
    size_verified: bool
    fetched_at: str


def fetch(
    param_dir: Path,
    source: str = DEFAULT_PARAMS_URL,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: Progress | None = None,
    connect_timeout: float = 10.0,
) -> FetchResult:
    """Install ``param_dir/params`` from the params archive at ``source``, unless it already is.

    ``source`` is an http(s) URL, ``s3://bucket/key`` or a local file (path or ``file://``).
    Without expected values, the published size and checksum apply to the default URL only;
    for other sources the archive's are recorded, not checked. Processes fetching into one
    folder at once download once: the others wait on the lock and then find the install.
    ``progress(done, total)`` follows the bytes read.
    """
    if source == DEFAULT_PARAMS_URL:
        expected_sha256 = expected_sha256 or DEFAULT_PARAMS_SHA256
        expected_size = DEFAULT_PARAMS_SIZE if expected_size is None else expected_size
    expected_sha256 = expected_sha256.lower() if expected_sha256 else None
    source = canonical_source(source)
    return locked_install(
        param_dir,
        param_dir / "params",
        complete=lambda: (
            all(model_param_file(param_dir, n).is_file() for n in MODEL_NUMBERS)
            and not is_test_weights(param_dir)
        ),
        source=source,
        sha256=expected_sha256,
        size=expected_size,
        download=lambda new: _download(
            param_dir, new, source, expected_sha256, expected_size, progress, connect_timeout
        ),
    )


def locked_install(
    param_dir: Path,
    target: Path,
    *,
    complete: Callable[[], bool],
    source: str,
    sha256: str | None,
    size: int | None,
    download: Callable[[Path], FetchResult],
) -> FetchResult:
    """Every fetch's shape: under ``param_dir``'s lock, clear a killed fetch's leftovers, keep
    the install in ``target`` when it is ``complete()`` and came from what is asked for
    (:func:`recorded_install`; judged under the lock, as another process may have installed it
    while this one waited), else ``download`` into a temporary folder beside ``target`` and
    rename it into place (readers never see half of it)."""
    lock = fetch_lock(param_dir)
    try:
        remove_leftovers(param_dir)
        found = recorded_install(
            param_dir, target, complete=complete(), source=source, sha256=sha256, size=size
        )
        if found is not None:
            return found
        incoming = Path(tempfile.mkdtemp(prefix=INCOMING_PREFIX, dir=param_dir))
        try:
            new = incoming / target.name
            result = download(new)
            install_folder(new, target)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
    finally:
        lock.release()
    return result


def fetch_lock(param_dir: Path) -> FileLock:
    """Create ``param_dir`` and take its fetch lock, waiting while another process fetches."""
    try:
        param_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(param_dir / _LOCK)
        lock.acquire()
    except OSError as exc:
        raise WeightsError(
            f"cannot write to {param_dir} ({exc.strerror or exc})",
            fix="choose a writable folder with --params-dir or PARAM_DIR",
        ) from exc
    return lock


def canonical_source(source: str) -> str:
    """Local sources as absolute paths, so a recorded source names one file."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return str(Path(url2pathname(parsed.path)).resolve())
    if not parsed.scheme:
        return str(Path(source).expanduser().resolve())
    return source


def recorded_install(
    param_dir: Path,
    folder: Path,
    *,
    complete: bool,
    source: str,
    sha256: str | None,
    size: int | None,
) -> FetchResult | None:
    """The install in ``folder``, if it is ``complete`` and came from what is asked for.

    Judged from its ``SOURCE.json``: the download's checksum when one is expected, else its
    source. Re-hashing gigabytes on every worker start is what ``check`` is for.
    """
    record = read_json(folder / SOURCE_RECORD)
    if record is None or not complete:
        return None
    try:
        found = FetchResult(param_dir=param_dir, downloaded=False, **record)
    except TypeError:  # not a SOURCE.json foldserve wrote
        return None
    same = found.archive_sha256 == sha256 if sha256 else found.source == source
    return found if same and (size is None or size == found.archive_bytes) else None


def remove_leftovers(param_dir: Path) -> None:
    """Temporary folders of fetches that were killed; only called under the lock."""
    for entry in param_dir.iterdir():
        if entry.name.startswith((INCOMING_PREFIX, OUTGOING_PREFIX)):
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _download(
    param_dir: Path,
    dest: Path,
    source: str,
    sha256: str | None,
    size: int | None,
    progress: Progress | None,
    connect_timeout: float,
) -> FetchResult:
    """Stream, unpack and verify the archive into ``dest``; write its manifest and record."""
    dest.mkdir()
    with open_weights_source(
        source, connect_timeout, what="the AlphaFold2 weights", fix=_by_hand(param_dir)
    ) as (chunks, total):
        if size is not None and total is not None and total != size:
            raise source_mismatch("archive size", source, f"{size} bytes", f"{total} bytes")
        stream = MeteredStream(chunks, total, progress)
        try:
            with tarfile.open(fileobj=stream, mode="r|*", bufsize=_CHUNK) as tar:
                sums = _extract(tar, dest, source)
            stream.drain()
        except tarfile.TarError as exc:
            raise _bad_archive(source, f"it is not a readable tar archive ({exc})") from exc
        except OSError as exc:
            raise WeightsError(
                f"could not unpack the weights into {param_dir}: {exc.strerror or exc}",
                fix="make room (the weights take about 5.3 GB) or choose another --params-dir",
            ) from exc
    verify_download(stream, source, "archive", sha256, size)
    names = [model_param_file(param_dir, n).name for n in MODEL_NUMBERS]
    missing = [name for name in names if name not in sums]
    if missing:
        raise _bad_archive(source, f"it has no {', '.join(missing)}")
    result = record_download(param_dir, dest, source, stream, sha256, size, sums)
    return result


def verify_download(
    stream: MeteredStream, source: str, what: str, sha256: str | None, size: int | None
) -> None:
    """Refuse a download (``what``: archive, checkpoint) whose size or SHA-256 is not the one
    expected; nothing is installed then."""
    if size is not None and stream.bytes_read != size:
        raise source_mismatch(f"{what} size", source, f"{size} bytes", f"{stream.bytes_read} bytes")
    actual = stream.sha256.hexdigest()
    if sha256 is not None and actual != sha256:
        raise source_mismatch(f"{what} SHA-256", source, sha256, actual)


def record_download(
    param_dir: Path,
    folder: Path,
    source: str,
    stream: MeteredStream,
    sha256: str | None,
    size: int | None,
    sums: dict[str, str],
) -> FetchResult:
    """Write ``folder``'s ``SHA256SUMS`` (``sums``: each file's SHA-256 by name) and its
    ``SOURCE.json`` (what was downloaded, and whether its checksum and size were checked)."""
    result = FetchResult(
        param_dir=param_dir,
        downloaded=True,
        source=source,
        archive_sha256=stream.sha256.hexdigest(),
        archive_bytes=stream.bytes_read,
        sha256_verified=sha256 is not None,
        size_verified=size is not None,
        fetched_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    write_text(folder / MANIFEST, "".join(f"{sums[name]}  {name}\n" for name in sorted(sums)))
    record = {k: v for k, v in asdict(result).items() if k not in ("param_dir", "downloaded")}
    write_text(folder / SOURCE_RECORD, json.dumps(record, indent=2) + "\n")
    return result


def _by_hand(param_dir: Path) -> str:
    return (
        f"download {DEFAULT_PARAMS_URL} where the network allows and run `foldserve weights "
        "fetch --source /path/alphafold_params_2022-12-06.tar`, or extract it so that "
        f"{model_param_file(param_dir, 1)} exists"
    )


def source_mismatch(what: str, source: str, expected: str, actual: str) -> WeightsError:
    return WeightsError(
        f"{what} mismatch: expected {expected}, got {actual}; nothing was installed",
        where=source,
        fix="fetch it again, or give the right --sha256/--size for this source",
    )


def _bad_archive(source: str, why: str) -> WeightsError:
    return WeightsError(
        f"not the AlphaFold2 params archive: {why}; nothing was installed",
        where=source,
        fix="give alphafold_params_2022-12-06.tar as published by DeepMind",
    )


@contextlib.contextmanager
def open_weights_source(
    source: str, connect_timeout: float, *, what: str, fix: str
) -> Iterator[Opened]:
    """The archive's bytes and, when known, its size; failures, even mid-stream, as one line."""
    if not remote.supported(source):
        raise WeightsError(
            "cannot fetch from this kind of source",
            where=source,
            fix="give an http(s):// or s3:// URL or a local file",
        )
    try:
        with remote.open_source(source, connect_timeout=connect_timeout) as opened:
            yield opened
    except remote.SourceFailed as exc:
        raise WeightsError(
            f"could not fetch {what} ({exc})", where=source, fix=fix
        ) from exc.__cause__


class MeteredStream(io.RawIOBase):
    """The archive as it arrives, hashed and counted on its way into :mod:`tarfile`."""

    def __init__(
        self, chunks: Iterator[bytes], total: int | None, progress: Progress | None
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._total = total
        self._progress = progress
        self._pending = memoryview(b"")
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        if progress:
            progress(0, total)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if not self._pending:
            self._pending = memoryview(self._next())
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def drain(self) -> None:
        """Read to the end: the checksum covers the padding after the tar's end marker too."""
        self._pending = memoryview(b"")
        while self._next():
            pass

    def _next(self) -> bytes:
        for chunk in self._chunks:
            if chunk:
                self.sha256.update(chunk)
                self.bytes_read += len(chunk)
                if self._progress:
                    self._progress(self.bytes_read, self._total)
                return chunk
        return b""


def _extract(tar: tarfile.TarFile, dest: Path, source: str) -> dict[str, str]:
    """Write the archive's files into ``dest``, flat; their SHA-256 by name."""
    sums: dict[str, str] = {}
    for member in tar:
        name = _member_name(member, source)
        if name is None:
            continue
        if name in sums:
            raise _bad_archive(source, f"it holds {name} twice")
        data = tar.extractfile(member)
        assert data is not None, "a regular file always has data"
        blocks = iter(functools.partial(data.read, _CHUNK), b"")
        sums[name] = write_hashed(dest / name, blocks, fsync=True)
    return sums


def _member_name(member: tarfile.TarInfo, source: str) -> str | None:
    """The file name a member installs as, None for a folder entry; refuses anything else.

    DeepMind's archive holds its files at the top level; a ``params/`` prefix is accepted too.
    """
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        raise _bad_archive(source, f"member {member.name!r} points outside the folder")
    if parts[:1] == ("params",):
        parts = parts[1:]
    if member.isdir() and not parts:
        return None
    if not member.isfile() or len(parts) != 1 or parts[0] in _RESERVED:
        raise _bad_archive(source, f"member {member.name!r} is not a plain file at the top")
    return parts[0]


def install_folder(new: Path, params: Path) -> None:
    """Put ``new`` in place of ``params`` by rename: readers never see a mix of two sets.

    An old ``params`` (test weights, an earlier install) moves aside first, so for an instant
    there is none, and is deleted only once the new one is in place; if that rename fails the
    old one moves back.
    """
    if not params.exists() and not params.is_symlink():
        new.rename(params)
        return
    old = params.with_name(f"{OUTGOING_PREFIX}{uuid.uuid4().hex}")
    params.rename(old)
    try:
        new.rename(params)
    except BaseException:
        old.rename(params)
        raise
    _remove(old)


@dataclass(frozen=True)
class ModelFile:
    """One model's parameter file; ``verified`` is None when no SHA256SUMS entry exists."""

    number: int
    path: Path
    present: bool
    bytes: int | None
    verified: bool | None


@dataclass(frozen=True)
class WeightsReport:
    """What :func:`check` found in ``param_dir/params``.

    ``models`` are the five pTM files, present or not; ``multimer_models`` only the multimer v3
    files that are present, since monomer predictions do without them.
    """

    param_dir: Path
    models: tuple[ModelFile, ...]
    manifest: bool
    source: dict[str, Any] | None
    test_weights: bool
    test_weights_info: dict[str, Any] | None
    multimer_models: tuple[ModelFile, ...] = ()

    @property
    def ok(self) -> bool:
        """All five pTM files present and none contradicting its checksum."""
        return all(model.present and model.verified is not False for model in self.models)

    @property
    def multimer_ok(self) -> bool:
        """All five multimer v3 files present and none contradicting its checksum."""
        return len(self.multimer_models) == len(MODEL_NUMBERS) and all(
            model.verified is not False for model in self.multimer_models
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "param_dir": str(self.param_dir),
            "ok": self.ok,
            "test_weights": self.test_weights,
            "test_weights_info": self.test_weights_info,
            "manifest": self.manifest,
            "source": self.source,
            "models": [_model_json(model) for model in self.models],
            "multimer_ok": self.multimer_ok,
            "multimer_models": [_model_json(model) for model in self.multimer_models],
        }


def _model_json(model: ModelFile) -> dict[str, Any]:
    return {
        "number": model.number,
        "file": str(model.path),
        "present": model.present,
        "bytes": model.bytes,
        "verified": model.verified,
    }


def check(param_dir: Path) -> WeightsReport:
    """Presence, size and checksum of each pTM model file (and of the multimer v3 files that are
    there), the source and the test marker."""
    params = param_dir / "params"
    sums = _read_manifest(params / MANIFEST)
    multimer = (
        _check_file(multimer_param_file(param_dir, n), n, sums or {}) for n in MODEL_NUMBERS
    )
    return WeightsReport(
        param_dir=param_dir,
        models=tuple(
            _check_file(model_param_file(param_dir, n), n, sums or {}) for n in MODEL_NUMBERS
        ),
        multimer_models=tuple(model for model in multimer if model.present),
        manifest=sums is not None,
        source=read_json(params / SOURCE_RECORD),
        test_weights=is_test_weights(param_dir),
        test_weights_info=read_json(params / TEST_WEIGHTS_MARKER),
    )


def _check_file(path: Path, number: int, sums: dict[str, str]) -> ModelFile:
    if not path.is_file():
        return ModelFile(number, path, present=False, bytes=None, verified=None)
    expected = sums.get(path.name)
    verified = None if expected is None else sha256_file(path) == expected
    return ModelFile(number, path, present=True, bytes=path.stat().st_size, verified=verified)


def _read_manifest(path: Path) -> dict[str, str] | None:
    """``sha256sum`` output (``HEX  NAME`` or ``HEX *NAME``) as ``{name: hex}``."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    sums = {}
    for line in lines:
        digest, _, name = line.partition(" ")
        if name:
            sums[name.lstrip(" *")] = digest.lower()
    return sums


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
