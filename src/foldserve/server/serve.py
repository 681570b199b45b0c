"""``foldserve serve``: the job store, the worker pool and the HTTP API in one process tree."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from foldserve.errors import InputError
from foldserve.fold.predictor import Precision
from foldserve.jobs.output import DEFAULT_INLINE_LIMIT
from foldserve.server import layout
from foldserve.server.app import ApiSettings, create_app
from foldserve.server.pool import WorkerPool
from foldserve.server.store import JobStore
from foldserve.server.worker import WorkerSettings

log = logging.getLogger("foldserve.server")


@dataclass(frozen=True)
class ServeSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    endpoint_id: str = "local"
    params_dir: Path | None = None
    precision: Precision = "auto"
    retention: float = 24 * 3600.0
    inline_limit: int = DEFAULT_INLINE_LIMIT
    stop_grace: float = 30.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2/{self.endpoint_id}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth(host: str, api_keys: tuple[str, ...], no_auth: bool) -> tuple[str, ...]:
    """The keys to require; refuse to serve without keys anywhere but on loopback."""
    if no_auth:
        if not is_loopback(host):
            raise InputError(
                f"--no-auth on {host}, which other machines can reach",
                where="--no-auth",
                fix="use it only with --host 127.0.0.1, or set FOLDSERVE_API_KEY",
            )
        return ()
    if not api_keys:
        raise InputError(
            "no API key to protect the endpoint with",
            where="FOLDSERVE_API_KEY",
            fix="set FOLDSERVE_API_KEY (or api_keys under [serve] in "
            "~/.config/foldserve/config.toml); on 127.0.0.1 alone, --no-auth",
        )
    return api_keys


def serve(
    settings: ServeSettings,
    api_keys: tuple[str, ...],
    *,
    on_ready: Callable[[ServeSettings, int], None] | None = None,
) -> None:
    """Run until interrupted; jobs running at shutdown go back to the queue."""
    import uvicorn

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(layout.server_lock(settings.data_dir))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(
            "another foldserve serve is using this data directory",
            where=str(settings.data_dir),
            fix="stop it first, or give this server its own --data-dir",
        ) from None
    try:
        store = JobStore(layout.database(settings.data_dir))
        orphans = store.orphaned_jobs()
        for job_id in orphans:
            store.requeue_or_fail(job_id, "the server stopped while it ran")
        store.forget_workers()
        worker_settings = WorkerSettings(
            data_dir=settings.data_dir,
            endpoint_id=settings.endpoint_id,
            params_dir=settings.params_dir,
            precision=settings.precision,
            inline_limit=settings.inline_limit,
        )
        pool = WorkerPool(
            store,
            worker_settings,
            settings.workers,
            stop_grace=settings.stop_grace,
            retention=settings.retention,
            public_url=settings.url.rsplit("/v2/", 1)[0],
        )
        app = create_app(
            store,
            ApiSettings(
                endpoint_id=settings.endpoint_id, data_dir=settings.data_dir, api_keys=api_keys
            ),
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
        )
        pool.start()
        if on_ready is not None:
            on_ready(settings, len(orphans))
        try:
            server.run()
        finally:
            pool.stop()
    finally:
        lock.release()
