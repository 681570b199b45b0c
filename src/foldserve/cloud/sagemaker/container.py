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

import logging
import signal
import sys
import threading

import uvicorn

from foldserve.cloud.sagemaker.container_app import create_app
from foldserve.cloud.sagemaker.container_jobs import Invocations
from foldserve.cloud.sagemaker.container_settings import ContainerSettings
from foldserve.cloud.sagemaker.container_weights import engine_param_dir
from foldserve.cloud.startup import load_engines, prepare_weights
from foldserve.graceful import GracefulServer

log = logging.getLogger("foldserve.sagemaker")


def serve_container(settings: ContainerSettings) -> None:
    """Serve until SIGTERM (or SIGINT); raise what kept the engines from loading."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s foldserve %(levelname)s %(message)s",
    )
    invocations = Invocations(settings)

    def stop_the_job(sig: signal.Signals) -> None:
        if not invocations.stopping.is_set():
            log.info("%s: stopping", sig.name)
        invocations.stopping.set()

    server = GracefulServer(
        uvicorn.Config(
            create_app(invocations),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            http="h11",
        ),
        on_signal=stop_the_job,
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
