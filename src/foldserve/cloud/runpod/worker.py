"""``foldserve-runpod-worker``: prepare the weights, load the engines (``FOLDSERVE_ENGINES``),
then serve RunPod jobs.

Everything slow happens before ``runpod.serverless.start``, so the worker asks RunPod for
jobs only once it is warm. The SDK reads its URLs (``RUNPOD_WEBHOOK_GET_JOB``,
``RUNPOD_WEBHOOK_POST_OUTPUT``, ...) from the environment RunPod gives the container.
"""

from __future__ import annotations

import logging
import os
import sys

from foldserve.cloud.runpod.handler import FoldJobs, async_handler
from foldserve.cloud.runpod.settings import RunpodSettings
from foldserve.cloud.runpod.startup import load_engines, prepare_weights
from foldserve.cloud.runpod.storage import Bucket
from foldserve.errors import FoldserveError

log = logging.getLogger("foldserve.runpod")

EXIT_CANNOT_START = 2


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s foldserve %(levelname)s %(message)s",
    )
    try:
        settings = RunpodSettings.load()
        bucket = Bucket(settings.bucket) if settings.bucket else None
        prepare_weights(settings)
        engines = load_engines(settings)
    except FoldserveError as exc:  # one line, no traceback: a setting or the weights' source
        log.error("cannot start: %s", exc)
        raise SystemExit(EXIT_CANNOT_START) from None
    if bucket is None:
        log.info("no bucket: files beyond the inline limit are left out, except the best model")

    # The SDK logs every job's input and output at its default level, DEBUG: MSAs and models
    # may be confidential, and megabytes of them per job bury the log.
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    import runpod.serverless

    jobs = FoldJobs(engines, settings, runpod.serverless.progress_update, bucket)
    runpod.serverless.start({"handler": async_handler(jobs)})
