"""``foldserve serve``: the job store, the worker pool and the HTTP API in one process tree."""

from __future__ import annotations

import logging
from collections.abc import Callable

from filelock import FileLock, Timeout

from foldserve.errors import InputError
from foldserve.server import layout
from foldserve.server.app import create_app
from foldserve.server.pool import WorkerPool
from foldserve.server.settings import ServeSettings
from foldserve.server.store import SERVER_STOPPED, JobStore
from foldserve.server.supervisor import Backend, Supervisor

log = logging.getLogger("foldserve.server")

#: The most bytes of request line and headers read before a request is refused (400), so a
#: client without a key cannot make the server buffer a huge header. Bodies are limited apart.
MAX_HEADER_BYTES = 64 * 1024


def serve(
    settings: ServeSettings,
    api_keys: tuple[str, ...],
    *,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Run until interrupted; jobs running at shutdown go back to the queue.

    ``api_keys`` are those :func:`foldserve.server.auth.required_keys` allows. ``on_ready`` is
    told what runs the jobs and how many jobs that were running were put back in the queue.
    """
    import uvicorn

    from foldserve.graceful import GracefulServer  # uvicorn: only here

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
        store.check()
        orphans = store.orphaned_jobs()
        for job_id in orphans:
            store.requeue_or_fail(job_id, SERVER_STOPPED)
        store.forget_workers()
        supervisor = Supervisor(store, settings, _backend(store, settings))
        app = create_app(store, settings, api_keys)
        server = GracefulServer(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                # h11, not httptools: only h11 bounds what it buffers before the headers end.
                http="h11",
                h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            )
        )
        supervisor.start()
        if on_ready is not None:
            on_ready(supervisor.backend.describe(), len(orphans))
        try:
            server.run()
        finally:
            supervisor.stop()
    finally:
        lock.release()


def _backend(store: JobStore, settings: ServeSettings) -> Backend:
    if settings.backend == "ray":
        from foldserve.server.ray.backend import RayBackend  # Ray is an optional extra

        return RayBackend(store, settings)
    return WorkerPool(store, settings)
