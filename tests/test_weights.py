"""AlphaFold2 weights: fetched from a real HTTP server, moto's S3 server and local files.

The archives are made here: DeepMind's layout (``params_model_{N}_ptm.npz`` at the top, one
non-pTM model, a LICENSE) filled with tiny numpy arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import socket
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from foldserve.cli import exit_code_for
from foldserve.cli.weights import app as weights_app
from foldserve.errors import InputError, WeightsError
from foldserve.fold.weights import (
    MANIFEST,
    MODEL_NUMBERS,
    SOURCE_RECORD,
    TEST_WEIGHTS_MARKER,
    FetchResult,
    check,
    fetch,
    is_test_weights,
    model_param_file,
    multimer_param_file,
    resolve_param_dir,
)

BY_HAND = "foldserve weights fetch --source /path/alphafold_params_2022-12-06.tar"


@dataclass(frozen=True)
class Archive:
    path: Path
    data: bytes
    sha256: str
    files: dict[str, bytes]


def npz(value: float) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, weights=np.full((3, 4), value, dtype=np.float32))
    return buffer.getvalue()


def official_files() -> dict[str, bytes]:
    files = {f"params_model_{n}_ptm.npz": npz(n) for n in MODEL_NUMBERS}
    files["params_model_1.npz"] = npz(-1.0)
    files["LICENSE"] = b"Attribution 4.0 International\n"
    return files


def make_archive(
    path: Path,
    files: dict[str, bytes],
    *,
    prefix: str = "",
    extra: tuple[tarfile.TarInfo, ...] = (),
) -> Archive:
    with tarfile.open(path, "w") as tar:
        for info in extra:
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    return Archive(path, data, hashlib.sha256(data).hexdigest(), files)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    folder = tmp_path_factory.mktemp("archive")
    return make_archive(folder / "alphafold_params_2022-12-06.tar", official_files())


class ArchiveServer(ThreadingHTTPServer):
    """Serves one archive whole, slowly, cut off halfway, or not at all; counts requests."""

    daemon_threads = True
    slow_steps = 20
    slow_delay = 0.1

    def __init__(self, archive: bytes) -> None:
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.archive = archive
        self.hits: Counter[str] = Counter()
        self.hits_lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients killed mid-download are part of the tests, not errors."""


class ArchiveHandler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        with self.server.hits_lock:
            self.server.hits[self.path] += 1
        if self.path == "/missing.tar":
            self.send_error(404)
            return
        data = self.server.archive
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.path == "/drop.tar":
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        elif self.path == "/slow.tar":
            step = len(data) // self.server.slow_steps + 1
            for start in range(0, len(data), step):
                self.wfile.write(data[start : start + step])
                self.wfile.flush()
                time.sleep(self.server.slow_delay)
        else:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def server(archive: Archive) -> Iterator[ArchiveServer]:
    httpd = ArchiveServer(archive.data)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def leftovers(param_dir: Path) -> list[Path]:
    return [*param_dir.glob(".incoming-*"), *param_dir.glob(".outgoing-*")]


def assert_installed(param_dir: Path, archive: Archive) -> None:
    for name, data in archive.files.items():
        assert (param_dir / "params" / name).read_bytes() == data
    report = check(param_dir)
    assert report.ok
    assert [model.verified for model in report.models] == [True] * len(MODEL_NUMBERS)
    assert not leftovers(param_dir)


# Fetching over HTTP


