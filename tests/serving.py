"""A real ``foldserve serve`` process on 127.0.0.1 for the service tests."""

from __future__ import annotations

import io
import itertools
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from foldserve.fold.weights import MODEL_NUMBERS, model_param_file
from foldserve.server import layout
from foldserve.server.store import JobStore

API_KEY = "test-key-0123456789"
SMALL_MSA = "msa/a3m/colabfold_Q60262_uniref_env_small.a3m"  # 62 residues, 6 rows
#: How long a held MSA (:func:`held_msas`) waits for its release, and a test for a fetch.
WAIT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT/v2/local
    data_dir: Path
    log: Path

    @property
    def root(self) -> str:
        return self.base.rsplit("/v2/", 1)[0]

    @property
    def store(self) -> JobStore:
        return JobStore(layout.database(self.data_dir))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {API_KEY}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=60, **kwargs)

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/status/{job_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def submit(self, job_input: dict[str, Any], **body: Any) -> str:
        response = self.request("POST", "/run", json={"input": job_input, **body})
        assert response.status_code == 200, response.text
        job_id: str = response.json()["id"]
        return job_id

    def wait_for(self, job_id: str, until: Any, timeout: float = 240) -> dict[str, Any]:
        """Poll until ``until(status_body)`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.status(job_id)
            if until(body):
                return body
            assert time.monotonic() < deadline, f"gave up waiting; last status {body}"
            time.sleep(0.2)

    def wait_finished(self, job_id: str, timeout: float = 240) -> dict[str, Any]:
        return self.wait_for(
            job_id, lambda b: b["status"] not in ("IN_QUEUE", "IN_PROGRESS"), timeout
        )

    def worker_pid(self, name: str = "worker-0") -> int:
        (row,) = [w for w in self.store.workers() if w.name == name]
        return row.pid

    def wait_idle_workers(self, count: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()}")
            try:
                health = self.request("GET", "/health").json()
                if health["workers"]["idle"] >= count:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextmanager
def running_server(
    data_dir: Path,
    params: Path,
    *extra: str,
    workers: int = 1,
    wait: bool = True,
    env: dict[str, str] | None = None,
    endpoint_id: str = "local",
) -> Iterator[Server]:
    """Start ``foldserve serve`` (with ``env`` added to its environment); stop it (SIGTERM) on
    the way out unless already dead."""
    port = free_port()
    log = data_dir.parent / f"{data_dir.name}-server-{port}.log"
    environment = {**os.environ, "FOLDSERVE_API_KEY": API_KEY, **(env or {})}
    command = [
        sys.executable, "-m", "foldserve.cli", "serve",
        "--port", str(port), "--data-dir", str(data_dir), "--params-dir", str(params),
        "--workers", str(workers), "--endpoint-id", endpoint_id, *extra,
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    server = Server(process, f"http://127.0.0.1:{port}/v2/{endpoint_id}", data_dir, log)
    try:
        if wait:
            server.wait_idle_workers(workers)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def until(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def small_job(data: Path, **options: Any) -> dict[str, Any]:
    """A job on the 62-residue Q60262 MSA, one model, one recycle unless told otherwise."""
    return {"msa": data.read_text(), "models": [1], "num_recycles": 1, **options}


@dataclass
class HeldMsa:
    """An MSA served over http whose response waits for :meth:`release`: a worker fetching it
    (``msa_url``) is held at a known point, after its "parse" report and before "features"."""

    url: str
    requested: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wait_requested(self) -> None:
        assert self.requested.wait(WAIT_S), "the worker never fetched the MSA"

    def release(self) -> None:
        self.released.set()


@dataclass
class MsaHolder:
    """An http server on 127.0.0.1 serving ``text``, each :meth:`hold` at its own path."""

    prefix: str  # http://127.0.0.1:PORT/
    held: dict[str, HeldMsa] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=itertools.count)

    def hold(self) -> HeldMsa:
        path = f"/held-{next(self._names)}.a3m"
        self.held[path] = HeldMsa(self.prefix + path.lstrip("/"))
        return self.held[path]


@contextmanager
def held_msas(text: str) -> Iterator[MsaHolder]:
    """A :class:`MsaHolder`; every MSA still held is released on the way out."""
    body = text.encode()
    holder: MsaHolder

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            msa = holder.held.get(self.path)
            if msa is None:
                self.send_error(404)
                return
            msa.requested.set()
            msa.released.wait(WAIT_S)
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker that asked was killed meanwhile

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder = MsaHolder(f"http://127.0.0.1:{http.server_address[1]}/")
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield holder
    finally:
        for msa in holder.held.values():
            msa.release()
        http.shutdown()
        http.server_close()


@contextmanager
def held_msa(text: str) -> Iterator[HeldMsa]:
    """One held MSA on a server of its own."""
    with held_msas(text) as holder:
        yield holder.hold()


def params_archive(test_params: Path, path: Path) -> Path:
    """The test weights packed as DeepMind's archive packs its own: the files at the top."""
    with tarfile.open(path, "w") as tar:
        for number in MODEL_NUMBERS:
            tar.add(model_param_file(test_params, number), arcname=f"params_model_{number}_ptm.npz")
        licence = b"test weights: random values, not DeepMind's\n"
        info = tarfile.TarInfo("LICENSE")
        info.size = len(licence)
        tar.addfile(info, io.BytesIO(licence))
    return path


class ArchiveServer(ThreadingHTTPServer):
    """Serves a params archive on 127.0.0.1, counting the GETs; each answer waits until
    ``released`` is set (``requested`` is set at the first GET), so a download can be held at a
    known point."""

    daemon_threads = True

    def __init__(self, archive: Path) -> None:
        super().__init__(("127.0.0.1", 0), _ArchiveHandler)
        self.archive = archive
        self.gets = 0
        self.lock = threading.Lock()
        self.requested = threading.Event()
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/alphafold_params_2022-12-06.tar"


class _ArchiveHandler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.gets += 1
        self.server.requested.set()
        self.server.released.wait(WAIT_S)
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(self.server.archive.stat().st_size))
            self.end_headers()
            with self.server.archive.open("rb") as archive:
                while block := archive.read(1 << 20):
                    self.wfile.write(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the downloader was stopped meanwhile


@contextmanager
def archive_server(archive: Path) -> Iterator[ArchiveServer]:
    """An :class:`ArchiveServer` running until the block ends (released on the way out)."""
    server = ArchiveServer(archive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
