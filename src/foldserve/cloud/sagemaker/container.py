"""``foldserve serve --sagemaker``: SageMaker's inference container contract (bring your own
container), one process answering ``GET /ping`` and ``POST /invocations`` on 0.0.0.0:8080.

SageMaker starts the image as ``docker run IMAGE serve`` (docker/start.sh runs this command)
and sends no request until ``/ping`` answers 200. So the server listens at once and the
engines load behind it, in a thread: the weights are taken from ``PARAM_DIR`` (the model data
SageMaker unpacks into ``/opt/ml/model``, or a mounted path), fetched there first when missing,
under the same lock and checks as the RunPod worker's (:mod:`foldserve.cloud.startup`). A
setting or weights that cannot be used stop the container with one line (exit status 2).

SageMaker stops a container with SIGTERM: the running job, if any, stops at its next recycle
and is answered 503, and the process exits with status 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

from foldserve.cloud.sagemaker.container_app import create_app
from foldserve.cloud.sagemaker.container_jobs import Invocations
from foldserve.cloud.sagemaker.container_settings import ContainerSettings
from foldserve.cloud.sagemaker.container_weights import engine_param_dir
from foldserve.cloud.startup import load_engines, prepare_weights

log = logging.getLogger("foldserve.sagemaker")


def serve_container(settings: ContainerSettings) -> None:
    """Serve until SIGTERM (or SIGINT); raise what kept the engines from loading."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s foldserve %(levelname)s %(message)s",
    )
    invocations = Invocations(settings)
    server = _Server(
        uvicorn.Config(
            create_app(invocations),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            http="h11",
        ),
        invocations.stopping,
    )
    warm_up = _WarmUp(settings, invocations, server)
    log.info(
        "listening on %s:%d; loading %s", settings.host, settings.port, ",".join(settings.engines)
    )
    warm_up.start()
    server.run()
    if warm_up.failure is not None:
        raise warm_up.failure
    if not invocations.warm:
        log.info("stopped before the engines were loaded")


class _WarmUp(threading.Thread):
    """Prepares the weights and loads the engines while the server answers ``/ping`` 503.

    A daemon: a container stopped while a download runs does not wait for it (a fetch that
    was cut short is cleared by the next one, under its lock).
    """

    def __init__(
        self, settings: ContainerSettings, invocations: Invocations, server: uvicorn.Server
    ) -> None:
        super().__init__(name="warm-up", daemon=True)
        self.settings = settings
        self.invocations = invocations
        self.server = server
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            prepare_weights(self.settings, log)
            readable = self.settings.model_copy(
                update={"param_dir": engine_param_dir(self.settings.param_dir)}
            )
            self.invocations.warmed(load_engines(readable, log))
        except BaseException as exc:  # raised again by serve_container once the server stopped
            self.failure = exc
            self.server.should_exit = True


class _Server(uvicorn.Server):
    """uvicorn's server, which also stops the running job at SIGTERM or SIGINT, and after
    which the process ends normally: uvicorn's own raises the signal again once it has shut
    down, and the process would end killed by it (status 143), although SIGTERM is how
    SageMaker stops every container."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            log.info("%s: stopping", signal.Signals(sig).name)
        self._stopping.set()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