def test_fetch_installs_and_check_verifies(
    server: ArchiveServer, archive: Archive, tmp_path: Path
) -> None:
    seen: list[tuple[int, int | None]] = []
    result = fetch(
        tmp_path,
        server.url("/params.tar"),
        expected_sha256=archive.sha256,
        expected_size=len(archive.data),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.downloaded
    assert (result.sha256_verified, result.size_verified) == (True, True)
    assert (result.archive_sha256, result.archive_bytes) == (archive.sha256, len(archive.data))
    assert seen[0] == (0, len(archive.data))
    assert seen[-1] == (len(archive.data), len(archive.data))
    assert_installed(tmp_path, archive)
    manifest = (tmp_path / "params" / MANIFEST).read_text().splitlines()
    assert len(manifest) == len(archive.files)
    record = json.loads((tmp_path / "params" / SOURCE_RECORD).read_text())
    assert record["source"] == server.url("/params.tar")
    assert record["archive_sha256"] == archive.sha256


def test_a_second_fetch_finds_the_install(
    server: ArchiveServer, archive: Archive, tmp_path: Path
) -> None:
    url = server.url("/params.tar")
    assert fetch(tmp_path, url).downloaded
    again = fetch(tmp_path, url)
    assert not again.downloaded
    assert again.archive_sha256 == archive.sha256
    # Another source with the expected checksum names the same archive: nothing to do.
    assert not fetch(tmp_path, str(archive.path), expected_sha256=archive.sha256).downloaded
    assert server.hits["/params.tar"] == 1


def test_wrong_checksum_is_refused(server: ArchiveServer, archive: Archive, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(WeightsError) as caught:
        fetch(tmp_path, server.url("/params.tar"), expected_sha256=wrong)
    message = caught.value.one_line()
    assert wrong in message
    assert archive.sha256 in message
    assert not (tmp_path / "params").exists()
    assert not leftovers(tmp_path)


def test_wrong_size_is_refused(server: ArchiveServer, archive: Archive, tmp_path: Path) -> None:
    expected = len(archive.data) + 512
    with pytest.raises(WeightsError) as caught:
        fetch(tmp_path, server.url("/params.tar"), expected_size=expected)
    message = caught.value.one_line()
    assert f"expected {expected} bytes, got {len(archive.data)} bytes" in message
    assert not (tmp_path / "params").exists()


def test_dropped_connection_installs_nothing(server: ArchiveServer, tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as caught:
        fetch(tmp_path, server.url("/drop.tar"))
    assert "could not fetch" in caught.value.one_line()
    assert BY_HAND in caught.value.one_line()
    assert not (tmp_path / "params").exists()
    assert not leftovers(tmp_path)


def test_http_error_is_named(server: ArchiveServer, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="HTTP 404"):
        fetch(tmp_path, server.url("/missing.tar"))


@pytest.mark.parametrize("kind", ["closed port", "unresolvable host"])
def test_unreachable_source_fails_fast_with_the_manual_route(kind: str, tmp_path: Path) -> None:
    if kind == "closed port":
        url = f"http://127.0.0.1:{closed_port()}/alphafold_params_2022-12-06.tar"
    else:
        url = "http://weights.invalid/alphafold_params_2022-12-06.tar"
    started = time.monotonic()
    with pytest.raises(WeightsError) as caught:
        fetch(tmp_path, url)
    assert time.monotonic() - started < 15
    message = caught.value.one_line()
    assert message.startswith(f"{url}: could not fetch the AlphaFold2 weights")
    assert BY_HAND in message
    assert str(model_param_file(tmp_path, 1)) in message
    assert not (tmp_path / "params").exists()


def test_fetch_replaces_test_weights(
    server: ArchiveServer, archive: Archive, tmp_path: Path
) -> None:
    (tmp_path / "params").mkdir()
    for number in MODEL_NUMBERS:
        model_param_file(tmp_path, number).write_bytes(b"random")
    (tmp_path / "params" / TEST_WEIGHTS_MARKER).write_text('{"test_weights": true}')
    assert is_test_weights(tmp_path)
    assert fetch(tmp_path, server.url("/params.tar")).downloaded
    assert not is_test_weights(tmp_path)
    assert_installed(tmp_path, archive)


# Processes


def fetch_together(
    fetcher: Callable[[Path, str], FetchResult],
    param_dir: str,
    url: str,
    start: Barrier,
    downloaded: Queue[bool],
) -> None:
    """Run in a spawned process: wait for the others, fetch, say whether this one downloaded."""
    start.wait(timeout=60)
    downloaded.put(fetcher(Path(param_dir), url).downloaded)


def downloads_together(
    fetcher: Callable[[Path, str], FetchResult], param_dir: Path, url: str, processes: int
) -> list[bool]:
    """``processes`` spawned processes fetch ``url`` into ``param_dir`` at once; whether each
    downloaded, sorted (one True: the others found its install)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    downloaded: Queue[bool] = context.Queue()
    workers = [
        context.Process(
            target=fetch_together, args=(fetcher, str(param_dir), url, start, downloaded)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * processes
    return sorted(downloaded.get(timeout=5) for _ in workers)


def fetch_alone(param_dir: str, url: str) -> None:
    fetch(Path(param_dir), url)


def test_four_processes_download_once(
    server: ArchiveServer, archive: Archive, tmp_path: Path
) -> None:
    url = server.url("/slow.tar")
    assert downloads_together(fetch, tmp_path, url, 4) == [False, False, False, True]
    assert server.hits["/slow.tar"] == 1
    assert_installed(tmp_path, archive)


def test_a_killed_fetch_leaves_no_params_and_the_next_one_cleans_up(
    server: ArchiveServer, archive: Archive, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    worker = context.Process(target=fetch_alone, args=(str(tmp_path), server.url("/slow.tar")))
    worker.start()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".incoming-*/params/*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.kill()
    worker.join()
    assert list(tmp_path.glob(".incoming-*")), "the fetch was killed before it began unpacking"
    assert not (tmp_path / "params").exists()
    assert fetch(tmp_path, server.url("/params.tar")).downloaded
    assert_installed(tmp_path, archive)


# Other sources


def test_local_file_by_path_and_by_url(archive: Archive, tmp_path: Path) -> None:
    by_path = fetch(tmp_path / "a", str(archive.path))
    assert by_path.downloaded
    assert by_path.source == str(archive.path.resolve())
    assert not by_path.sha256_verified  # recorded only: no expected value for this source
    assert by_path.archive_sha256 == archive.sha256
    assert_installed(tmp_path / "a", archive)
    by_url = fetch(tmp_path / "b", archive.path.as_uri(), expected_sha256=archive.sha256.upper())
    assert by_url.sha256_verified
    assert_installed(tmp_path / "b", archive)


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="No such file") as caught:
        fetch(tmp_path / "p", str(tmp_path / "nowhere.tar"))
    assert BY_HAND in caught.value.one_line()


def test_unwritable_param_dir(archive: Archive, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WeightsError, match="cannot write to"):
        fetch(tmp_path / "file" / "weights", str(archive.path))


def test_params_prefixed_archive(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("params")
    folder.type = tarfile.DIRTYPE
    prefixed = make_archive(tmp_path / "p.tar", official_files(), prefix="params/", extra=(folder,))
    fetch(tmp_path / "w", str(prefixed.path))
    assert_installed(tmp_path / "w", prefixed)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    settings = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "BUCKET_ENDPOINT_URL": endpoint,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield endpoint
    server.stop()


def test_s3_source(s3_endpoint: str, archive: Archive, tmp_path: Path) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="weights")
    client.put_object(Bucket="weights", Key="af2/params.tar", Body=archive.data)
    result = fetch(tmp_path, "s3://weights/af2/params.tar", expected_sha256=archive.sha256)
    assert result.downloaded
    assert result.sha256_verified
    assert_installed(tmp_path, archive)
    with pytest.raises(WeightsError, match="NoSuchKey"):
        fetch(tmp_path / "other", "s3://weights/af2/nothing.tar")


# Archives that are not the params archive


def unsafe_member(kind: str) -> tarfile.TarInfo:
    if kind == "symlink":
        info = tarfile.TarInfo("params_model_1.npz")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        return info
    name = {"parent": "../evil.npz", "absolute": "/tmp/evil.npz", "nested": "sub/evil.npz"}
    return tarfile.TarInfo(name.get(kind, MANIFEST))


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink", "nested", "reserved name"])
def test_unsafe_archives_are_refused(kind: str, tmp_path: Path) -> None:
    bad = make_archive(tmp_path / "bad.tar", official_files(), extra=(unsafe_member(kind),))
    with pytest.raises(WeightsError, match="not the AlphaFold2 params archive"):
        fetch(tmp_path / "w", str(bad.path))
    assert not (tmp_path / "w" / "params").exists()
    assert not (tmp_path / "evil.npz").exists()
    assert not leftovers(tmp_path / "w")


def test_archive_without_the_models_is_refused(tmp_path: Path) -> None:
    files = official_files()
    del files["params_model_4_ptm.npz"]
    partial = make_archive(tmp_path / "partial.tar", files)
    with pytest.raises(WeightsError, match=r"it has no params_model_4_ptm\.npz"):
        fetch(tmp_path / "w", str(partial.path))
    assert not (tmp_path / "w" / "params").exists()


def test_a_file_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.tar"
    page.write_text("<html>quota exceeded</html>" * 40)
    with pytest.raises(WeightsError, match="not a readable tar archive"):
        fetch(tmp_path / "w", str(page))


# Checking


@pytest.fixture
def installed(archive: Archive, tmp_path: Path) -> Path:
    fetch(tmp_path, str(archive.path), expected_sha256=archive.sha256)
    return tmp_path


def test_check_reports_missing_and_corrupted_files(installed: Path) -> None:
    model_param_file(installed, 5).unlink()
    corrupted = model_param_file(installed, 3)
    data = bytearray(corrupted.read_bytes())
    data[-20] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    report = check(installed)
    models = {model.number: model for model in report.models}
    assert (models[5].present, models[5].bytes, models[5].verified) == (False, None, None)
    assert (models[3].present, models[3].verified) == (True, False)
    assert models[1].verified is True
    assert not report.ok
    assert json.loads(json.dumps(report.to_json()))["ok"] is False


def test_check_of_files_placed_by_hand(archive: Archive, tmp_path: Path) -> None:
    (tmp_path / "params").mkdir()
    for name, data in archive.files.items():
        (tmp_path / "params" / name).write_bytes(data)
    report = check(tmp_path)
    assert report.ok
    assert not report.manifest
    assert report.source is None
    assert [model.verified for model in report.models] == [None] * 5


def test_check_reports_test_weights(tmp_path: Path) -> None:
    (tmp_path / "params").mkdir()
    for number in MODEL_NUMBERS:
        model_param_file(tmp_path, number).write_bytes(npz(0.0))
    (tmp_path / "params" / TEST_WEIGHTS_MARKER).write_text('{"test_weights": true, "seed": 7}')
    report = check(tmp_path)
    assert report.test_weights
    assert report.test_weights_info == {"test_weights": True, "seed": 7}
    assert report.ok
    assert report.to_json()["test_weights"] is True


def test_fetch_keeps_the_multimer_files_and_check_verifies_them(tmp_path: Path) -> None:
    files = official_files() | {
        f"params_model_{n}_multimer_v3.npz": npz(10.0 + n) for n in MODEL_NUMBERS
    }
    multimer = make_archive(tmp_path / "params.tar", files)
    fetch(tmp_path / "install", str(multimer.path), expected_sha256=multimer.sha256)
    assert_installed(tmp_path / "install", multimer)
    manifest = (tmp_path / "install" / "params" / MANIFEST).read_text()
    assert "params_model_3_multimer_v3.npz" in manifest
    report = check(tmp_path / "install")
    assert report.multimer_ok
    assert [m.verified for m in report.multimer_models] == [True] * len(MODEL_NUMBERS)
    corrupted = multimer_param_file(tmp_path / "install", 2)
    data = bytearray(corrupted.read_bytes())
    data[-20] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    multimer_param_file(tmp_path / "install", 4).unlink()
    report = check(tmp_path / "install")
    # Monomer predictions need only the pTM files: those stay ok.
    assert report.ok and not report.multimer_ok
    assert [(m.number, m.verified) for m in report.multimer_models] == [
        (1, True),
        (2, False),
        (3, True),
        (5, True),
    ]
    table = runner.invoke(weights_app, ["check", "--params-dir", str(tmp_path / "install")])
    assert table.exit_code == 0, table.output
    assert "params_model_2_multimer_v3.npz" in table.stdout and "MISMATCH" in table.stdout
    assert "multimer v3 files are incomplete" in table.stderr


def test_check_of_an_empty_folder(tmp_path: Path) -> None:
    report = check(tmp_path / "nothing here")
    assert not report.ok
    assert not any(model.present for model in report.models)
    assert not report.test_weights


def test_resolve_param_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PARAM_DIR", raising=False)
    assert resolve_param_dir() == tmp_path / ".cache" / "foldserve"
    monkeypatch.setenv("PARAM_DIR", "~/weights")
    assert resolve_param_dir() == tmp_path / "weights"
    assert resolve_param_dir(Path("~/flag")) == tmp_path / "flag"


# Command line


runner = CliRunner()


def test_cli_fetch_and_check(server: ArchiveServer, archive: Archive, tmp_path: Path) -> None:
    fetched = runner.invoke(
        weights_app,
        ["fetch", "--source", server.url("/params.tar"), "--sha256", archive.sha256],
        env={"PARAM_DIR": str(tmp_path)},
    )
    assert fetched.exit_code == 0, fetched.output
    assert "installed" in fetched.stderr
    assert "(verified)" in fetched.stderr
    checked = runner.invoke(weights_app, ["check", "--params-dir", str(tmp_path), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["ok"] is True
    model_param_file(tmp_path, 2).unlink()
    table = runner.invoke(weights_app, ["check", "--params-dir", str(tmp_path)])
    assert table.exit_code == 1
    assert "params_model_2_ptm.npz" in table.stdout
    assert "missing" in table.stdout
    assert "not ok" in table.stdout


def test_cli_check_warns_of_test_weights(tmp_path: Path) -> None:
    (tmp_path / "params").mkdir()
    for number in MODEL_NUMBERS:
        model_param_file(tmp_path, number).write_bytes(npz(0.0))
    (tmp_path / "params" / TEST_WEIGHTS_MARKER).write_text('{"test_weights": true}')
    result = runner.invoke(weights_app, ["check", "--params-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "TEST weights" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sha256", "abc"], "--sha256: 'abc' is not a SHA-256 checksum"),
        (["--size", "0"], "--size: 0 is not an archive size"),
        (["--source", "http://weights.invalid/x.tar"], BY_HAND),
    ],
)
def test_cli_errors_are_user_input_errors(args: list[str], expected: str, tmp_path: Path) -> None:
    result = runner.invoke(weights_app, ["fetch", "--params-dir", str(tmp_path), *args])
    # A bad flag is an InputError, weights that cannot be fetched a WeightsError: both exit 2.
    assert isinstance(result.exception, InputError | WeightsError)
    assert exit_code_for(result.exception) == 2
    assert expected in result.exception.one_line()
